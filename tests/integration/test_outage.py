"""The upstream goes away: what the cache holds keeps installing, status says so, offline mode on purpose.

One cache on the pytest-docker test upstream serves the module; the tests run in order.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    cache_env,
    container_processes,
    file_url,
    one_error_line,
    pip_install,
    pip_run,
    remove_cache,
    run_cli,
    status_json,
    up_on_test_upstream,
    upstream_stopped,
    uv_install,
)

NAME = f"out{RUN_ID}"
NEVER_CACHED = "attrs"  # neither the cache nor the test upstream has it


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, tmp_path_factory):
    """A cache on the test upstream that has installed six once, with pip and with uv."""
    data_dir = tmp_path_factory.mktemp("devpictl-data-outage")
    env = cache_env(NAME, data_dir, devpi_image)
    warm = tmp_path_factory.mktemp("warm")
    try:
        index_url = up_on_test_upstream(env, test_upstream)
        for install in (pip_install, uv_install):
            done = install(index_url, "six", warm)
            assert done.returncode == 0, done.stdout + done.stderr
        yield {"env": env, "index_url": index_url}
    finally:
        remove_cache(engine, NAME, env)


def test_status_says_the_upstream_answers(cache):
    st = status_json(cache["env"])
    assert st["upstream_reachable"] is True, st
    assert st["offline"] is False


def test_with_the_upstream_gone(cache, engine, tmp_path):
    with upstream_stopped(engine):
        # Everything cached still installs, with both installers.
        installed = pip_install(cache["index_url"], "six", tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert "Successfully installed six-1.16.0" in installed.stdout
        installed = uv_install(cache["index_url"], "six", tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr

        # What was never cached fails, with pip's own clear message.
        missing = pip_run(cache["index_url"], tmp_path, "install", "--no-deps", "--target", str(tmp_path / "t"), NEVER_CACHED)
        assert missing.returncode != 0
        assert f"No matching distribution found for {NEVER_CACHED}" in missing.stderr, missing.stderr

        # status says so, quickly.
        started = time.monotonic()
        st = status_json(cache["env"])
        assert time.monotonic() - started < 20
        assert st["upstream_reachable"] is False, st
        assert st["upstream_problem"]
        human = run_cli("status", env=cache["env"]).stdout
        assert "(not answering: " in human, human


def test_offline_mode_on_purpose(cache, engine, tmp_path):
    with upstream_stopped(engine):
        assert run_cli("down", env=cache["env"]).exit_code == 0
        # Port, network, image and probe project come back from what the first `up` remembered.
        result = run_cli("up", "--offline", "--json", env=cache["env"])
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["offline"] is True and out["index_url"] == cache["index_url"]

        st = status_json(cache["env"])
        assert st["offline"] is True and st["upstream_reachable"] is None, st
        assert "offline mode: on" in run_cli("status", env=cache["env"]).stdout
        container = engine.containers.get(f"devpictl-{NAME}")
        assert "--offline-mode" in container_processes(container)

        installed = pip_install(cache["index_url"], "six", tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        missing = pip_run(cache["index_url"], tmp_path, "install", "--no-deps", "--target", str(tmp_path / "t"), NEVER_CACHED)
        assert missing.returncode != 0
        assert f"No matching distribution found for {NEVER_CACHED}" in missing.stderr

        # Offline, the page lists only the stored wheel, and its core metadata is read out of it:
        # announced and served, though this upstream has no .metadata files.
        assert out["core_metadata"] is True
        page = httpx.get(f"{cache['index_url']}six/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
        assert 'data-core-metadata="true"' in page.text, page.text
        url, _ = file_url(cache["index_url"], "six", "six-1.16.0-py2.py3-none-any.whl")
        metadata = httpx.get(url + ".metadata", trust_env=False, timeout=30)
        assert metadata.status_code == 200 and b"Name: six" in metadata.content

        # Offline is how this container was made: changing it takes `down` first.
        result = run_cli("up", "--online", env=cache["env"])
        assert result.exit_code == 4, result.output
        assert "run `devpictl down" in one_error_line(result)
        # ... and `up` without a flag keeps it offline and changes nothing.
        result = run_cli("up", "--json", env=cache["env"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["changed"] is False
        assert json.loads(result.stdout)["offline"] is True


def test_back_online(cache, engine, tmp_path):
    assert run_cli("down", env=cache["env"]).exit_code == 0
    result = run_cli("up", "--online", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["offline"] is False
    # Online again, the test upstream is measured: it has no .metadata files.
    assert json.loads(result.stdout)["core_metadata"] is False
    st = status_json(cache["env"])
    assert st["offline"] is False and st["upstream_reachable"] is True, st
