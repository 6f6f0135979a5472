"""The front answers the mirror's first pages (templates/first_pages.py) and devpi records them behind.

One cache on `upstream-meta` (core metadata announced with its sha256). Pages the front answered
carry `X-Devpictl-Page: front`; without first_pages.py (devpi answering, as before) every test
here fails on that header. devpi's own record is read inside the container, on its port.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import shutil
import time

import httpx
import pytest

from devpictl import layout
from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    cache_env,
    free_port,
    pip_run,
    remove_cache,
    run_cli,
    sha256,
    upstream_requests,
)

NAME = f"first{RUN_ID}"
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
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
    result = run_cli(
        "up",
        "--port",
        str(free_port()),
        "--network",
        metadata_upstream["network"],
        "--mirror",
        metadata_upstream["url"],
        "--probe-project",
        "dpctl-app",
        "--json",
        env=env,
    )
    try:
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        yield {"env": env, "index_url": out["index_url"], "container": engine.containers.get(f"devpictl-{NAME}")}
    finally:
        remove_cache(engine, NAME, env)


def devpi_page(container, project: str, accept: str) -> tuple[int, bytes]:
    """devpi's own answer for the page, asked on its port inside the container (nginx and first_pages.py left out)."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        f"r = urllib.request.Request('http://127.0.0.1:{layout.DEVPI_PORT}/root/pypi/+simple/{project}/',"
        f" headers={{'Accept': {accept!r}, 'User-Agent': {INSTALLER_AGENT!r}}})\n"
        "try:\n"
        "    a = urllib.request.urlopen(r, timeout=30); sys.stdout.buffer.write(b'200 ' + a.read())\n"
        "except urllib.error.HTTPError as e:\n"
        "    sys.stdout.buffer.write(str(e.code).encode() + b' ')\n"
    )
    done = container.exec_run([layout.PYTHON, "-c", script])
    status, _, body = done.output.partition(b" ")
    return int(status), body


def recorded(container) -> set[str]:
    """The projects devpi has recorded pages of: its own list of them, on its port."""
    script = (
        "import json, urllib.request\n"
        f"r = urllib.request.Request('http://127.0.0.1:{layout.DEVPI_PORT}/root/pypi', headers={{'Accept': 'application/json'}})\n"
        "print(json.dumps(sorted(json.load(urllib.request.urlopen(r, timeout=30))['result']['projects'])))\n"
    )
    return set(json.loads(container.exec_run([layout.PYTHON, "-c", script]).output))


def wait_recorded(container, project: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while project not in recorded(container):
        assert time.monotonic() < deadline, f"devpi never recorded {project}"
        time.sleep(0.5)


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
