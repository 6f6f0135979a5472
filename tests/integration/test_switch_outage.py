"""A switch keeps what the cache holds through an outage of the new upstream, on the real engine and devpi.

A cache on the test upstream stores six and dpctl-lib 1.0 (its page also lists 1.1, never
fetched) and holds dpctl-app's page without a file. It switches to the ``fallback`` test
upstream, which then stops, and so does the old one: every stored file still installs with
pip and uv, from pages that list only what the cache holds, and `status` counts them as the
previous upstream's. Back, the new upstream answers the pages. The same again for a switch to
a failover chain whose every member is down. A switch that forgot the pages (the plugin
before) fails this: devpi would have no page to serve while the upstream is gone.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.mirror_roots import LAGGING
from tests.integration.support import (
    RUN_ID,
    cache_env,
    pip_install,
    pip_run,
    remove_cache,
    run_cli,
    simple_files,
    status_json,
    up_on_test_upstream,
    upstream_requests,
    upstream_stopped,
    uv_install,
)

NAME = f"swo{RUN_ID}"
STORED = ["six", "dpctl-lib==1.0"]
LIB_1_0 = "dpctl_lib-1.0-py3-none-any.whl"
PAGE_ONLY = "dpctl-app"  # its page cached, none of its files
NEVER_CACHED = "attrs"  # neither the cache nor any test upstream has it


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, fallback_upstreams, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data-switch-outage"), devpi_image)
    try:
        index_url = up_on_test_upstream(env, test_upstream)
        for requirement in STORED:
            done = pip_install(index_url, requirement, tmp_path_factory.mktemp("stored"))
            assert done.returncode == 0, done.stdout + done.stderr
        page = httpx.get(f"{index_url}{PAGE_ONLY}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
        assert page.status_code == 200, page.text
        assert LAGGING in simple_files(index_url, "dpctl-lib")  # listed by the old upstream, never fetched
        yield {"env": env, "index_url": index_url, "primary": test_upstream, "fallback": fallback_upstreams[0]}
    finally:
        remove_cache(engine, NAME, env)


def served_from_what_the_cache_holds(cache, tmp_path, stored: list[str]) -> None:
    """With every upstream down: what the cache stored installs, listed alone; the rest fails with pip's own words."""
    index_url = cache["index_url"]
    # The page lists the stored release only: 1.1 was never fetched, so its bytes are not here.
    assert simple_files(index_url, "dpctl-lib") == [LIB_1_0]
    for requirement in stored:
        for install in (pip_install, uv_install):
            done = install(index_url, requirement, tmp_path / install.__name__)
            assert done.returncode == 0, f"{install.__name__} {requirement}: {done.stdout}{done.stderr}"
    missing = pip_run(index_url, tmp_path, "install", "--no-deps", "--target", str(tmp_path / "t"), NEVER_CACHED)
    assert missing.returncode != 0
    assert f"No matching distribution found for {NEVER_CACHED}" in missing.stderr, missing.stderr


def eventually(check, seconds: float = 60) -> None:
    """``check()`` holds within ``seconds``: the front keeps a stale page 10 s, nginx resolves names for 10 s."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            assert check()
            return
        except (AssertionError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


def test_a_switched_cache_serves_what_it_holds_while_the_new_upstream_is_down(cache, engine, tmp_path):
    result = run_cli("set-upstream", cache["fallback"]["url"], "--probe-project", "six", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert (
        "marked 3 cached project pages stale: each comes from the new upstream at its next request; "
        "2 with stored files are served as they are while that upstream fails"
    ) in json.loads(result.stdout)["actions"]
    with upstream_stopped(engine, "fallback", "upstream"):  # the old one too: nothing may come from it
        served_from_what_the_cache_holds(cache, tmp_path, STORED)
        st = status_json(cache["env"])
        assert (st["cached_pages"], st["pages_from_previous_upstream"]) == (3, 2), st
        assert "2 still from the previous upstream" in run_cli("status", env=cache["env"]).stdout
    # The new upstream back: the pages come from it, the never-fetched file with them.
    lib_page = "/pypi/web/simple/dpctl-lib/"
    before = upstream_requests(engine, "fallback", lib_page)

    def from_the_new_upstream() -> bool:
        simple_files(cache["index_url"], "dpctl-lib")
        return upstream_requests(engine, "fallback", lib_page) > before

    eventually(from_the_new_upstream)
    assert simple_files(cache["index_url"], PAGE_ONLY) == ["dpctl_app-1.0-py3-none-any.whl"]
    for install in (pip_install, uv_install):
        done = install(cache["index_url"], f"{PAGE_ONLY}==1.0", tmp_path / f"back-{install.__name__}")
        assert done.returncode == 0, done.stdout + done.stderr
    simple_files(cache["index_url"], "six")
    # The front answers these pages from the new upstream at once; devpi records them behind it.
    eventually(lambda: status_json(cache["env"])["pages_from_previous_upstream"] == 0)


def test_a_switch_to_a_failover_chain_whose_every_member_is_down(cache, engine, tmp_path):
    result = run_cli(
        "set-upstream",
        cache["primary"]["url"],
        "--fallback",
        cache["fallback"]["url"],
        "--probe-project",
        "six",
        "--json",
        env=cache["env"],
    )
    assert result.exit_code == 0, result.output
    assert any(a.startswith("marked 3 cached project pages stale") for a in json.loads(result.stdout)["actions"]), result.stdout
    with upstream_stopped(engine, "upstream", "fallback"):
        served_from_what_the_cache_holds(cache, tmp_path, [*STORED, f"{PAGE_ONLY}==1.0"])
        assert status_json(cache["env"])["pages_from_previous_upstream"] == 3
    # The chain's primary back: its page, with the release the fallback lacks.
    eventually(lambda: LAGGING in simple_files(cache["index_url"], "dpctl-lib"))
