"""Switching a cache's upstream on the real engine and devpi: every cached page follows at once.

A cache on the test upstream holds pages it never downloaded a file of, then switches to
the ``fallback`` test upstream (another host and path, a release behind). With the old
upstream stopped, the pages and the files they list come from the new one: devpi marked
every cached page stale in one request (templates/devpictl_mirror_auth.py), and fetching a
page again points its files at the new upstream. Back with --refresh-pages, every page is
fetched at once, one refresh each.
"""

from __future__ import annotations

import json

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.mirror_roots import LAGGING
from tests.integration.support import (
    RUN_ID,
    cache_env,
    pip_install,
    remove_cache,
    run_cli,
    simple_files,
    up_answer,
    upstream_requests,
    upstream_stopped,
    uv_install,
)

NAME = f"sw{RUN_ID}"
PAGES = ["dpctl-app", "dpctl-lib", "dpctl-util"]  # pages cached, none of their files
NEW_WHEEL = "dpctl_app-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, fallback_upstreams, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data-switch"), devpi_image)
    try:
        answer = up_answer(env, test_upstream)
        index_url = answer["index_url"]
        for project in PAGES:
            response = httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
            assert response.status_code == 200, response.text
        installed = pip_install(index_url, "six", tmp_path_factory.mktemp("six"))  # a page with a stored file
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield {"env": env, "index_url": index_url, "primary": test_upstream, "fallback": fallback_upstreams[0]}
    finally:
        remove_cache(engine, NAME, env)


def test_a_switch_marks_every_cached_page_stale_and_the_new_upstream_serves_them(cache, engine, tmp_path):
    assert LAGGING in simple_files(cache["index_url"], "dpctl-lib")  # cached from the primary
    result = run_cli("set-upstream", cache["fallback"]["url"], "--probe-project", "six", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    actions = json.loads(result.stdout)["actions"]
    assert (
        f"marked {len(PAGES) + 1} cached project pages stale: each comes from the new upstream at its next request; "
        "1 with stored files are served as they are while that upstream fails"
    ) in actions, actions
    assert not any(a.startswith("refreshed") for a in actions), actions
    files_before = upstream_requests(engine, "fallback", f"/pypi/web/files/{NEW_WHEEL}")
    with upstream_stopped(engine):
        # The page comes from the new upstream, a release behind ...
        assert LAGGING not in simple_files(cache["index_url"], "dpctl-lib")
        # ... and so does a file whose page was cached from the old one and never fetched.
        for install in (pip_install, uv_install):
            done = install(cache["index_url"], "dpctl-app==1.0", tmp_path / install.__name__)
            assert done.returncode == 0, done.stdout + done.stderr
        stored = pip_install(cache["index_url"], "six", tmp_path / "six")  # stored before: still served
        assert stored.returncode == 0, stored.stdout + stored.stderr
    # One fetch from the new upstream for both installers: devpi stored it.
    assert upstream_requests(engine, "fallback", f"/pypi/web/files/{NEW_WHEEL}") == files_before + 1


def test_refresh_pages_fetches_every_page_now(cache, engine):
    before = upstream_requests(engine, "upstream", "/simple/dpctl-util/")
    result = run_cli("set-upstream", cache["primary"]["url"], "--refresh-pages", "--probe-project", "six", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    actions = json.loads(result.stdout)["actions"]
    assert any(a.startswith(f"refreshed {len(PAGES) + 1} cached project pages") for a in actions), actions
    # Fetched during the switch, not at a later request.
    assert upstream_requests(engine, "upstream", "/simple/dpctl-util/") == before + 1
    assert LAGGING in simple_files(cache["index_url"], "dpctl-lib")
