"""Failover across upstreams (`--fallback`, docs/failover.md) on the real engine, devpi, pip and uv.

Three test upstreams on the compose network: the primary (`upstream`), a fallback on
another path with absolute file links and a release behind (`fallback`), and one whose
files do not match its pages' hashes (`fallback-bad`). One cache serves the module; the
tests run in order.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

import pytest

from devpictl import failover, probe
from devpictl.cache import Cache
from devpictl.layout import DEVPI_PORT
from devpictl.settings import Instance
from tests.integration.mirror_roots import EXTRA
from tests.integration.support import (
    RUN_ID,
    cache_env,
    file_url,
    pip_install,
    pip_run,
    remove_cache,
    run_cli,
    status_json,
    up_answer,
    upstream_container,
    upstream_requests,
    upstream_stopped,
    uv_install,
    uv_run,
)

NAME = f"fo{RUN_ID}"
CACHED = ["six", "dpctl-util"]  # installed through the primary before it goes


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, fallback_upstreams, tmp_path_factory):
    """A cache on the primary with both fallbacks, which has installed CACHED once."""
    fallback, bad = fallback_upstreams
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data-failover"), devpi_image)
    warm = tmp_path_factory.mktemp("warm")
    try:
        answer = up_answer(env, test_upstream, "--fallback", f"{fallback['url']},{bad['url']}")
        for project in CACHED:
            done = pip_install(answer["index_url"], project, warm)
            assert done.returncode == 0, done.stdout + done.stderr
        yield {"env": env, "index_url": answer["index_url"], "up": answer, "fallback": fallback, "bad": bad, "primary": test_upstream}
    finally:
        remove_cache(engine, NAME, env)


def test_up_reports_and_remembers_the_chain(cache):
    assert cache["up"]["upstream"]["url"] == cache["primary"]["url"]
    assert [f["url"] for f in cache["up"]["fallbacks"]] == [cache["fallback"]["url"], cache["bad"]["url"]]
    st = status_json(cache["env"])
    assert st["upstream"] == cache["primary"]["url"], st
    assert [f["url"] for f in st["fallbacks"]] == [cache["fallback"]["url"], cache["bad"]["url"]], st
    assert all(f["reachable"] for f in st["fallbacks"]), st
    human = run_cli("status", env=cache["env"]).stdout
    assert "fallbacks" in human and cache["fallback"]["url"] in human, human


def install_with_deps(installer: str, index_url: str, project: str, tmp_path, n: int) -> subprocess.CompletedProcess:
    target = str(tmp_path / f"{installer}-{n}")
    if installer == "uv":
        return uv_run(tmp_path, "pip", "install", "--target", target, "--index-url", index_url, project)
    return pip_run(index_url, tmp_path, "install", "--target", target, project)


def test_primary_down_cached_and_new_projects_install_from_the_fallback(cache, engine, tmp_path):
    before = upstream_requests(engine, "fallback", "/pypi/web/simple/dpctl-app/")
    jobs = [(installer, project) for project in [*CACHED, "dpctl-app", "dpctl-lib"] for installer in ("pip", "uv")]
    with upstream_stopped(engine), ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda job: install_with_deps(*job[:1], cache["index_url"], job[1], tmp_path, jobs.index(job)), jobs))
        st = status_json(cache["env"])
    failures = [(job, run.stdout + run.stderr) for job, run in zip(jobs, runs, strict=True) if run.returncode != 0]
    assert failures == []
    # dpctl-app was never cached: its page came from the fallback, a release behind (dpctl-lib 1.0).
    assert upstream_requests(engine, "fallback", "/pypi/web/simple/dpctl-app/") > before
    assert upstream_requests(engine, "fallback", "/pypi/web/files/dpctl_app-1.0-py3-none-any.whl") >= 1
    assert st["upstream_reachable"] is False, st
    assert st["fallbacks"][0]["reachable"] is True, st


def test_primary_back_new_projects_come_from_it(cache, engine, tmp_path):
    container = engine.containers.get(Instance(NAME).container)
    probes = upstream_requests(engine, "upstream", "/simple/six/")
    # nginx resolves the primary's name again within seconds (resolver valid=10s): wait until it does.
    for _ in range(60):
        probe.fetch_in_container(Cache(container), f"{failover.LOCAL_PREFIX}probe/simple/six/", 5)
        if upstream_requests(engine, "upstream", "/simple/six/") > probes:
            break
    else:
        pytest.fail("the failover server never reached the primary again")
    # The test upstreams serve the whole session: count this test's requests, not earlier modules'.
    page, wheel = "/simple/dpctl-big/", "/files/dpctl_big-1.0-py3-none-any.whl"
    page_before, wheel_before = upstream_requests(engine, "upstream", page), upstream_requests(engine, "upstream", wheel)
    fallback_before = upstream_requests(engine, "fallback", "/pypi/web/simple/dpctl-big/")
    installed = pip_install(cache["index_url"], "dpctl-big", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The page twice: the front's answer, and devpi's record of it, made before devpi is asked for the wheel.
    assert upstream_requests(engine, "upstream", page) == page_before + 2
    assert upstream_requests(engine, "upstream", wheel) == wheel_before + 1
    assert upstream_requests(engine, "fallback", "/pypi/web/simple/dpctl-big/") == fallback_before


def test_a_fallback_serving_other_bytes_is_refused(cache, engine, tmp_path):
    result = run_cli(
        "set-upstream",
        cache["primary"]["url"],
        "--fallback",
        f"{cache['bad']['url']},{cache['fallback']['url']}",
        "--probe-project",
        "six",
        "--json",
        env=cache["env"],
    )
    assert result.exit_code == 0, result.output
    assert [f["url"] for f in json.loads(result.stdout)["fallbacks"]] == [cache["bad"]["url"], cache["fallback"]["url"]]
    project = EXTRA[0]  # never cached; only the fallbacks have it
    container = engine.containers.get(Instance(NAME).container)
    logs_before = len(container.logs())
    with upstream_stopped(engine):
        for install in (pip_install, uv_install):
            refused = install(cache["index_url"], project, tmp_path)
            assert refused.returncode != 0, refused.stdout + refused.stderr
    log = container.logs()[logs_before:].decode(errors="replace")
    assert "sha256 mismatch" in log, log[-3000:]
    wheel = f"{project.replace('-', '_')}-1.0-py3-none-any.whl"
    assert upstream_requests(engine, "fallback-bad", f"/files/{wheel}") >= 1
    # devpi stored nothing of the bad bytes ...
    url, digest = file_url(cache["index_url"], project, wheel)
    path = unquote(urlsplit(url).path)
    stored = "/data/server/+files" + path
    assert container.exec_run(["test", "-e", stored]).exit_code != 0
    # ... and with the good fallback first, devpi serves and stores the page's bytes.
    result = run_cli("set-upstream", cache["primary"]["url"], "--fallback", cache["fallback"]["url"], "--no-check", env=cache["env"])
    assert result.exit_code == 0, result.output
    answer, problem = probe.fetch_in_container(Cache(container), f"http://127.0.0.1:{DEVPI_PORT}{path}", 30, digest=True)
    assert answer == {"status": 200, "sha256": digest}, problem
    assert container.exec_run(["test", "-e", stored]).exit_code == 0


def test_fallback_none_goes_back_to_one_upstream(cache, engine):
    result = run_cli("set-upstream", cache["primary"]["url"], "--fallback", "none", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["fallbacks"] == [] and answer["upstream"]["url"] == cache["primary"]["url"], answer
    st = status_json(cache["env"])
    assert st["fallbacks"] == [] and st["upstream"] == cache["primary"]["url"], st
    assert upstream_container(engine).status  # the primary is still there for later modules


def host_url(engine, service: str, path: str) -> str:
    """The test upstream's URL from the host now: a stopped and restarted service gets a new port."""
    container = upstream_container(engine, service)
    container.reload()
    port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
    return f"http://127.0.0.1:{port}{path}"


