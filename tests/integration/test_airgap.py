"""The air-gapped workflow end to end (docs/usage.md): warm from lock files, backup, restore into a new cache, up --offline, install.

Lock files are made by uv and poetry from the test upstream directly. pdm.lock is read by
tests/unit/test_warm.py only: `pdm lock` of pdm 2.29.4 with hishel 2.0.0 (what the test extra
installs today) stops with "module 'hishel' has no attribute 'SyncSqliteStorage'". The copy runs on no network the
upstream is on, and the upstream is stopped before the archive is restored.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.support import (
    RUN_ID,
    cache_env,
    free_port,
    installer_env,
    remove_cache,
    run_cli,
    up_on_test_upstream,
    upstream_stopped,
    uv_run,
)

SOURCE = f"gapsrc{RUN_ID}"
COPY = f"gapdst{RUN_ID}"
# dpctl-app needs dpctl-lib (1.1 is the newest) and dpctl-util; dpctl-big is 4 MB (tests/integration/wheels.py).
WANTED = ["dpctl-app==1.0", "dpctl-big==1.0"]
INSTALLED = ["dpctl-app-1.0", "dpctl-big-1.0", "dpctl-lib-1.1", "dpctl-util-1.0"]


def lock_files(upstream_url: str, tmp_path) -> list[str]:
    """uv.lock, pylock.toml and poetry.lock of a project that needs WANTED, made by uv and poetry from the upstream itself."""
    project = tmp_path / "lab"
    project.mkdir()
    pyproject = f'[project]\nname = "lab"\nversion = "0"\nrequires-python = ">=3.9"\ndependencies = {json.dumps(WANTED)}\n'
    (project / "pyproject.toml").write_text(pyproject)
    locked = uv_run(tmp_path, "lock", "--directory", str(project), "--default-index", upstream_url)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    exported = uv_run(
        tmp_path,
        "export",
        "--directory",
        str(project),
        "--default-index",
        upstream_url,
        "--frozen",
        "--format",
        "pylock.toml",
        "--output-file",
        "pylock.toml",
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    poetry_project = tmp_path / "lab-poetry"
    poetry_project.mkdir()
    (poetry_project / "pyproject.toml").write_text(
        pyproject + f'\n[[tool.poetry.source]]\nname = "upstream"\nurl = "{upstream_url}/"\npriority = "primary"\n'
    )
    poetry = subprocess.run(
        [sys.executable, "-m", "poetry", "lock", "--no-interaction"],
        cwd=poetry_project,
        capture_output=True,
        text=True,
        env=installer_env(tmp_path),
        timeout=300,
    )
    assert poetry.returncode == 0, poetry.stdout + poetry.stderr
    return [str(project / "uv.lock"), str(project / "pylock.toml"), str(poetry_project / "poetry.lock")]


def test_warm_backup_restore_offline_then_pip_and_uv_install_everything(engine, devpi_image, test_upstream, tmp_path):
    env = cache_env(SOURCE, tmp_path / "data", devpi_image)
    archive = tmp_path / "lab-cache.tar.gz"
    try:
        # On the side with a network: fill the cache from the lock files, and back it up with its files.
        up_on_test_upstream(env, test_upstream)
        # Each lock file names the whole set: the first stores it, the others find it stored.
        for number, lock in enumerate(lock_files(test_upstream["host_url"], tmp_path)):
            warmed = run_cli("warm", lock, "--json", env=env)
            assert warmed.exit_code == 0, warmed.output
            report = json.loads(warmed.stdout)
            assert report["complete"] is True, (lock, report)
            assert (report["stored"], report["present"]) == ((len(INSTALLED), 0) if number == 0 else (0, len(INSTALLED))), (lock, report)
        backup = run_cli("backup", str(archive), "--include-files", "--json", env=env)
        assert backup.exit_code == 0, backup.output
        assert run_cli("down", "--volumes", "--yes", env=env).exit_code == 0  # nothing of the first cache is left

        # On the other side: no upstream at all, only the archive.
        with upstream_stopped(engine):
            restored = run_cli("restore", str(archive), "--name", COPY, "--image", devpi_image, env=env)
            assert restored.exit_code == 0, restored.output
            up = run_cli("up", "--name", COPY, "--image", devpi_image, "--offline", "--port", str(free_port()), "--json", env=env)
            assert up.exit_code == 0, up.output
            index_url = json.loads(up.stdout)["index_url"]

            target = tmp_path / "pip-target"
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--target", str(target), "--index-url", index_url, "--retries", "0", *WANTED],
                capture_output=True,
                text=True,
                env=installer_env(tmp_path),
                timeout=300,
            )
            assert pip.returncode == 0, pip.stdout + pip.stderr
            assert f"Successfully installed {' '.join(INSTALLED)}" in pip.stdout, pip.stdout
            uv = uv_run(tmp_path, "pip", "install", "--target", str(tmp_path / "uv-target"), "--index-url", index_url, *WANTED)
            assert uv.returncode == 0, uv.stdout + uv.stderr
            for name in INSTALLED:
                project, version = name.rsplit("-", 1)
                assert f"+ {project}=={version}" in uv.stderr, uv.stderr
    finally:
        remove_cache(engine, SOURCE, env)
        remove_cache(engine, COPY, env)
