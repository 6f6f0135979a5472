"""devpictl warm and prune on a real cache: lock files fill it, a second run resumes, gaps are named; prune empties it, never an upload."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    cache_env,
    file_url,
    installer_env,
    one_error_line,
    pip_install,
    remove_cache,
    run_cli,
    sha256,
    up_on_test_upstream,
)
from tests.integration.wheels import LONG_NAMED, make_wheel

NAME = f"warm{RUN_ID}"
SIX = "six-1.16.0-py2.py3-none-any.whl"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data"), devpi_image)
    index_url = up_on_test_upstream(env, test_upstream)
    yield {"env": env, "index_url": index_url}
    remove_cache(engine, NAME, env)


def stored(engine, name: str, index_url: str, filename: str) -> bool:
    """Whether the cache ``name`` holds ``filename`` on its volume (asked without fetching it)."""
    url, _ = file_url(index_url, "six", filename)
    path = "/data/server/+files" + httpx.URL(url).path
    return engine.containers.get(f"devpictl-{name}").exec_run(["test", "-f", path]).exit_code == 0


def write_after(index_url: str) -> None:
    """Have devpi record a page, so the files stored before are not its last write's, which prune keeps (templates/prune.py)."""
    page = httpx.get(f"{index_url}{LONG_NAMED[0]}/", timeout=60)
    assert page.status_code == 200, page.text


def warm(cache, *args: str):
    return run_cli("warm", *args, "--json", env=cache["env"])


def test_a_lock_file_fills_the_cache_and_a_second_run_resumes(cache, engine, upstream_root, tmp_path):
    digest = sha256((upstream_root / "files" / SIX).read_bytes())
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "devpictl tests"\n'
        f'[[packages]]\nname = "six"\nversion = "1.16.0"\n'
        f'wheels = [{{ name = "{SIX}", url = "http://upstream.example/{SIX}", hashes = {{ sha256 = "{digest}" }} }}]\n'
    )
    assert not stored(engine, NAME, cache["index_url"], SIX)
    first = warm(cache, str(lock))
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["stored"], report["present"], report["complete"]) == (1, 0, True)
    assert report["stored_bytes"] == (upstream_root / "files" / SIX).stat().st_size
    assert stored(engine, NAME, cache["index_url"], SIX)

    again = json.loads(warm(cache, str(lock)).stdout)
    assert (again["stored"], again["present"]) == (0, 1)


def test_a_requirements_file_is_resolved_by_pip_through_the_cache(cache, tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    result = warm(cache, str(requirements))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["packages"] == 1 and report["stored"] + report["present"] == 1


def test_what_the_upstream_lacks_is_named_with_exit_5(cache, tmp_path):
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "devpictl tests"\n'
        '[[packages]]\nname = "six"\nversion = "9.9.9"\nwheels = [{ name = "six-9.9.9-py3-none-any.whl", url = "http://x.example/a.whl" }]\n'
    )
    result = run_cli("warm", str(lock), env=cache["env"])
    assert result.exit_code == 5
    assert "missing: six==9.9.9: no file of it fits this machine" in result.stderr
    assert "could not be stored" in one_error_line(result)


def test_prune_removes_mirrored_files_only_and_they_come_back(cache, engine, tmp_path):
    container = engine.containers.get(f"devpictl-{NAME}")
    # A file of a private index: prune never looks there.
    private = "/data/server/+files/root/dev/+f/aaa/bbbbbbbbbbbbbb/mine-1.0-py3-none-any.whl"
    made = container.exec_run(["sh", "-c", f"mkdir -p {private.rsplit('/', 1)[0]} && echo private > {private}"])
    assert made.exit_code == 0, made.output
    assert stored(engine, NAME, cache["index_url"], SIX)
    write_after(cache["index_url"])
    deadline = time.monotonic() + 30
    while True:
        listed = json.loads(run_cli("prune", "--max-size", "0", "--dry-run", "--json", env=cache["env"]).stdout)
        if listed["removed"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [item["file"].rsplit("/", 1)[-1] for item in listed["removed"]] == [SIX]
    assert stored(engine, NAME, cache["index_url"], SIX)  # a dry run removes nothing

    result = run_cli("prune", "--max-size", "0", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kept_bytes"] == 0
    assert not stored(engine, NAME, cache["index_url"], SIX)
    assert container.exec_run(["test", "-f", private]).exit_code == 0

    # Served again: by devpi from the upstream, or from the front server's copy of a recent fetch.
    installed = pip_install(cache["index_url"], "six==1.16.0", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_up_max_size_keeps_the_cache_under_its_limit_by_itself(engine, devpi_image, test_upstream, tmp_path):
    """The entrypoint prunes a minute after start, then every 10 minutes."""
    name = f"small{RUN_ID}"
    env = cache_env(name, tmp_path / "data", devpi_image)
    try:
        index_url = up_on_test_upstream(env, test_upstream, "--max-size", "1K")
        installed = pip_install(index_url, "six==1.16.0", tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert stored(engine, name, index_url, SIX)
        write_after(index_url)
        deadline = time.monotonic() + 150
        while stored(engine, name, index_url, SIX) and time.monotonic() < deadline:
            time.sleep(5)
        assert not stored(engine, name, index_url, SIX), "the entrypoint did not prune within 150 s"
    finally:
        remove_cache(engine, name, env)


def test_a_twine_upload_installs_through_the_cache_and_survives_prune(cache, tmp_path):
    """A private index based on the mirror: twine uploads to it, prune empties the mirror, the upload stays and installs."""
    base = cache["index_url"].split("/root/pypi/")[0]
    password = (Path(cache["env"]["DEVPICTL_DATA_DIR"]) / "caches" / NAME / "root-password").read_text().strip()
    created = httpx.put(
        f"{base}/root/team",
        json={"type": "stage", "bases": ["root/pypi"]},
        auth=("root", password),
        headers={"Accept": "application/json"},
        trust_env=False,
    )
    assert created.status_code in (200, 201), created.text
    wheel = make_wheel(tmp_path, "dpctl-private", "1.0", ["six==1.16.0"])  # ours, needing a mirrored project
    twine_env = {
        **installer_env(tmp_path),
        "TWINE_USERNAME": "root",
        "TWINE_PASSWORD": password,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    upload = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            f"{base}/root/team/",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        env=twine_env,
        timeout=120,
    )
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert password not in upload.stdout + upload.stderr

    pruned = run_cli("prune", "--max-size", "0", "--json", env=cache["env"])
    assert pruned.exit_code == 0, pruned.output
    assert json.loads(pruned.stdout)["kept_bytes"] == 0
    assert all("/root/team/" not in item["file"] for item in json.loads(pruned.stdout)["removed"])

    target = tmp_path / "target"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--target", str(target), "--index-url", f"{base}/root/team/+simple/", "dpctl-private"],
        capture_output=True,
        text=True,
        env=installer_env(tmp_path),
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Successfully installed dpctl-private-1.0 six-1.16.0" in installed.stdout, installed.stdout
