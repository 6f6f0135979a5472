"""`up --web` gives devpi-web's pages to a browser, through the front server."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.support import RUN_ID, cache_env, free_port, leftovers, one_error_line, remove_cache, run_cli, up_on_test_upstream

NAME = f"web{RUN_ID}"
TAG = f"devpictl-test/devpi-web:{RUN_ID}"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture(scope="module")
def web_cache(engine, base_image, ca_bundle, test_upstream, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data"), TAG)
    try:
        index_url = up_on_test_upstream(env, test_upstream, "--web", "--base-image", base_image, "--ca-bundle", ca_bundle)
        yield index_url.removesuffix("/root/pypi/+simple/")
    finally:
        remove_cache(engine, NAME, env)
        engine.images.remove(TAG, force=True)


def test_the_image_says_it_has_devpi_web(engine, web_cache):
    assert engine.images.get(TAG).labels["devpictl.devpi-web"] != ""


def test_a_browser_gets_devpi_webs_pages(web_cache):
    # The front answered the readiness probe's page of six; devpi-web knows the project once devpi
    # has recorded that page behind it (templates/first_pages.py: within RECORD_WITHIN seconds).
    deadline = time.monotonic() + 60
    while True:
        page = httpx.get(f"{web_cache}/root/pypi/six", headers={"User-Agent": BROWSER, "Accept": "text/html"}, trust_env=False, timeout=60)
        if page.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert page.status_code == 200, page.text[:500]
    assert page.headers["content-type"].startswith("text/html")
    assert "six" in page.text and "1.16.0" in page.text  # the test upstream's version, from devpi-web's project page


def test_web_on_an_image_without_it_is_refused(engine, devpi_image, tmp_path):
    """An image named with --image (here DEVPICTL_IMAGE) is used as it is: without devpi-web, --web is refused."""
    env = cache_env(f"{NAME}x", tmp_path, devpi_image)
    result = run_cli("up", "--web", "--port", str(free_port()), env=env)
    assert result.exit_code != 0
    assert f"image {devpi_image} has no devpi-web (--web)" in one_error_line(result)
    assert leftovers(engine, f"{NAME}x") == []
