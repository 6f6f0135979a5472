"""A warm cache under load, and after a crash: 50 concurrent installers, then SIGKILL.

One cache on the pytest-docker test upstream serves the module; all traffic is on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    cache_env,
    file_url,
    installer_env,
    pip_command,
    remove_cache,
    run_cli,
    sha256,
    up_on_test_upstream,
)

NAME = f"load{RUN_ID}"
CLIENTS = 50
TOTAL_TIMEOUT = 180  # seconds for all of them together
SIX = "six-1.16.0-py2.py3-none-any.whl"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, upstream_root, tmp_path_factory):
    """A cache on the test upstream that holds six 1.16.0 (downloaded once)."""
    data_dir = tmp_path_factory.mktemp("devpictl-data-load")
    env = cache_env(NAME, data_dir, devpi_image)
    try:
        index_url = up_on_test_upstream(env, test_upstream)
        url, digest = file_url(index_url, "six", SIX)
        assert digest == sha256((upstream_root / "files" / SIX).read_bytes())
        warm = httpx.get(url, trust_env=False, timeout=60)
        assert warm.status_code == 200 and sha256(warm.content) == digest
        yield {
            "env": env,
            "index_url": index_url,
            "file_url": url,
            "sha256": digest,
            "base": index_url.split("/root/pypi/")[0],
            "password_file": data_dir / "caches" / NAME / "root-password",
        }
    finally:
        remove_cache(engine, NAME, env)


def test_fifty_concurrent_installers(cache, tmp_path):
    env = installer_env(tmp_path)
    procs = []
    for i in range(CLIENTS):
        dest = tmp_path / f"client-{i}"
        command = pip_command(cache["index_url"], "download", "--no-deps", "six==1.16.0", "-d", str(dest))
        procs.append((dest, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    deadline = time.monotonic() + TOTAL_TIMEOUT
    failures = []
    try:
        for _dest, proc in procs:
            output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                failures.append(output[-600:])
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert failures == [], f"{len(failures)} of {CLIENTS} failed; first:\n{failures[0]}"
    digests = {sha256((dest / SIX).read_bytes()) for dest, _ in procs}
    assert digests == {cache["sha256"]}


def wait_until_healthy(container, restarts_before: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs["State"]
        if state["Running"] and container.attrs["RestartCount"] > restarts_before and state.get("Health", {}).get("Status") == "healthy":
            return
        assert time.monotonic() < deadline, f"not back and healthy within {timeout:.0f} s: {state}"
        time.sleep(1)


def auth_status(cache, token: str) -> list:
    """devpi's verdict on a login token: ["ok", "root", ...] while it is valid."""
    import base64

    header = base64.b64encode(f"root:{token}".encode()).decode()
    response = httpx.get(
        f"{cache['base']}/+api", headers={"Accept": "application/json", "X-Devpi-Auth": header}, trust_env=False, timeout=30
    )
    response.raise_for_status()
    return response.json()["result"]["authstatus"]


def test_a_crashed_container_comes_back_by_itself(cache, engine):
    password = cache["password_file"].read_text().strip()
    login = httpx.post(
        f"{cache['base']}/+login",
        json={"user": "root", "password": password},
        headers={"Accept": "application/json"},
        trust_env=False,
        timeout=30,
    )
    token = login.json()["result"]["password"]
    assert auth_status(cache, token)[:2] == ["ok", "root"]
    container = engine.containers.get(f"devpictl-{NAME}")
    restarts = container.attrs["RestartCount"]
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    # A crash, as the OOM killer does it: SIGKILL to the container's first process.
    # (`docker kill` would not do: the engine counts it as a manual stop; see the next test.)
    os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
    wait_until_healthy(container, restarts)
    again = httpx.get(cache["file_url"], trust_env=False, timeout=60)
    assert again.status_code == 200
    assert sha256(again.content) == cache["sha256"]
    # devpi's login secret lives in the volume: a token from before the crash still works.
    assert auth_status(cache, token)[:2] == ["ok", "root"]


def test_docker_kill_counts_as_a_stop_and_up_brings_it_back(cache, engine):
    container = engine.containers.get(f"devpictl-{NAME}")
    container.kill(signal="SIGKILL")
    time.sleep(3)
    container.reload()
    assert container.status == "exited"  # the engine does not restart what it was told to kill
    result = run_cli("up", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert "started the container" in json.loads(result.stdout)["actions"]
    again = httpx.get(cache["file_url"], trust_env=False, timeout=60)
    assert again.status_code == 200
    assert sha256(again.content) == cache["sha256"]
