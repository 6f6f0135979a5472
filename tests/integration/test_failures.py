"""Expected failures on a real engine: one clear line, non-zero exit, nothing left behind."""

from __future__ import annotations

import socket
import time

import pytest

from tests.integration.support import RUN_ID, cache_env, free_port, leftovers, one_error_line, remove_cache, run_cli


@pytest.fixture
def isolated(engine, devpi_image, tmp_path):
    name = f"fail{RUN_ID}"
    env = cache_env(name, tmp_path / "data", devpi_image)
    yield {"name": name, "env": env, "data_dir": tmp_path / "data"}
    remove_cache(engine, name, env)


def test_port_in_use_creates_nothing(engine, isolated):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("up", "--port", str(port), env=isolated["env"])
    assert result.exit_code == 4, result.output
    assert "--port" in one_error_line(result)
    assert leftovers(engine, isolated["name"]) == []
    assert not (isolated["data_dir"] / "caches" / isolated["name"] / "root-password").exists()


def test_dead_upstream_on_a_new_cache_removes_what_up_created(engine, isolated):
    result = run_cli("up", "--port", str(free_port()), "--mirror", "http://127.0.0.1:9/simple", "--timeout", "60", env=isolated["env"])
    assert result.exit_code == 5, result.output
    line = one_error_line(result)
    assert "127.0.0.1:9" in line and "devpi's log is kept in" in line
    assert leftovers(engine, isolated["name"]) == []
    state = isolated["data_dir"] / "caches" / isolated["name"]
    assert not (state / "root-password").exists()
    # devpi's own log: devpi-server started on the volume before the upstream failed it.
    assert "/data/server/.nodeinfo" in (state / "last-failed-up.log").read_text()


def test_unknown_network_creates_nothing(engine, isolated):
    result = run_cli("up", "--port", str(free_port()), "--network", f"no-such-net-{RUN_ID}", env=isolated["env"])
    assert result.exit_code == 2, result.output
    assert "--network" in one_error_line(result)
    assert leftovers(engine, isolated["name"]) == []


@pytest.mark.parametrize("content", ["", None], ids=["empty-file", "directory"])
def test_image_refuses_to_create_a_cache_without_a_root_password(engine, devpi_image, tmp_path, content):
    secret = tmp_path / "root-password"
    if content is None:
        secret.mkdir()
    else:
        secret.write_text(content)
    container = engine.containers.run(
        devpi_image,
        detach=True,
        labels={"devpictl.test": "1"},
        environment={"DEVPICTL_FRONT": "0", "DEVPICTL_ROOT_PASSWORD_FILE": "/run/secrets/root-password"},
        volumes={str(secret): {"bind": "/run/secrets/root-password", "mode": "ro"}},
    )
    try:
        assert container.wait(timeout=60)["StatusCode"] == 64
        assert "refusing to create a cache with an empty root password" in container.logs().decode()
    finally:
        container.remove(v=True, force=True)


def test_up_repairs_a_cache_that_an_interrupted_up_left_half_made(engine, devpi_image, isolated, test_upstream):
    """A kill between creating the volume and handing in the password leaves an empty volume and a container
    that restarts for ever ("no root password"); the next `up` finishes the cache."""
    name = isolated["name"]
    labels = {"devpictl.managed": "1", "devpictl.instance": name, "devpictl.test": "1"}
    volume = f"devpictl-{name}-data"
    engine.volumes.create(volume, labels=labels)
    port = free_port()
    broken = engine.containers.create(
        devpi_image,
        name=f"devpictl-{name}",
        labels=labels,
        ports={"3141/tcp": ("127.0.0.1", port)},
        volumes={volume: {"bind": "/data", "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"},
        init=True,
        environment={"DEVPICTL_FRONT": "1", "DEVPICTL_OFFLINE": "0"},
        network=test_upstream["network"],
    )
    broken.start()
    for _ in range(600):  # until the engine has restarted it at least once: the state the issue found
        broken.reload()
        if broken.attrs.get("RestartCount", 0) > 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the engine never restarted the broken container: {broken.logs().decode()[-500:]}")
    result = run_cli(
        "up",
        "--port",
        str(port),
        "--network",
        test_upstream["network"],
        "--mirror",
        test_upstream["url"],
        "--probe-project",
        "six",
        "--timeout",
        "120",
        env=isolated["env"],
    )
    assert result.exit_code == 0, result.output
    assert "unfinished container" in result.output and "left empty" in result.output
    status = run_cli("status", "--json", env=isolated["env"])
    assert status.exit_code == 0 and '"state": "running"' in status.stdout, status.output
