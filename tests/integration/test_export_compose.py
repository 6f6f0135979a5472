"""`devpictl export compose` run for real with docker-compose: a primary, two replicas and the front serve installs.

The primary fetches from the pytest-docker test upstream (it joins that network); installers
reach only the front, on loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest

from tests.integration.support import RUN_ID, file_url, free_port, pip_run, run_cli, sha256

PROJECT = f"devpictlexport{RUN_ID}"
READY = 420  # seconds for the set to answer: three devpi starts, and each replica's first contact derives devpi's key


def compose_command() -> list[str]:
    return ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]


def compose(directory, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*compose_command(), "-p", PROJECT, "-f", str(directory / "compose.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def deployed(engine, devpi_image, test_upstream, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export-compose")
    port = free_port()
    result = run_cli(
        "export",
        "compose",
        "-o",
        str(directory),
        "--replicas",
        "2",
        "--image",
        devpi_image,
        "--port",
        str(port),
        "--mirror",
        test_upstream["url"],
        "--network",
        test_upstream["network"],
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == [str(directory / "compose.yaml")]
    try:
        started = compose(directory, "up", "-d")
        assert started.returncode == 0, started.stdout + started.stderr
        yield {"directory": directory, "index_url": f"http://127.0.0.1:{port}/root/pypi/+simple/"}
    finally:
        done = compose(directory, "down", "-v", "--remove-orphans")
        assert done.returncode == 0, done.stdout + done.stderr


def lists_six(index_url: str) -> bool:
    try:
        page = httpx.get(f"{index_url}six/", headers={"User-Agent": "pip/24.0"}, trust_env=False, timeout=30)
    except httpx.HTTPError:
        return False
    return page.status_code == 200 and "six-1.16.0" in page.text


def test_the_front_serves_installs_through_the_replicas(deployed, engine, devpi_image, upstream_root, tmp_path):
    deadline = time.monotonic() + READY
    while not lists_six(deployed["index_url"]):
        if time.monotonic() > deadline:
            logs = compose(deployed["directory"], "logs", "--tail", "30")
            pytest.fail(f"the compose set did not list six within {READY} s:\n{logs.stdout[-6000:]}")
        time.sleep(3)
    done = pip_run(deployed["index_url"], tmp_path, "download", "--no-deps", "six==1.16.0", "dpctl-util", "-d", str(tmp_path / "got"))
    assert done.returncode == 0, done.stdout + done.stderr
    wheel = "six-1.16.0-py2.py3-none-any.whl"
    assert sha256((tmp_path / "got" / wheel).read_bytes()) == sha256((upstream_root / "files" / wheel).read_bytes())
    # Every service runs the image devpictl built, with the test label; no password in any container's settings.
    containers = engine.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    assert sorted(c.labels["com.docker.compose.service"] for c in containers) == ["front", "primary", "replica-1", "replica-2"]
    secrets = [(deployed["directory"] / "secrets" / name).read_text().strip() for name in ("root-password", "devpi-secret")]
    for container in containers:
        assert container.labels.get("devpictl.test") == "1"
        assert container.image.id == engine.images.get(devpi_image).id
        inspected = json.dumps(container.attrs)
        assert not any(secret in inspected for secret in secrets), container.name
    # The files the installers got came from a replica, which now holds six.
    url, _ = file_url(deployed["index_url"], "six", wheel)
    assert httpx.get(url, trust_env=False, timeout=30).headers.get("x-devpictl-served-from") == "disk"
