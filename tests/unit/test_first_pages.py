"""The front's first pages (templates/first_pages.py) on the host: devpi's few functions it calls faked.

In the image it imports devpi-server's parser, its +f path and its installer check; here small
fakes stand in for them (FakeURL, parse_index, ...), so what is tested is first_pages.py's own
work: content negotiation, the ranges it passes on, the pages it renders, and which requests
it answers and which it leaves to devpi. tests/integration/test_first_pages.py holds it to the
pages a real devpi records.
"""

from __future__ import annotations

import asyncio
import html
import json
import posixpath
import re
import sys
import types
import urllib.parse
from dataclasses import dataclass

import httpx
import pytest

from devpictl import image as img
from devpictl import page_policy as pp

HASH = "sha256=" + "0123456789abcdef" * 4
META = "fedcba9876543210" * 4
UV_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


class FakeURL:
    """devpi_common.url.URL, as far as first_pages.py uses it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def replace(self, **_: object) -> FakeURL:
        return self

    @property
    def url_nofrag(self) -> str:
        return self.url.partition("#")[0]

    @property
    def basename(self) -> str:
        return posixpath.basename(self.url_nofrag)

    @property
    def hash_type(self) -> str | None:
        return self.url.partition("#")[2].partition("=")[0] or None

    @property
    def hash_value(self) -> str | None:
        return self.url.partition("#")[2].partition("=")[2] or None

    def relpath(self, target: str) -> str:
        """devpi_common's: up from this URL's directory to where the two paths part, then down to ``target``."""
        here, there = urllib.parse.urlsplit(self.url).path.split("/"), target.split("/")
        for i, part in enumerate(here):
            if i >= len(there) or there[i] != part:
                return "../" * (len(here) - i - 1) + "/".join(there[i:])
        return "/".join(([here[-1]] if here[-1] else []) + there[len(here) :])


@dataclass
class FakeLink:
    """A link devpi's parser gives."""

    url: str
    requires_python: str | None = None
    yanked: object = False

    @property
    def basename(self) -> str:
        return FakeURL(self.url).basename

    @property
    def hash_spec(self) -> str:
        return self.url.partition("#")[2]

    @property
    def url_nofrag(self) -> str:
        return self.url.partition("#")[0]


def fake_parse_index(base: FakeURL, text: str) -> types.SimpleNamespace:
    """devpi's parse_index: here, one link per `<a href=...>`, with its data-requires-python and data-yanked."""
    links = []
    for attrs in re.findall(r"<a ([^>]*)>", text):
        values = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', attrs)}
        yanked: object = values.get("data-yanked", False)
        links.append(FakeLink(str(httpx.URL(base.url).join(values["href"])), values.get("data-requires-python"), yanked))
    return types.SimpleNamespace(releaselinks=links)


def devpi_modules() -> dict[str, types.ModuleType]:
    names = ("devpi_common", "devpi_common.url", "devpi_server", "devpi_server.filestore")
    modules = {name: types.ModuleType(name) for name in names}
    modules["devpi_common.url"].URL = FakeURL  # type: ignore[attr-defined]
    modules["devpi_server.filestore"].make_splitdir = lambda spec: (spec.split("=")[1][:3], spec.split("=")[1][3:16])  # type: ignore[attr-defined]
    mirror = modules["devpi_server.mirror"] = types.ModuleType("devpi_server.mirror")
    mirror.SIMPLE_API_ACCEPT = UV_ACCEPT  # type: ignore[attr-defined]
    mirror.parse_index = fake_parse_index  # type: ignore[attr-defined]
    views = modules["devpi_server.views"] = types.ModuleType("devpi_server.views")
    views.INSTALLER_USER_AGENT_REGEXP = re.compile(r"([^ ]* )*(distribute|setuptools|pip|pex|uv)/.*")  # type: ignore[attr-defined]
    return modules


@pytest.fixture(scope="module")
def fp():
    with pytest.MonkeyPatch.context() as patch:
        for name, module in devpi_modules().items():
            patch.setitem(sys.modules, name, module)
        patch.setitem(sys.modules, "page_policy", pp)  # the image puts it beside the plugin
        # Its dataclasses look their module up in sys.modules while it loads.
        module = types.ModuleType("devpictl_first_pages")
        patch.setitem(sys.modules, module.__name__, module)
        exec(compile(img.render_template("first_pages.py"), "first_pages.py", "exec"), module.__dict__)
        yield module


