"""devpi replication on a real engine: a primary and two replicas (`up --replica-of`) on a network the test creates.

The primary fetches from the pytest-docker test upstream; the replicas reach the primary by its
container name on the test's own network. The tests run in order: each builds on what the one
before left (files fetched, the primary stopped and back).
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    cache_env,
    file_url,
    free_port,
    installer_env,
    one_error_line,
    pip_command,
    pip_run,
    remove_cache,
    run_cli,
    sha256,
    status_json,
    up_on_test_upstream,
)
from tests.integration.wheels import make_wheel

PRIMARY = f"prim{RUN_ID}"
REPLICAS = (f"repa{RUN_ID}", f"repb{RUN_ID}")
CLIENTS = 50  # concurrent installers, spread over both replicas
TOTAL_TIMEOUT = 240  # seconds for all of them together
CATCH_UP = 240  # seconds a replica may take to show a change (the first contact derives devpi's key: ~35 s a side here)
JSON = {"Accept": "application/json"}
SIX = "six-1.16.0-py2.py3-none-any.whl"


def wait_for(what: str, check, timeout: float = CATCH_UP, logs_of=()):
    """Poll ``check`` until it returns something true; fail naming ``what``, with the logs of the containers ``logs_of``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(2)
    logs = "".join(f"\n--- {c.name}:\n{c.logs(tail=40).decode(errors='replace')}" for c in logs_of)
    pytest.fail(f"{what}: not within {timeout} s (last: {last!r}){logs}")


def holds_file(engine, name: str, filename: str) -> bool:
    """Whether the cache's volume holds ``filename`` (so its front server serves it from disk)."""
    code, output = engine.containers.get(f"devpictl-{name}").exec_run(["find", "/data/server/+files", "-name", filename])
    return code == 0 and filename in output.decode()


