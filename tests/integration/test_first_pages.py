"""The front answers the mirror's first pages (templates/first_pages.py) and devpi records them behind.

One cache on `upstream-meta` (core metadata announced with its sha256). Pages the front answered
carry `X-Devpictl-Page: front`; without first_pages.py (devpi answering, as before) every test
here fails on that header. devpi's own record is read inside the container, on its port.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import shutil
import time

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    cache_env,
    devpi_page,
    free_port,
    installer_requests,
    pip_run,
    recorded,
    remove_cache,
    run_cli,
    sha256,
    stored_files,
    up_answer,
    upstream_container,
    upstream_requests,
    uv_run,
    wait_recorded,
)
from tests.integration.wheels import make_wheel, wheel_metadata

NAME = f"first{RUN_ID}"
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
JSON = {"Accept": "application/json"}
MARKED = "dpctl-marked"  # a page of this module's own: requires-python and yanked on its links


@pytest.fixture(scope="module")
def marked_page(metadata_upstream_root):
    """A project on `upstream-meta` whose links carry data-requires-python and data-yanked."""
    files = metadata_upstream_root / "files"
    links = []
    for release, attrs in (("1.0", ' data-yanked="broken build"'), ("1.1", ' data-requires-python="&gt;=3.8"'), ("1.2", "")):
        wheel = files / f"dpctl_marked-{release}-py3-none-any.whl"
        shutil.copyfile(files / "dpctl_lib-1.0-py3-none-any.whl", wheel)
        metadata = f"Metadata-Version: 2.1\nName: dpctl-marked\nVersion: {release}\n".encode()
        (files / f"{wheel.name}.metadata").write_bytes(metadata)
        meta = hashlib.sha256(metadata).hexdigest()
        links.append(
            f'<a href="../../files/{wheel.name}#sha256={sha256(wheel.read_bytes())}" '
            f'data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}"{attrs}>{wheel.name}</a><br>'
        )
    page = metadata_upstream_root / "simple" / MARKED / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return MARKED


@pytest.fixture(scope="module")
def cache(engine, devpi_image, metadata_upstream, marked_page, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data-first")
    env = cache_env(NAME, data_dir, devpi_image)
    try:
        out = up_answer(env, metadata_upstream, probe="dpctl-app")
        yield {"env": env, "index_url": out["index_url"], "container": engine.containers.get(f"devpictl-{NAME}"), "data_dir": data_dir}
    finally:
        remove_cache(engine, NAME, env)


def front_page(index_url: str, project: str, accept: str) -> httpx.Response:
    response = httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT, "Accept": accept}, trust_env=False, timeout=30)
    response.raise_for_status()
    return response


def test_the_page_the_front_answered_is_the_page_devpi_records(cache, marked_page):
    assert marked_page not in recorded(cache["container"])
    answered = {accept: front_page(cache["index_url"], marked_page, accept) for accept in (JSON_PAGE, "text/html")}
    assert {r.headers.get("X-Devpictl-Page") for r in answered.values()} == {"front"}
    wait_recorded(cache["container"], marked_page)
    for accept, response in answered.items():
        status, stored = devpi_page(cache["container"], marked_page, accept)
        assert status == 200
        # Byte for byte: the same files at the same +f paths, the same hashes, yanked, requires-python, core metadata.
        assert response.content == stored, (response.text, stored.decode())
    files = json.loads(answered[JSON_PAGE].content)["files"]
    assert [f.get("yanked") for f in files] == ["broken build", None, None]
    assert [f.get("requires-python") for f in files] == [None, ">=3.8", None]
    assert all(f["core-metadata"] is True and f["url"].startswith("../../+f/") for f in files)


def test_a_file_and_its_metadata_asked_right_after_the_first_page_are_served(cache, metadata_upstream_root, tmp_path):
    page = front_page(cache["index_url"], "dpctl-util", JSON_PAGE)
    assert page.headers.get("X-Devpictl-Page") == "front"
    entry = json.loads(page.content)["files"][0]
    url = str(httpx.URL(f"{cache['index_url']}dpctl-util/").join(entry["url"]))
    metadata = httpx.get(url + ".metadata", trust_env=False, timeout=30)
    assert metadata.status_code == 200
    assert metadata.content == (metadata_upstream_root / "files" / f"{entry['filename']}.metadata").read_bytes()
    # ... and pip installs the wheel that page listed, before or after devpi recorded it.
    done = pip_run(cache["index_url"], tmp_path, "download", "--no-deps", "-d", str(tmp_path / "d"), "dpctl-util")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sha256((tmp_path / "d" / entry["filename"]).read_bytes()) == entry["hashes"]["sha256"]


def test_twelve_concurrent_cold_requests_for_one_page_cost_one_front_fetch_and_one_devpi_record(cache, engine):
    project = "dpctl-big"
    before = upstream_requests(engine, "upstream-meta", f"/simple/{project}/")

    def one(_: int) -> httpx.Response:
        return httpx.get(f"{cache['index_url']}{project}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(one, range(12)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    wait_recorded(cache["container"], project)
    time.sleep(1)
    # One fetch by the front for the twelve clients, and devpi's one fetch to record the page.
    assert upstream_requests(engine, "upstream-meta", f"/simple/{project}/") == before + 2
    assert {r.headers.get("X-Devpictl-Page") for r in responses} == {"front"}


def absolute_links(page: httpx.Response) -> set[str]:
    """The page's links, absolute, hash fragments kept."""
    return {str(page.url.join(href)) for href in re.findall(r'href="([^"]+)"', page.text)}