UPSTREAM_PAGE = (
    f'<a href="../../files/demo-1.0-py3-none-any.whl#{HASH}" data-core-metadata="sha256={META}" data-yanked="broken">demo-1.0-py3-none-any.whl</a>\n'
    f'<a href="../../files/demo-1.1.tar.gz#{HASH}" data-requires-python="&gt;=3.8">demo-1.1.tar.gz</a>\n'
    f'<a href="https://elsewhere.example/demo-1.0-py3-none-any.whl#{HASH}">demo-1.0-py3-none-any.whl</a>\n'
)


def upstream_answer(text: str = UPSTREAM_PAGE, **headers: str) -> httpx.Response:
    return httpx.Response(200, text=text, headers=headers, request=httpx.Request("GET", "http://up.example/simple/demo/"))


@pytest.mark.parametrize(
    ("accept", "offer"),
    [
        (None, "text/html"),
        (UV_ACCEPT, "application/vnd.pypi.simple.v1+json"),
        ("text/html", "text/html"),
        ("*/*", "text/html"),
        ("application/vnd.pypi.simple.v1+json;q=0.5, text/html", "text/html"),
        ("application/json", None),
        ("text/html;q=0", None),
    ],
)
def test_the_page_type_is_the_one_devpi_would_pick(fp, accept, offer):
    assert fp.preferred(accept, ("text/html", fp.JSON_PAGE)) == offer


@pytest.mark.parametrize(
    ("wanted", "short"),
    [
        ("bytes=0-99", True),
        ("bytes=-65536", True),
        ("bytes=100-", False),
        ("bytes=0-99,200-299", False),
        ("bytes=0-99999999", False),
        (None, False),
    ],
)
def test_only_one_short_range_is_passed_to_the_upstream(fp, wanted, short):
    assert fp.short_range(wanted) is short


def test_a_page_links_each_file_at_the_f_path_devpi_gives_it_and_keeps_the_first_of_a_name(fp):
    page = fp.devpi_page(upstream_answer(**{"X-PYPI-LAST-SERIAL": "42"}), "demo")
    digest = HASH.partition("=")[2]
    assert [link.href for link in page.links] == [
        f"root/pypi/+f/{digest[:3]}/{digest[3:16]}/demo-1.0-py3-none-any.whl#{HASH}",
        f"root/pypi/+f/{digest[:3]}/{digest[3:16]}/demo-1.1.tar.gz#{HASH}",
    ]
    assert [link.url for link in page.links] == [
        "http://up.example/files/demo-1.0-py3-none-any.whl",
        "http://up.example/files/demo-1.1.tar.gz",
    ]
    assert page.serial == 42
    assert page.metadata == {"demo-1.0-py3-none-any.whl": META}


ODD_JSON_FILES = [
    {"filename": "a-1.0.tar.gz", "url": "../../f/a-1.0.tar.gz?q=2#frag", "hashes": {"md5": "abc"}},
    {"filename": "a-1.1.tar.gz", "url": "https://other.example/x/a%2B-1.1.tar.gz", "hashes": {}},
    {"filename": "a-1.2.tar.gz", "url": "a-1.2.tar.gz", "hashes": {"blake2b": "ff", "sha256": "00"}, "yanked": True},
    {"filename": "a-1.3.tar.gz", "url": "a-1.3.tar.gz;p=1", "hashes": {"nosuch": "ff"}, "yanked": "why", "requires-python": ">=3"},
]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        # What devpi-server 6.20.3's parse_index_v1_json gave for ODD_JSON_FILES (basename, hash_spec, url_nofrag, requires_python, yanked).
        (
            "https://u.example/simple/a/",
            [
                ("a-1.0.tar.gz", "md5=abc", "https://u.example/f/a-1.0.tar.gz", None, None),
                ("a+-1.1.tar.gz", "", "https://other.example/x/a%2B-1.1.tar.gz", None, None),
                ("a-1.2.tar.gz", "sha256=00", "https://u.example/simple/a/a-1.2.tar.gz", None, True),
                ("a-1.3.tar.gz", "", "https://u.example/simple/a/a-1.3.tar.gz", ">=3", "why"),
            ],
        ),
        (
            "https://u.example/simple/a/?k=v",
            [
                ("a-1.0.tar.gz", "md5=abc", "https://u.example/f/a-1.0.tar.gz?k=v", None, None),
                ("a+-1.1.tar.gz", "", "https://other.example/x/a%2B-1.1.tar.gz?k=v", None, None),
                ("a-1.2.tar.gz", "sha256=00", "https://u.example/simple/a/a-1.2.tar.gz?k=v", None, True),
                ("a-1.3.tar.gz", "", "https://u.example/simple/a/a-1.3.tar.gz?k=v", ">=3", "why"),
            ],
        ),
    ],
)
def test_json_links_are_the_ones_devpis_parser_makes(fp, base, expected):
    links = fp.json_releaselinks(base, {"meta": {"api-version": "1.1"}, "files": ODD_JSON_FILES})
    assert [(x.basename, x.hash_spec, x.url_nofrag, x.requires_python, x.yanked) for x in links] == expected


