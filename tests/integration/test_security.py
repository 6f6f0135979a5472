"""Nobody let in: the root password stays secret, anonymous writes are refused, rotation works.

One cache on the official index (through the host's CA bundle) serves the whole module;
the tests run in order.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    cache_env,
    container_processes,
    file_url,
    free_port,
    one_error_line,
    processes_args,
    remove_cache,
    run_cli,
    sha256,
)

NAME = f"sec{RUN_ID}"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def cache(engine, devpi_image, ca_bundle, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data-security")
    env = cache_env(NAME, data_dir, devpi_image)
    port = free_port()
    info = {
        "env": env,
        "port": port,
        "base": f"http://127.0.0.1:{port}",
        "password_file": data_dir / "caches" / NAME / "root-password",
        "outputs": {},  # everything devpictl printed, by command
        "passwords": [],  # every root password the cache has had
    }
    try:
        result = run_cli("up", "--port", str(port), "--ca-bundle", ca_bundle, env=env)
        info["outputs"]["up"] = result.output
        assert result.exit_code == 0, result.output
        info["passwords"].append(password_of(info))
        yield info
    finally:
        remove_cache(engine, NAME, env)


def password_of(cache) -> str:
    return cache["password_file"].read_text().strip()


def login(cache, password: str) -> httpx.Response:
    return httpx.post(f"{cache['base']}/+login", json={"user": "root", "password": password}, headers=JSON, trust_env=False, timeout=30)


def run(cache, *args: str):
    result = run_cli(*args, env=cache["env"])
    cache["outputs"][" ".join(args)] = result.output
    return result


def test_root_password_is_never_empty_and_private(cache):
    password = password_of(cache)
    assert len(password) >= 24
    assert oct(cache["password_file"].stat().st_mode & 0o777) == "0o600"
    assert login(cache, password).status_code == 200


def test_published_on_loopback_only_by_default(cache, engine):
    container = engine.containers.get(f"devpictl-{NAME}")
    bindings = container.attrs["HostConfig"]["PortBindings"]
    assert bindings == {"3141/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(cache["port"])}]}
    assert "warning" not in cache["outputs"]["up"]


def test_root_password_is_in_no_output_inspect_process_or_log(cache, engine):
    assert_password_nowhere(cache, engine)


def assert_password_nowhere(cache, engine) -> None:
    """Run the everyday commands, then look for every password the cache had in everything visible."""
    for args in (
        ("up",),  # a second up: nothing changed
        ("status",),
        ("status", "--json"),
        ("pip-config",),
        ("pip-config", "--tool", "pip,uv,pdm", "--shell"),
        ("set-upstream", "pypi", "--no-check"),
        ("logs",),
    ):
        result = run(cache, *args)
        assert result.exit_code == 0, (args, result.output)
    container = engine.containers.get(f"devpictl-{NAME}")
    container.reload()
    places = {
        "docker inspect": json.dumps(container.attrs),
        "image inspect": json.dumps(engine.images.get(container.image.id).attrs),
        "ps -eo args": processes_args(),
        "container logs": container.logs().decode(errors="replace"),
        "container processes": container_processes(container),
        **{f"devpictl {command}": output for command, output in cache["outputs"].items()},
    }
    for password in cache["passwords"]:
        leaks = [where for where, text in places.items() if password in text]
        assert leaks == []
    # The file the password came in through is gone once devpi-init ran.
    listing = container.exec_run(["ls", "-A", "/run/devpictl"], user="root").output.decode()
    assert "root-password" not in listing


def test_anonymous_cannot_create_users_or_indexes(cache):
    response = httpx.put(f"{cache['base']}/newuser{RUN_ID}", json={"password": "x" * 12}, headers=JSON, trust_env=False)
    assert response.status_code in (401, 403), response.text
    assert httpx.get(f"{cache['base']}/newuser{RUN_ID}", headers=JSON, trust_env=False).status_code == 404
    response = httpx.put(f"{cache['base']}/root/evil", json={"type": "stage", "bases": []}, headers=JSON, trust_env=False)
    assert response.status_code in (401, 403), response.text


def test_anonymous_upload_is_refused(cache, upstream_root):
    wheel = next((upstream_root / "files").glob("six-*.whl"))
    form = {":action": "file_upload", "name": "six", "version": "1.16.0"}
    files = {"content": (wheel.name, wheel.read_bytes())}
    # root/pypi is a mirror: devpi takes no upload there from anyone.
    response = httpx.post(f"{cache['base']}/root/pypi/", data=form, files=files, trust_env=False)
    assert 400 <= response.status_code < 500, response.text
    # A private index of root's: an anonymous upload needs a login first.
    password = password_of(cache)
    created = httpx.put(
        f"{cache['base']}/root/private", json={"type": "stage", "bases": []}, auth=("root", password), headers=JSON, trust_env=False
    )
    assert created.status_code in (200, 201), created.text
    response = httpx.post(f"{cache['base']}/root/private/", data=form, files=files, trust_env=False)
    assert response.status_code in (401, 403), response.text
    listing = httpx.get(f"{cache['base']}/root/private/+simple/six/", headers={"User-Agent": "pip/24.0"}, trust_env=False)
    assert wheel.name not in listing.text


def test_wrong_stored_password_is_one_clear_line_and_changes_nothing(cache):
    good = password_of(cache)
    before = json.loads(run(cache, "status", "--json").stdout)
    cache["password_file"].write_text("not-the-password\n")
    try:
        # Another upstream than the cache's (pypi): a switch that would change something if it got through.
        for args in (("set-upstream", "https://mirror.example/simple", "--no-check"), ("password", "--rotate")):
            result = run(cache, *args)
            assert result.exit_code == 6, result.output
            line = one_error_line(result)
            assert "devpi refused the login as root" in line
            assert cache["password_file"].read_text() == "not-the-password\n"
    finally:
        cache["password_file"].write_text(good + "\n")
    after = json.loads(run(cache, "status", "--json").stdout)
    assert after["upstream"] == before["upstream"] and after["upstream_name"] == "pypi"
    assert login(cache, good).status_code == 200  # devpi kept its password


def test_rotation_changes_devpi_and_the_store_together(cache):
    old = password_of(cache)
    result = run(cache, "password", "--rotate")
    assert result.exit_code == 0, result.output
    new = password_of(cache)
    cache["passwords"].append(new)
    assert new != old and len(new) >= 24
    assert str(cache["password_file"]) in result.stdout
    assert old not in result.output and new not in result.output
    assert oct(cache["password_file"].stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in cache["password_file"].parent.iterdir()) == ["cache.toml", "root-password"]

    assert login(cache, old).status_code == 401
    assert login(cache, new).status_code == 200

    # The cache keeps working, and devpictl logs in with the new password.
    up = run(cache, "up", "--json")
    assert up.exit_code == 0, up.output
    assert json.loads(up.stdout)["changed"] is False
    url, digest = file_url(f"{cache['base']}/root/pypi/+simple/", "six", ".whl")
    download = httpx.get(url, trust_env=False, timeout=60)
    assert download.status_code == 200 and sha256(download.content) == digest

    shown = run(cache, "password", "--show")
    assert shown.stdout == new + "\n"
    cache["outputs"].pop("password --show")  # the one place that prints it, on purpose


def test_no_password_after_rotation_either(cache, engine):
    assert_password_nowhere(cache, engine)
