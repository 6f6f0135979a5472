"""Core metadata (PEP 658/714) and one upstream fetch per file, against two real test upstreams.

`upstream-meta` serves <wheel>.metadata for the made wheels (tests/integration/wheels.py) and
announces it with its sha256; `upstream` serves the same wheels without. One cache serves the
module, in order: up on the first, resolve and install, concurrent cold requests, then a
switch to the second. Upstream fetches are counted in the upstreams' http.server logs.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    cache_env,
    file_url,
    installer_requests,
    pip_run,
    remove_cache,
    run_cli,
    sha256,
    stored_files,
    up_answer,
    upstream_container,
    upstream_requests,
    uv_run,
)
from tests.integration.wheels import BIG

NAME = f"meta{RUN_ID}"
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
PROJECTS = ["dpctl-app", "dpctl-lib", "dpctl-util", "dpctl-big"]
CLIENTS = 20


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, metadata_upstream, tmp_path_factory):
    """A cache on the upstream with core metadata, on both upstreams' network."""
    data_dir = tmp_path_factory.mktemp("devpictl-data-meta")
    env = cache_env(NAME, data_dir, devpi_image)
    try:
        out = up_answer(env, metadata_upstream, probe="dpctl-app")
        yield {"env": env, "up": out, "index_url": out["index_url"], "container": engine.containers.get(f"devpictl-{NAME}")}
    finally:
        remove_cache(engine, NAME, env)


def announced(index_url: str, project: str) -> tuple[list[str], list[str]]:
    """(URLs of every file, URLs of the files whose core metadata is announced) on the HTML and the JSON page."""
    base = f"{index_url}{project}/"
    html = httpx.get(base, headers={"User-Agent": INSTALLER_AGENT, "Accept": "text/html"}, trust_env=False, timeout=30)
    html.raise_for_status()
    files, with_metadata = [], []
    for tag in re.findall(r"<a [^>]*>", html.text):
        href = re.search(r'href="([^"#]+)', tag).group(1)
        url = str(httpx.URL(base).join(href))
        files.append(url)
        if "data-core-metadata=" in tag:
            assert "data-dist-info-metadata=" in tag, tag  # both names, for older installers (PEP 714)
            with_metadata.append(url)
    page = httpx.get(base, headers={"User-Agent": INSTALLER_AGENT, "Accept": JSON_PAGE}, trust_env=False, timeout=30)
    page.raise_for_status()
    for entry in page.json()["files"]:
        url = str(httpx.URL(base).join(entry["url"]))
        files.append(url)
        if entry.get("core-metadata"):
            with_metadata.append(url)
    return files, with_metadata


def uv_compile(index_url: str, tmp_path, *args: str):
    """`uv pip compile` of dpctl-app through ``index_url``."""
    requirements = tmp_path / "requirements.in"
    requirements.write_text("dpctl-app\n")
    return uv_run(tmp_path, "pip", "compile", "--no-header", "--index-url", index_url, *args, str(requirements))