def test_a_json_page_devpi_would_refuse_is_refused(fp):
    with pytest.raises(ValueError, match="API version"):
        fp.json_releaselinks("https://u.example/simple/a/", {"meta": {"api-version": "2.0"}, "files": []})
    # devpi's BasenameMeta refuses no file name: one naming no version is kept, as devpi keeps it.
    (link,) = fp.json_releaselinks("https://u.example/simple/a/", {"meta": {}, "files": [{"url": "a.tar.gz", "hashes": {}}]})
    assert (link.basename, link.url_nofrag, link.hash_spec) == ("a.tar.gz", "https://u.example/simple/a/a.tar.gz", "")


def test_a_page_with_a_link_without_a_hash_is_left_to_devpi(fp):
    assert fp.devpi_page(upstream_answer('<a href="../../files/demo-1.0.tar.gz">demo-1.0.tar.gz</a>'), "demo") is None


def test_the_rendered_pages_keep_yanked_requires_python_and_announce_metadata_for_wheels_only(fp):
    page = fp.devpi_page(upstream_answer(), "demo")
    rendered = fp.render_html("demo", page, "/root/pypi/+simple/demo/", True).decode()
    assert rendered.startswith('<!DOCTYPE html><html lang="en"><head><title>root/pypi: links for demo</title>')
    wheel, sdist = re.findall(r"<a [^>]*>", rendered)
    assert 'href="../../+f/' in wheel and 'data-core-metadata="true"' in wheel and 'data-yanked="broken"' in wheel
    assert "data-core-metadata" not in sdist and 'data-requires-python="&gt;=3.8"' in sdist
    body, headers = fp.policed("demo", page, "/root/pypi/+simple/demo/", False, True, pp.Policy())
    assert headers == [("X-Devpictl-Held-Back", "0")]
    files = json.loads(body)["files"]
    assert [(f["filename"], f.get("yanked"), f.get("requires-python"), "core-metadata" in f) for f in files] == [
        ("demo-1.0-py3-none-any.whl", "broken", None, False),
        ("demo-1.1.tar.gz", None, ">=3.8", False),
    ]
    assert files[0]["hashes"] == {"sha256": HASH.partition("=")[2]}


JSON_UPSTREAM_PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-1.0-py3-none-any.whl",
                "url": "../../files/demo-1.0-py3-none-any.whl",
                "hashes": {"sha256": HASH[7:]},
                "upload-time": "2020-01-01T00:00:00.000000Z",
                "size": 123,
            },
            {
                "filename": "demo-1.1.tar.gz",
                "url": "../../files/demo-1.1.tar.gz",
                "hashes": {"sha256": HASH[7:]},
                "upload-time": "2030-01-01T00:00:00.000000Z",
                "size": 456,
            },
        ],
    }
)


def json_upstream_answer() -> httpx.Response:
    return httpx.Response(
        200, text=JSON_UPSTREAM_PAGE, headers={"Content-Type": pp.JSON_PAGE}, request=httpx.Request("GET", "http://up.example/simple/demo/")
    )


def test_a_json_page_carries_the_upstreams_upload_times_and_sizes_with_api_1_1(fp):
    page = fp.devpi_page(json_upstream_answer(), "demo")
    body, _ = fp.policed("demo", page, "/root/pypi/+simple/demo/", False, True, pp.Policy())
    answered = json.loads(body)
    assert answered["meta"] == {"api-version": pp.API_VERSION} and answered["versions"] == ["1.0", "1.1"]
    assert [(f["upload-time"], f["size"]) for f in answered["files"]] == [
        ("2020-01-01T00:00:00.000000Z", 123),
        ("2030-01-01T00:00:00.000000Z", 456),
    ]


@pytest.mark.parametrize("as_json", [True, False])
def test_the_policy_holds_back_a_young_file_until_it_comes_of_age(fp, as_json):
    page = fp.devpi_page(json_upstream_answer(), "demo")
    now = pp.parse_time("2029-12-31T00:00:00Z")
    policy = pp.Policy(min_release_age=7 * 86400, clock_offset=now - __import__("time").time())
    body, headers = fp.policed("demo", page, "/root/pypi/+simple/demo/", False, as_json, policy)
    assert "demo-1.1.tar.gz" not in body.decode() and "demo-1.0-py3-none-any.whl" in body.decode()
    held = dict(headers)
    assert held["X-Devpictl-Held-Back"] == "1" and 8 * 86400 - 10 < int(held["X-Accel-Expires"]) <= 8 * 86400 + 1