def root_password(cache) -> str:
    return (cache["data_dir"] / "caches" / NAME / "root-password").read_text().strip()


def add_project(root, project: str) -> str:
    """A project of one wheel (with its announced core metadata) on `upstream-meta`, which no other test asks for."""
    wheel = make_wheel(root / "files", project, "1.0", [])
    metadata = wheel_metadata(wheel)
    (root / "files" / f"{wheel.name}.metadata").write_bytes(metadata)
    meta = hashlib.sha256(metadata).hexdigest()
    page = root / "simple" / project / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        f'<a href="../../files/{wheel.name}#sha256={sha256(wheel.read_bytes())}" '
        f'data-dist-info-metadata="sha256={meta}" data-core-metadata="sha256={meta}">{wheel.name}</a><br>\n'
    )
    return wheel.name


def test_a_private_index_inheriting_root_pypi_lists_its_uploads_and_the_mirrored_files(cache, metadata_upstream_root, tmp_path):
    """devpi shows a mirror's releases of a project the index holds only for projects on its mirror_whitelist."""
    index_url = cache["index_url"]
    base, auth = index_url.split("/root/pypi/")[0], ("root", root_password(cache))
    created = httpx.put(
        f"{base}/root/team",
        json={"type": "stage", "bases": ["root/pypi"], "mirror_whitelist": ["dpctl-lib"]},
        auth=auth,
        headers=JSON,
        trust_env=False,
        timeout=60,
    )
    assert created.status_code in (200, 201), created.text
    uploaded = make_wheel(tmp_path / "upload", "dpctl-lib", "2.0", [])
    answer = httpx.post(
        f"{base}/root/team/",
        data={":action": "file_upload", "name": "dpctl-lib", "version": "2.0"},
        files={"content": (uploaded.name, uploaded.read_bytes())},
        auth=auth,
        trust_env=False,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    # The mirror's first page from the front, then at once the team index's page, which devpi merges.
    mirrored = front_page(index_url, "dpctl-lib", "text/html")
    assert mirrored.headers.get("X-Devpictl-Page") == "front"
    team_url = index_url.replace("/root/pypi/", "/root/team/")
    team = front_page(team_url, "dpctl-lib", "text/html")
    assert "X-Devpictl-Page" not in team.headers
    names = sorted(re.findall(r">([^<]+\.whl)</a>", team.text))
    assert names == ["dpctl_lib-1.0-py3-none-any.whl", "dpctl_lib-1.1-py3-none-any.whl", uploaded.name]
    # The mirrored files at the +f paths the front's page gave them, and the upload.
    assert absolute_links(mirrored) < absolute_links(team)
    for pin in ("dpctl-lib==1.1", "dpctl-lib==2.0"):
        done = pip_run(team_url, tmp_path, "download", "--no-deps", "-d", str(tmp_path / "d"), pin)
        assert done.returncode == 0, done.stdout + done.stderr
    upstream_file = metadata_upstream_root / "files" / "dpctl_lib-1.1-py3-none-any.whl"
    assert (tmp_path / "d" / upstream_file.name).read_bytes() == upstream_file.read_bytes()
    assert (tmp_path / "d" / uploaded.name).read_bytes() == uploaded.read_bytes()


@pytest.fixture(scope="module")
def replica(engine, cache, metadata_upstream, tmp_path_factory):
    """A replica of the module's cache, on the upstream's network, where it finds its primary by container name."""
    name = f"firstrep{RUN_ID}"
    data_dir = tmp_path_factory.mktemp("devpictl-data-first-replica")
    env = cache_env(name, data_dir, cache["env"]["DEVPICTL_IMAGE"])
    secret = data_dir / "primary.secret"
    exported = run_cli("password", "--replica-secret", str(secret), "--json", env=cache["env"])
    assert exported.exit_code == 0, exported.output
    result = run_cli(
        "up",
        "--port",
        str(free_port()),
        "--network",
        metadata_upstream["network"],
        "--replica-of",
        f"http://devpictl-{NAME}:3141",
        "--replica-secret",
        str(secret),
        "--probe-project",
        "dpctl-app",
        "--json",
        env=env,
    )
    try:
        assert result.exit_code == 0, result.output
        yield {"index_url": json.loads(result.stdout)["index_url"], "container": engine.containers.get(f"devpictl-{name}")}
    finally:
        remove_cache(engine, name, env)


def test_a_replica_serves_the_pages_and_files_its_primarys_front_answered_first(cache, replica, metadata_upstream_root, tmp_path):
    project = "dpctl-replicated"
    wheel = add_project(metadata_upstream_root, project)
    first = front_page(cache["index_url"], project, "text/html")
    assert first.headers.get("X-Devpictl-Page") == "front"
    wait_recorded(cache["container"], project)
    served = front_page(replica["index_url"], project, "text/html")
    assert re.findall(r'href="([^"]+)"', served.text) == re.findall(r'href="([^"]+)"', first.text)
    done = pip_run(replica["index_url"], tmp_path, "download", "--no-deps", "-d", str(tmp_path / "d"), project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "d" / wheel).read_bytes() == (metadata_upstream_root / "files" / wheel).read_bytes()


def test_a_replica_gets_a_page_its_primary_never_recorded_from_the_primarys_devpi(cache, replica, metadata_upstream_root, tmp_path):
    """A replica waits for its primary's record of a page (devpi's serial header): the primary's front must not answer it."""
    project = "dpctl-unrecorded"
    wheel = add_project(metadata_upstream_root, project)
    assert project not in recorded(cache["container"])
    served = front_page(replica["index_url"], project, "text/html")
    assert "X-Devpictl-Page" not in served.headers
    assert re.findall(r">([^<]+\.whl)</a>", served.text) == [wheel]
    # The replica's page is the one its primary's devpi recorded.
    assert project in recorded(cache["container"])
    status, stored = devpi_page(cache["container"], project, "text/html")
    assert status == 200
    assert re.findall(r'href="([^"]+)"', served.text) == re.findall(r'href="([^"]+)"', stored.decode())
    done = pip_run(replica["index_url"], tmp_path, "download", "--no-deps", "-d", str(tmp_path / "d"), project)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_wheel_asked_right_after_its_first_page_installs_when_the_upstreams_project_list_lacks_it(
    cache, metadata_upstream_root, tmp_path
):
    """devpi finds a file of a page it has not recorded only for a project its copy of the upstream's list names; else 404."""
    project = "dpctl-unlisted"
    wheel = add_project(metadata_upstream_root, project)
    page = front_page(cache["index_url"], project, "text/html")
    assert page.headers.get("X-Devpictl-Page") == "front"
    assert project not in recorded(cache["container"])
    done = pip_run(cache["index_url"], tmp_path, "download", "--no-deps", "-d", str(tmp_path / "d"), project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "d" / wheel).read_bytes() == (metadata_upstream_root / "files" / wheel).read_bytes()


@pytest.fixture(scope="module")
def ranged_cache(engine, devpi_image, ranged_upstream, tmp_path_factory):
    """A cache on `upstream-ranges`: no core metadata announced, files that answer ranges."""
    name = f"ranges{RUN_ID}"
    env = cache_env(name, tmp_path_factory.mktemp("devpictl-data-ranges"), devpi_image)
    try:
        out = up_answer(env, ranged_upstream, probe="six")
        assert out["core_metadata"] is False, out
        yield {"env": env, "index_url": out["index_url"], "container": engine.containers.get(f"devpictl-{name}")}
    finally:
        remove_cache(engine, name, env)


def upstream_file_requests(engine) -> list[str]:
    """The requests for files `upstream-ranges` has answered (its http.server log)."""
    log = upstream_container(engine, "upstream-ranges").logs(stdout=False, stderr=True).decode(errors="replace")
    return [line for line in log.splitlines() if " /files/" in line]


def test_uv_reads_wheels_the_cache_does_not_hold_by_ranges_and_devpi_stores_none(ranged_cache, engine, tmp_path):
    """Without core metadata uv reads each wheel's METADATA by ranges: passed to the upstream and kept by the front, no file stored.

    Were ranges of files not held sent to devpi, it would fetch and store each wheel whole.
    """
    requirements = tmp_path / "requirements.in"
    requirements.write_text("dpctl-app\n")
    compile_ = ("pip", "compile", "--no-header", "--index-url", ranged_cache["index_url"], str(requirements))
    done = uv_run(tmp_path, *compile_)
    assert done.returncode == 0 and "dpctl-lib==1.1" in done.stdout, done.stdout + done.stderr
    assert stored_files(ranged_cache["container"]) == []
    cold = [line for line in installer_requests(ranged_cache["container"], "uv/") if ".whl " in line]
    assert any('"GET ' in line and " 206 " in line for line in cold), cold
    assert any('"HEAD ' in line and " 200 " in line for line in cold), cold
    asked = upstream_file_requests(engine)
    assert asked, "the upstream was never asked for a range"
    # Warm: the same ranges and HEADs, every one from the front's copies; the upstream is not asked again.
    seen = len(installer_requests(ranged_cache["container"], "uv/"))
    again = uv_run(tmp_path, *compile_)
    assert again.returncode == 0 and again.stdout == done.stdout, again.stdout + again.stderr
    warm = [line for line in installer_requests(ranged_cache["container"], "uv/")[seen:] if ".whl " in line]
    assert warm and all("cache=HIT" in line for line in warm), warm
    assert upstream_file_requests(engine) == asked
    assert stored_files(ranged_cache["container"]) == []