def resolved(index_url: str, tmp_path) -> str:
    done = uv_compile(index_url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_up_measures_and_announces_core_metadata(cache):
    assert cache["up"]["core_metadata"] is True
    assert any(
        a.startswith("announcing core metadata: dpctl_app-1.0-py3-none-any.whl.metadata matches the announced sha256")
        for a in cache["up"]["actions"]
    ), cache["up"]
    status = run_cli("status", "--json", env=cache["env"])
    assert json.loads(status.stdout)["core_metadata"] is True
    text = run_cli("status", env=cache["env"]).stdout
    assert "core metadata: served" in text
    files, with_metadata = announced(cache["index_url"], "dpctl-lib")
    assert len(files) == 4 and sorted(with_metadata) == sorted(files)


def test_uv_resolves_without_storing_a_wheel(cache, tmp_path):
    before = stored_files(cache["container"])
    assert not any(path.endswith(".whl") for path in before), before
    lock = resolved(cache["index_url"], tmp_path)
    assert "dpctl-lib==1.1" in lock and "dpctl-util==1.0" in lock, lock
    # The volume's files are unchanged: uv read every candidate's metadata, no wheel.
    assert stored_files(cache["container"]) == before


def test_pip_resolves_through_the_cache(cache, tmp_path):
    # pip reads the announced metadata too, but then fetches the wheels it chose, even
    # for --dry-run (docs/core-metadata.md): no claim about the volume here.
    done = pip_run_ok(cache["index_url"], tmp_path, "install", "--dry-run", "--ignore-installed", "dpctl-app")
    assert "Would install dpctl-app-1.0 dpctl-lib-1.1 dpctl-util-1.0" in done.stdout, done.stdout


def pip_run_ok(index_url: str, tmp_path, *args: str):
    done = pip_run(index_url, tmp_path, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_warm_resolution_never_goes_upstream(cache, engine, tmp_path):
    log_before = upstream_log_length(engine, "upstream-meta")
    lock = resolved(cache["index_url"], tmp_path)
    assert "dpctl-lib==1.1" in lock
    # The front server kept the pages and the metadata answers of the cold run.
    assert upstream_log_length(engine, "upstream-meta") == log_before
    metadata_url = f"{file_url(cache['index_url'], 'dpctl-app', 'dpctl_app-1.0-py3-none-any.whl')[0]}.metadata"
    response = httpx.get(metadata_url, trust_env=False, timeout=30)
    assert response.status_code == 200 and response.headers.get("X-Devpictl-Cache") == "HIT"
    assert b"Requires-Dist: dpctl-lib>=1.0" in response.content


def upstream_log_length(engine, service: str) -> int:
    return len(upstream_container(engine, service).logs(stdout=False, stderr=True).splitlines())


def test_uv_and_pip_install_through_the_cache(cache, tmp_path):
    done = uv_run(tmp_path, "pip", "install", "--target", str(tmp_path / "uv"), "--index-url", cache["index_url"], "dpctl-app")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "+ dpctl-lib==1.1" in done.stderr, done.stderr
    done = pip_run_ok(cache["index_url"], tmp_path, "install", "--target", str(tmp_path / "pip"), "dpctl-app")
    assert "Successfully installed dpctl-app-1.0 dpctl-lib-1.1 dpctl-util-1.0" in done.stdout, done.stdout


def concurrently(url: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """CLIENTS GETs of ``url`` at once, each on its own connection."""

    def one(_: int) -> httpx.Response:
        with httpx.Client(trust_env=False, timeout=120) as client:
            return client.get(url, headers=headers or {})

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def test_concurrent_requests_for_an_uncached_page_cost_one_front_fetch_and_one_devpi_record(cache, engine):
    before = upstream_requests(engine, "upstream-meta", "/simple/dpctl-big/")
    responses = concurrently(f"{cache['index_url']}dpctl-big/", {"User-Agent": INSTALLER_AGENT})
    assert {r.status_code for r in responses} == {200}
    assert all(BIG in r.text for r in responses)
    time.sleep(5)  # devpi records the page behind the front's answer (templates/first_pages.py)
    assert upstream_requests(engine, "upstream-meta", "/simple/dpctl-big/") == before + 2


def test_concurrent_requests_for_uncached_metadata_cost_one_upstream_fetch(cache, engine, metadata_upstream_root):
    expected = (metadata_upstream_root / "files" / f"{BIG}.metadata").read_bytes()
    url, _ = file_url(cache["index_url"], "dpctl-big", BIG)
    before = upstream_requests(engine, "upstream-meta", f"/files/{BIG}.metadata")
    responses = concurrently(url + ".metadata")
    assert [r.status_code for r in responses] == [200] * CLIENTS
    assert all(r.content == expected for r in responses)
    assert upstream_requests(engine, "upstream-meta", f"/files/{BIG}.metadata") == before + 1


def test_concurrent_requests_for_an_uncached_file_cost_one_upstream_fetch(cache, engine, metadata_upstream_root):
    wheel = (metadata_upstream_root / "files" / BIG).read_bytes()
    assert len(wheel) > 3_000_000
    url, digest = file_url(cache["index_url"], "dpctl-big", BIG)
    assert digest == sha256(wheel)
    before = upstream_requests(engine, "upstream-meta", f"/files/{BIG}")
    assert not any(path.endswith(BIG) for path in stored_files(cache["container"]))
    responses = concurrently(url)
    assert [r.status_code for r in responses] == [200] * CLIENTS
    assert {sha256(r.content) for r in responses} == {digest}
    assert upstream_requests(engine, "upstream-meta", f"/files/{BIG}") == before + 1
    # devpi stored it; from now on nginx serves it from disk.
    again = httpx.get(url, trust_env=False, timeout=60)
    assert again.headers.get("X-Devpictl-Served-From") == "disk" and sha256(again.content) == digest


def test_switch_to_an_upstream_without_metadata_announces_no_missing_file(cache, test_upstream, tmp_path):
    result = run_cli("set-upstream", test_upstream["url"], "--probe-project", "dpctl-app", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["core_metadata"] is False
    assert out["actions"][0] == "stopped announcing core metadata: dpctl_app-1.0-py3-none-any.whl.metadata answers HTTP 404"
    # Every page, HTML and JSON: whatever is announced must answer. Files devpi never stored
    # (dpctl-lib 1.0 among them) would 404 if the switch had kept the announcements.
    for project in PROJECTS:
        files, with_metadata = announced(cache["index_url"], project)
        assert files
        for url in with_metadata:
            response = httpx.get(url + ".metadata", trust_env=False, timeout=30)
            assert response.status_code == 200, (url, response.status_code, response.text[:200])
    assert json.loads(run_cli("status", "--json", env=cache["env"]).stdout)["core_metadata"] is False


def test_uv_and_pip_resolve_and_install_through_the_upstream_without_metadata(cache, tmp_path):
    lock = resolved(cache["index_url"], tmp_path)
    assert "dpctl-lib==1.1" in lock, lock
    done = uv_run(tmp_path, "pip", "install", "--target", str(tmp_path / "uv"), "--index-url", cache["index_url"], "dpctl-app")
    assert done.returncode == 0, done.stdout + done.stderr
    done = pip_run_ok(cache["index_url"], tmp_path, "install", "--target", str(tmp_path / "pip"), "dpctl-app", "dpctl-lib==1.0")
    assert "Successfully installed" in done.stdout and "dpctl-lib-1.0" in done.stdout, done.stdout


def test_warm_pip_resolution_is_answered_by_the_front_server_alone(cache, engine, tmp_path):
    """Without core metadata pip downloads every candidate wheel; warm, none of it reaches devpi or the upstream.

    What is left of a warm pip run is pip's own work (docs/core-metadata.md, Measured).
    """
    seen = len(installer_requests(cache["container"], "pip/"))
    upstream_before = upstream_log_length(engine, "upstream")
    done = pip_run_ok(cache["index_url"], tmp_path, "install", "--dry-run", "--ignore-installed", "dpctl-app", "dpctl-lib==1.0")
    assert "Would install dpctl-app-1.0 dpctl-lib-1.0 dpctl-util-1.0" in done.stdout, done.stdout
    lines = installer_requests(cache["container"], "pip/")[seen:]
    # Pages from nginx's page cache, wheels from the volume's disk: nothing passed to devpi.
    assert any(".whl " in line for line in lines), lines
    assert lines and all("cache=HIT" in line or "disk=disk" in line for line in lines), lines
    assert upstream_log_length(engine, "upstream") == upstream_before


def test_mirrors_test_shows_which_upstream_serves_metadata(test_upstream, metadata_upstream):
    # A generous --timeout: this is about the metadata column, and a mirror that runs out of time
    # on a loaded machine is measured as nothing (None), not as "no metadata".
    result = run_cli(
        "mirrors",
        "test",
        metadata_upstream["host_url"],
        test_upstream["host_url"],
        "--project",
        "dpctl-app",
        "--json",
        "--timeout",
        "60",
        env={"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
    )
    assert result.exit_code == 0, result.output
    rows = {row["url"]: row for row in json.loads(result.stdout)}
    assert rows[metadata_upstream["host_url"]]["core_metadata"] is True, rows
    assert rows[test_upstream["host_url"]]["core_metadata"] is False, rows[test_upstream["host_url"]]
    assert "answers HTTP 404" in rows[test_upstream["host_url"]]["core_metadata_detail"]
    table = run_cli(
        "mirrors",
        "test",
        metadata_upstream["host_url"],
        test_upstream["host_url"],
        "--project",
        "dpctl-app",
        "--timeout",
        "60",
        env={"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
    )
    assert "metadata" in table.stdout.splitlines()[0].split()