def test_mirrors_test_reports_the_lagging_fallback(engine, test_upstream, fallback_upstreams):
    """`mirrors test` from the host: the fallback lacks dpctl-lib 1.1, which the primary has."""
    primary, fallback = host_url(engine, "upstream", "/simple"), host_url(engine, "fallback", "/pypi/web/simple")
    # --page-only: the fallback links its files on its compose-network name, which the host cannot resolve.
    result = run_cli(
        "mirrors",
        "test",
        fallback,
        primary,
        "--reference",
        primary,
        "--lag-projects",
        "dpctl-lib,six",
        "--project",
        "six",
        "--page-only",
        "--json",
    )
    assert result.exit_code == 0, result.output
    by_url = {r["url"]: r for r in json.loads(result.stdout)}
    behind = by_url[fallback]
    assert (behind["releases_behind"], behind["missing"]) == (1, ["dpctl-lib 1.1"]), behind
    assert behind["hours_behind"] is None  # the test upstream's pages give no upload times
    assert by_url[primary]["releases_behind"] == 0
    human = run_cli("mirrors", "test", fallback, "--reference", primary, "--lag-projects", "dpctl-lib", "--project", "six", "--page-only")
    assert "1 release behind" in human.stdout and "lacks dpctl-lib 1.1" in human.stdout, human.stdout
