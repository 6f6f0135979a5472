"""A replica of an HTTPS primary that needs a login to read, itself HTTPS with a login (`up --replica-of https://...
--tls self-signed --read-auth`), on a real engine: the user pip-config configured installs through it, anonymous
readers get 401, and it follows what the primary recorded.

The primary fetches from the pytest-docker test upstream and joins a network the test creates, where the replica
reaches it by its container name (which the primary's certificate names). The tests run in order.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    TRUST_ENV,
    cache_env,
    configured_installer_env,
    configured_pip,
    free_port,
    installer_env,
    one_error_line,
    pip_command,
    remove_cache,
    run_cli,
    status_json,
    up_answer,
)
from tests.integration.test_replicas import wait_for

PRIMARY = f"tlsp{RUN_ID}"
REPLICA = f"tlsr{RUN_ID}"
PRIMARY_URL = f"https://devpictl-{PRIMARY}:3141"
UTIL = "dpctl_util-1.0-py3-none-any.whl"


def user_env(data_dir, image, name, home):
    return {
        **cache_env(name, data_dir, image),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "USER": "alice",
        "LOGNAME": "alice",
    }


def replica_up(env, network, secret, ca_bundle):
    return run_cli(
        "up",
        "--port",
        str(free_port()),
        "--network",
        network,
        "--replica-of",
        PRIMARY_URL,
        "--replica-secret",
        str(secret),
        "--ca-bundle",
        str(ca_bundle),
        "--tls",
        "self-signed",
        "--read-auth",
        "--probe-project",
        "six",
        "--json",
        env=env,
    )


@pytest.fixture(scope="module")
def pair(engine, devpi_image, test_upstream, tmp_path_factory):
    network = engine.networks.create(f"devpictl-test-replica-tls-{RUN_ID}", labels={"devpictl.test": "1"})
    dirs = {name: tmp_path_factory.mktemp(f"devpictl-data-{name}") for name in (PRIMARY, REPLICA)}
    homes = {name: tmp_path_factory.mktemp(f"home-{name}") for name in (PRIMARY, REPLICA)}
    envs = {name: user_env(dirs[name], devpi_image, name, homes[name]) for name in dirs}
    states = {name: dirs[name] / "caches" / name for name in dirs}
    try:
        primary = up_answer(envs[PRIMARY], test_upstream, "--tls", "self-signed", "--tls-name", f"devpictl-{PRIMARY}", "--read-auth")
        network.connect(f"devpictl-{PRIMARY}")
        secret = dirs[PRIMARY] / "primary.secret"
        exported = run_cli("password", "--replica-secret", str(secret), env=envs[PRIMARY])
        assert exported.exit_code == 0, exported.output
        trust = states[PRIMARY] / "tls" / "trust.pem"  # the primary's CA and this machine's bundle
        # Without the primary's root password devpictl could not read the replica's progress: one line, nothing made.
        refused = replica_up(envs[REPLICA], network.name, secret, trust)
        assert refused.exit_code == 2, refused.output
        assert "root password" in one_error_line(refused)
        assert not engine.containers.list(all=True, filters={"name": f"devpictl-{REPLICA}"})
        states[REPLICA].mkdir(parents=True, exist_ok=True)
        shutil.copy(states[PRIMARY] / "root-password", states[REPLICA] / "root-password")
        os.chmod(states[REPLICA] / "root-password", 0o600)
        result = replica_up(envs[REPLICA], network.name, secret, trust)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["primary_url"] == PRIMARY_URL
        yield {
            "envs": envs,
            "homes": homes,
            "primary_index": primary["index_url"],
            "index": answer["index_url"],
            "primary_ca": states[PRIMARY] / "tls" / "ca.pem",
            "ca": states[REPLICA] / "tls" / "ca.pem",
            "trust": states[REPLICA] / "tls" / "trust.pem",
            "root_password": (states[PRIMARY] / "root-password").read_text().strip(),
        }
    finally:
        for name in (REPLICA, PRIMARY):
            remove_cache(engine, name, envs[name])
        network.remove()


def get(pair, url, ca, **kwargs) -> httpx.Response:
    return httpx.get(url, verify=ssl.create_default_context(cafile=str(ca)), trust_env=False, timeout=30, **kwargs)


def test_the_replica_serves_https_and_devpictl_reads_its_progress(pair):
    assert pair["index"].startswith("https://127.0.0.1:")
    replication = status_json(pair["envs"][REPLICA], REPLICA)["replication"]
    assert replication["role"] == "replica" and replication["primary_url"] == PRIMARY_URL
    assert replication["lag"] == 0  # read from /+status, closed to anonymous users: devpictl logged in
    primary = status_json(pair["envs"][PRIMARY], PRIMARY)["replication"]
    assert len(primary["replicas"]) == 1, primary  # the replica polled the primary through its login check


def test_anonymous_readers_of_the_replica_get_401(pair, tmp_path):
    base = pair["index"].removesuffix("/root/pypi/+simple/")
    for path in ("/+status", "/root/pypi/+simple/six/", "/+devpictl/metrics"):
        answer = get(pair, base + path, pair["ca"], headers={"Accept": "application/json"})
        assert answer.status_code == 401, path
    env = {k: v for k, v in installer_env(tmp_path).items() if k not in TRUST_ENV}
    anonymous = subprocess.run(
        pip_command(pair["index"], "download", "-vv", "--no-deps", "--no-input", "-d", str(tmp_path), "--cert", str(pair["trust"]), "six"),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert anonymous.returncode != 0
    assert "401 Client Error" in anonymous.stdout + anonymous.stderr, anonymous.stdout + anonymous.stderr


def test_the_user_pip_config_configured_installs_through_the_replica(pair, tmp_path):
    written = run_cli("pip-config", "--tool", "pip", "--write", env=pair["envs"][REPLICA])
    assert written.exit_code == 0, written.output
    home = pair["homes"][REPLICA]
    text = (home / ".config" / "pip" / "pip.conf").read_text()
    assert "index-url = https://pip-alice:" in text and f"cert = {pair['trust']}" in text
    env = configured_installer_env(tmp_path, home)
    pip = configured_pip(env, "install", "--no-deps", "--target", str(tmp_path / "pip"), "six")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (tmp_path / "pip" / "six.py").is_file()


def test_the_replica_follows_a_page_recorded_on_the_primary(pair, engine):
    root = ("root", pair["root_password"])
    agent = {"User-Agent": "pip/24.0"}
    # The primary records dpctl-util's page, fetched from its upstream for root.
    page = get(pair, pair["primary_index"] + "dpctl-util/", pair["primary_ca"], auth=root, headers=agent)
    assert page.status_code == 200 and UTIL in page.text, page.text[:300]
    replica_user = (
        "pip-alice",
        (pair["homes"][REPLICA] / ".config" / "pip" / "pip.conf").read_text().split("https://pip-alice:")[1].split("@")[0],
    )

    def served() -> bool:
        answer = get(pair, pair["index"] + "dpctl-util/", pair["ca"], auth=replica_user, headers=agent)
        return answer.status_code == 200 and UTIL in answer.text

    wait_for("dpctl-util's page on the replica", served, logs_of=(engine.containers.get(f"devpictl-{REPLICA}"),))
    anonymous = get(pair, pair["index"] + "dpctl-util/", pair["ca"], headers=agent)
    assert anonymous.status_code == 401