def upload(cluster, wheel) -> None:
    """Upload ``wheel`` to root/dev on the primary (made on first use), as root."""
    base, auth = cluster["primary_base"], ("root", cluster["root_password"])
    created = httpx.put(f"{base}/root/dev", json={"type": "stage", "bases": []}, auth=auth, headers=JSON, trust_env=False, timeout=60)
    assert created.status_code in (200, 201, 409), created.text
    project, version = wheel.name.split("-")[:2]
    answer = httpx.post(
        f"{base}/root/dev/",
        data={":action": "file_upload", "name": project, "version": version},
        files={"content": (wheel.name, wheel.read_bytes())},
        auth=auth,
        trust_env=False,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def dev_index(index_url: str) -> str:
    return index_url.replace("/root/pypi/", "/root/dev/")


@pytest.fixture(scope="module")
def cluster(engine, devpi_image, test_upstream, tmp_path_factory):
    """A primary on the test upstream and two replicas of it, each with its own data dir and volume."""
    network = engine.networks.create(f"devpictl-test-replicas-{RUN_ID}", labels={"devpictl.test": "1"})
    dirs = {name: tmp_path_factory.mktemp(f"devpictl-data-{name}") for name in (PRIMARY, *REPLICAS)}
    envs = {name: cache_env(name, dirs[name], devpi_image) for name in dirs}
    try:
        primary_index = up_on_test_upstream(envs[PRIMARY], test_upstream)
        # The primary stays on the upstream's network and joins the test's, where replicas find it by name.
        network.connect(f"devpictl-{PRIMARY}")
        secret = dirs[PRIMARY] / "primary.secret"
        exported = run_cli("password", "--replica-secret", str(secret), "--json", env=envs[PRIMARY])
        assert exported.exit_code == 0, exported.output
        assert secret.read_text().strip() not in exported.output
        indexes = {}
        for name in REPLICAS:
            result = run_cli(
                "up",
                "--port",
                str(free_port()),
                "--network",
                network.name,
                "--replica-of",
                f"http://devpictl-{PRIMARY}:3141",
                "--replica-secret",
                str(secret),
                "--probe-project",
                "six",
                "--json",
                env=envs[name],
            )
            assert result.exit_code == 0, result.output
            answer = json.loads(result.stdout)
            assert answer["primary_url"] == f"http://devpictl-{PRIMARY}:3141"
            indexes[name] = answer["index_url"]
        yield {
            "envs": envs,
            "primary_index": primary_index,
            "indexes": indexes,
            "secret": secret,
            "primary_base": primary_index.split("/root/pypi/")[0],
            "root_password": (dirs[PRIMARY] / "caches" / PRIMARY / "root-password").read_text().strip(),
        }
    finally:
        for name in (*REPLICAS, PRIMARY):
            remove_cache(engine, name, envs[name])
        network.remove()


def test_status_shows_roles_and_lag(cluster):
    envs = cluster["envs"]
    for name in REPLICAS:
        replication = status_json(envs[name], name)["replication"]
        assert replication["role"] == "replica"
        assert replication["primary_url"] == f"http://devpictl-{PRIMARY}:3141"
        assert replication["lag"] == 0  # `up` returned once it had caught up
    primary = status_json(envs[PRIMARY], PRIMARY)["replication"]
    assert primary["role"] == "primary"
    assert len(primary["replicas"]) == 2, primary  # both polled it while catching up


def test_what_only_the_primary_may_do_is_refused_on_a_replica(cluster):
    env = cluster["envs"][REPLICAS[0]]
    for args in (["set-upstream", "pypi", "--no-check"], ["password", "--rotate"], ["set-policy", "--deny", "six"]):
        result = run_cli(*args, "--name", REPLICAS[0], env=env)
        assert result.exit_code == 4, result.output
        line = one_error_line(result)
        assert "is a replica of" in line and "on the primary" in line, line


def test_the_changelog_is_closed_to_anonymous_readers(cluster):
    # devpi's changelog holds users' password hashes; the primary's front server passes only signed replica requests.
    answer = httpx.get(f"{cluster['primary_base']}/+changelog/0-", trust_env=False, timeout=30)
    assert answer.status_code == 403
    assert cluster["root_password"] not in answer.text


def test_a_file_fetched_through_one_replica_is_held_by_the_other(cluster, engine, tmp_path):
    a, b = REPLICAS
    installed = pip_run(cluster["indexes"][a], tmp_path, "download", "--no-deps", "dpctl-util", "-d", str(tmp_path / "a"))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    filename = "dpctl_util-1.0-py3-none-any.whl"
    wait_for(f"replica {b} downloading {filename} from the primary", lambda: holds_file(engine, b, filename))
    served = httpx.get(file_url(cluster["indexes"][b], "dpctl-util", filename)[0], trust_env=False, timeout=30)
    assert served.status_code == 200
    assert served.headers.get("x-devpictl-served-from") == "disk"
    assert sha256(served.content) == sha256((tmp_path / "a" / filename).read_bytes())


def test_an_upload_to_the_primary_reaches_both_replicas(cluster, tmp_path):
    wheel = make_wheel(tmp_path / "made", "dpctl-uploaded", "1.0", [])
    upload(cluster, wheel)
    for name in REPLICAS:

        def fetched(name=name) -> bool:
            done = pip_run(
                dev_index(cluster["indexes"][name]), tmp_path, "download", "--no-deps", "dpctl-uploaded", "-d", str(tmp_path / name)
            )
            return done.returncode == 0

        wait_for(f"the upload on replica {name}", fetched)
        assert (tmp_path / name / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_write_sent_to_a_replica_reaches_the_primary_and_the_other_replica(cluster, tmp_path):
    a, b = REPLICAS
    wheel = make_wheel(tmp_path / "made", "dpctl-via-replica", "1.0", [])
    upload({**cluster, "primary_base": cluster["indexes"][a].split("/root/pypi/")[0]}, wheel)  # devpi relays it to the primary
    for index in (dev_index(cluster["primary_index"]), dev_index(cluster["indexes"][b])):

        def fetched(index=index) -> bool:
            return pip_run(index, tmp_path, "download", "--no-deps", "dpctl-via-replica", "-d", str(tmp_path / "via")).returncode == 0

        wait_for(f"the upload sent to replica {a} on {index}", fetched)


def test_replicas_serve_what_they_hold_while_the_primary_is_down_and_catch_up_after(cluster, engine, tmp_path):
    # Mirrored files fetched through replica B, and an upload: both replicas hold all of them before the outage.
    fetched = pip_run(cluster["indexes"][REPLICAS[1]], tmp_path, "download", "--no-deps", "six", "dpctl-util", "-d", str(tmp_path / "held"))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    held = make_wheel(tmp_path / "made", "dpctl-held", "1.0", [])
    upload(cluster, held)
    for name in REPLICAS:
        for filename in (SIX, "dpctl_util-1.0-py3-none-any.whl", held.name):
            wait_for(f"replica {name} holding {filename}", lambda name=name, filename=filename: holds_file(engine, name, filename))
    primary = engine.containers.get(f"devpictl-{PRIMARY}")
    primary.stop(timeout=20)
    try:
        for name in REPLICAS:
            for index, project in (
                (cluster["indexes"][name], "six"),
                (cluster["indexes"][name], "dpctl-util"),
                (dev_index(cluster["indexes"][name]), "dpctl-held"),
            ):
                done = pip_run(index, tmp_path, "download", "--no-deps", project, "-d", str(tmp_path / f"down-{name}"))
                assert done.returncode == 0, f"{name} {project}: {done.stdout}{done.stderr}"
    finally:
        back = run_cli("up", "--json", env=cluster["envs"][PRIMARY])
    assert back.exit_code == 0, back.output
    wheel = make_wheel(tmp_path / "made", "dpctl-after", "1.0", [])
    upload(cluster, wheel)
    for name in REPLICAS:

        def fetched(name=name) -> bool:
            done = pip_run(
                dev_index(cluster["indexes"][name]), tmp_path, "download", "--no-deps", "dpctl-after", "-d", str(tmp_path / f"after-{name}")
            )
            return done.returncode == 0

        wait_for(
            f"the upload made after the outage on replica {name}", fetched, logs_of=(engine.containers.get(f"devpictl-{name}"), primary)
        )


def test_concurrent_installers_over_both_replicas(cluster, tmp_path):
    env = installer_env(tmp_path)
    procs = []
    for i in range(CLIENTS):
        index = cluster["indexes"][REPLICAS[i % 2]]
        command = pip_command(index, "download", "--no-deps", "six==1.16.0", "dpctl-util", "-d", str(tmp_path / f"client-{i}"))
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    deadline = time.monotonic() + TOTAL_TIMEOUT
    failures = []
    try:
        for proc in procs:
            output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if proc.returncode != 0:
                failures.append(output[-600:])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert not failures, f"{len(failures)} of {CLIENTS} failed; first: {failures[0]}"


def test_a_set_upstream_on_the_primary_reaches_the_replicas_cached_pages(cluster, metadata_upstream):
    """The replicas' front servers cached dpctl-util's page from the old upstream; a switch on the
    primary (to an upstream that serves core metadata) must show there, not after the page cache's 30 minutes."""
    envs, agent = cluster["envs"], {"User-Agent": "pip/24.0"}
    for name in REPLICAS:
        page = httpx.get(f"{cluster['indexes'][name]}dpctl-util/", headers=agent, trust_env=False, timeout=30)
        assert page.status_code == 200 and "data-core-metadata" not in page.text
    # The primary is on the test upstreams' network, where both upstreams answer.
    switched = run_cli("set-upstream", metadata_upstream["url"], "--probe-project", "dpctl-app", "--json", env=envs[PRIMARY])
    assert switched.exit_code == 0, switched.output
    assert json.loads(switched.stdout)["core_metadata"] is True
    for name in REPLICAS:

        def announced(name=name) -> bool:
            page = httpx.get(f"{cluster['indexes'][name]}dpctl-util/", headers=agent, trust_env=False, timeout=30)
            return page.status_code == 200 and "data-core-metadata" in page.text

        wait_for(f"the new upstream's page on replica {name}", announced)


def test_the_replicas_apply_the_primarys_page_policy(cluster):
    """set-policy on the primary: replication takes it to the replicas, whose pages then refuse the denied project."""
    envs, agent = cluster["envs"], {"User-Agent": "pip/24.0"}
    result = run_cli("set-policy", "--deny", "dpctl-util", "--name", PRIMARY, env=envs[PRIMARY])
    assert result.exit_code == 0, result.output
    try:
        for name in REPLICAS:

            def refused(name=name) -> bool:
                page = httpx.get(f"{cluster['indexes'][name]}dpctl-util/", headers=agent, trust_env=False, timeout=30)
                return page.status_code == 200 and "/+devpictl/denied/dpctl-util/" in page.text

            wait_for(f"the primary's deny list on replica {name}", refused)
            assert status_json(envs[name], name)["policy_settings"]["deny"] == ["dpctl-util"]
    finally:
        result = run_cli("set-policy", "--clear", "--name", PRIMARY, env=envs[PRIMARY])
        assert result.exit_code == 0, result.output
    for name in REPLICAS:

        def served(name=name) -> bool:
            page = httpx.get(f"{cluster['indexes'][name]}dpctl-util/", headers=agent, trust_env=False, timeout=30)
            return page.status_code == 200 and "/+devpictl/denied/" not in page.text and ".whl" in page.text

        wait_for(f"the primary's cleared policy on replica {name}", served)