@pytest.mark.parametrize("as_json", [True, False])
def test_a_denied_projects_files_point_at_the_refusal(fp, as_json):
    page = fp.devpi_page(upstream_answer(), "demo")
    body, _ = fp.policed("demo", page, "/root/pypi/+simple/demo/", True, as_json, pp.Policy(deny=("demo",)))
    text = body.decode()
    assert text.count(pp.DENIED_PREFIX + "demo/") == 2 and "+f/" not in text and "core-metadata" not in text


def test_without_a_policy_an_html_page_is_devpis_own(fp):
    page = fp.devpi_page(upstream_answer(), "demo")
    body, headers = fp.policed("demo", page, "/root/pypi/+simple/demo/", True, False, pp.Policy())
    assert headers == [] and body == fp.render_html("demo", page, "/root/pypi/+simple/demo/", True)


def front_with(fp, upstream_pages: dict[str, str]) -> tuple[object, list[str]]:
    """A FirstPages whose devpi and upstream are fakes; the paths devpi was asked for."""
    front = fp.FirstPages()
    asked: list[str] = []

    def devpi(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/root/pypi":
            return httpx.Response(200, json={"result": {"type": "mirror", "mirror_url": "http://up.example/simple/"}})
        return httpx.Response(200, text="devpi's page", headers={"Content-Type": "text/html"})

    def upstream(request: httpx.Request) -> httpx.Response:
        project = request.url.path.split("/")[2]
        return httpx.Response(200, text=upstream_pages[project]) if project in upstream_pages else httpx.Response(404)

    front.devpi = httpx.AsyncClient(base_url=fp.DEVPI, transport=httpx.MockTransport(devpi))
    front.upstream = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    return front, asked


def ask(front, target: str, **headers: str):
    return asyncio.run(front.handle("GET", target, {k.replace("_", "-"): v for k, v in headers.items()}))


def test_an_installers_first_page_is_answered_from_the_upstream_and_queued_for_devpi_to_record(fp):
    front, asked = front_with(fp, {"demo": UPSTREAM_PAGE})
    answer = ask(front, "/root/pypi/+simple/demo/", user_agent="pip/24.0", accept="text/html")
    assert answer.status == 200 and ("X-Devpictl-Page", "front") in answer.headers
    assert b"demo-1.1.tar.gz" in answer.body
    assert asked == ["/root/pypi"]  # its settings only: devpi records the page later
    assert front.queued == {"demo"}


@pytest.mark.parametrize(
    "headers",
    [
        {"user_agent": "Mozilla/5.0", "accept": "text/html"},  # a browser gets devpi's richer page
        {"user_agent": "devpi-server/6.20.3", "accept": UV_ACCEPT, "x_devpi_replica_uuid": "r1"},  # a replica waits for devpi's serial
        {"user_agent": "pip/24.0", "x_devpi_absolute_urls": "1"},
    ],
)
def test_pages_only_devpi_can_give_go_to_devpi(fp, headers):
    front, asked = front_with(fp, {"demo": UPSTREAM_PAGE})
    answer = ask(front, "/root/pypi/+simple/demo/", **headers)
    assert answer.body == b"devpi's page"
    assert asked[-1] == "/root/pypi/+simple/demo/"
    assert not front.queued


def test_a_page_the_upstream_does_not_have_is_devpis_answer(fp):
    front, asked = front_with(fp, {})
    assert ask(front, "/root/pypi/+simple/missing/", user_agent="uv/0.5").body == b"devpi's page"
    assert asked[-1] == "/root/pypi/+simple/missing/"


def test_a_whole_file_of_a_page_the_front_gave_goes_to_devpi_once_devpi_recorded_that_page(fp):
    """devpi answers 404 for a file of a page it has not recorded when its project list does not name the project yet."""
    front, asked = front_with(fp, {"demo": UPSTREAM_PAGE})

    async def page_then_file() -> object:
        await front.handle("GET", "/root/pypi/+simple/demo/", {"user-agent": "pip/24.0"})
        wheel = front.pages["demo"].links[0].href.partition("#")[0].replace("+f", "%2Bf")  # as pip quotes it
        return await front.handle("GET", f"/{wheel}", {"user-agent": "pip/24.0"})

    answer = asyncio.run(page_then_file())
    assert answer.headers == [("X-Accel-Redirect", fp.WHOLE_FILE)]
    assert asked == ["/root/pypi", "/root/pypi/+simple/demo/"]
    assert front.recorded == {"demo"}


def test_after_a_switch_devpi_records_a_page_again_before_it_is_asked_for_a_file_of_it(fp):
    """devpi keeps the old upstream's links of a page until it fetches it again: its file would come from there."""
    front, asked = front_with(fp, {"demo": UPSTREAM_PAGE})
    wheel = "/" + fp.devpi_page(upstream_answer(), "demo").links[0].href.partition("#")[0]

    async def switch_between() -> None:
        await front.handle("GET", "/root/pypi/+simple/demo/", {"user-agent": "pip/24.0", "x-devpictl-generation": "1"})
        await front.handle("GET", wheel, {"user-agent": "pip/24.0", "x-devpictl-generation": "1"})
        front.devpi = httpx.AsyncClient(
            base_url=fp.DEVPI,
            transport=httpx.MockTransport(
                lambda r: (
                    asked.append(r.url.path),
                    httpx.Response(200, json={"result": {"type": "mirror", "mirror_url": "http://new.example/simple/"}}),
                )[1]
            ),
        )
        front.upstream = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, text=UPSTREAM_PAGE)))
        await front.handle("GET", "/root/pypi/+simple/demo/", {"user-agent": "pip/24.0", "x-devpictl-generation": "2"})
        await front.handle("GET", wheel, {"user-agent": "pip/24.0", "x-devpictl-generation": "2"})

    asyncio.run(switch_between())
    assert asked.count("/root/pypi/+simple/demo/") == 2


def test_a_head_answer_keeps_the_upstreams_length(fp):
    """uv reads a wheel by ranges only when the HEAD says how long it is; without it, it downloads the whole wheel."""

    class Front:
        async def handle(self, method: str, target: str, headers: dict[str, str]):
            return fp.Answer(200, [("Content-Type", "application/zip"), ("content-length", "33763914"), ("accept-ranges", "bytes")])

    async def head() -> httpx.Response:
        server = await asyncio.start_server(lambda r, w: fp.serve(Front(), r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(trust_env=False) as client:
            return await client.head(f"http://127.0.0.1:{port}/root/pypi/+f/012/3456789abcdef/demo-1.0-py3-none-any.whl")

    response = asyncio.run(head())
    assert response.headers["content-length"] == "33763914"
    assert response.headers["accept-ranges"] == "bytes"


def test_the_plain_http_transport_keeps_connections_alive_reads_heads_and_retries_a_closed_one(fp):
    """PlainHTTP, httpx's transport for http:// upstreams, against a real server on loopback that drops a connection after its second answer."""
    connections, seen = [], []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n")[0].decode()
            seen.append(line)
            body = b"hello" if line.startswith("GET /page") else b""
            if line.startswith("GET /moved"):
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: /page\r\nContent-Length: 0\r\n\r\n")
            else:
                length = 5 if line.startswith(("GET /page", "HEAD")) else 0
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nAccept-Ranges: bytes\r\n\r\n%s" % (length, body))
            await writer.drain()
        writer.close()  # the third request on this connection finds it closed

    async def run() -> list[tuple[int, bytes, str | None]]:
        listening = await asyncio.start_server(server, "127.0.0.1", 0)
        port = listening.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(mounts={"http://": fp.PlainHTTP()}, follow_redirects=True) as client:
            answers = []
            for method, path in (("GET", "/page"), ("HEAD", "/file"), ("GET", "/moved"), ("GET", "/page")):
                response = await client.request(method, f"http://127.0.0.1:{port}{path}")
                answers.append((response.status_code, response.content, response.headers.get("content-length")))
            # Streamed, as answer_file passes a range on.
            response = await client.send(client.build_request("GET", f"http://127.0.0.1:{port}/page"), stream=True)
            answers.append((response.status_code, b"".join([chunk async for chunk in response.aiter_raw()]), "streamed"))
            await response.aclose()
        listening.close()
        return answers

    answers = asyncio.run(run())
    assert answers == [(200, b"hello", "5"), (200, b"", "5"), (200, b"hello", "5"), (200, b"hello", "5"), (200, b"hello", "streamed")]
    assert seen == [
        "GET /page HTTP/1.1",
        "HEAD /file HTTP/1.1",
        "GET /moved HTTP/1.1",
        "GET /page HTTP/1.1",
        "GET /page HTTP/1.1",
        "GET /page HTTP/1.1",
    ]
    # Two requests per connection, kept alive; the one sent on the closed connection went again on a new one.
    assert len(connections) == 3
