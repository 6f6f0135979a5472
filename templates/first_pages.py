"""The front's answers for the mirror's first pages (runs inside the container, behind nginx, beside devpi).

    first_pages.py

devpi answers a page it has never fetched one at a time (a write transaction each, ~20-48 ms),
so a fresh cache resolves far slower than its upstream. nginx sends the mirror's page misses,
its `.metadata` misses and its HEAD and range requests for files not on disk here. This
process answers them from the upstream (devpi's mirror_url, over one kept-alive pool, many at
once) as devpi will answer them, and has devpi fetch and record each page behind, one devpi
fetch per page however many clients ask:

- a page: the upstream's page, parsed by devpi's own parser and every file linked to the
  `+f` path devpi gives it (``+f/{hash[:3]}/{hash[3:16]}/{filename}``, filestore.key_from_link),
  rendered as devpi renders it (views.py), requires-python, yanked and core metadata as devpi
  keeps them; the same bytes devpi serves once it has recorded the page;
- a `.metadata`: the upstream's, checked against the sha256 the upstream's page announced;
- a HEAD or a range of a file the cache does not hold: passed to the upstream, nothing stored.

Whatever it cannot answer so (an upstream that fails, a link without a hash, a browser) it
hands to devpi, unchanged: proxied for pages and metadata, an ``X-Accel-Redirect`` to the
front's whole-file fetch for files. The entrypoint starts it only on a primary that is not
offline; elsewhere nginx sends these requests to devpi itself.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import html.parser
import json
import os
import posixpath
import re
import ssl
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from types import SimpleNamespace
from typing import NamedTuple

import h11

# httpcore asks `import sniffio` on every request; where sniffio is not installed (anyio 4.16
# no longer needs it) each failed import scans sys.path again: 12 % of this process's CPU in a
# cold resolution. A None entry makes the import fail at once, as it would anyway.
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
import httpx
import page_policy as pp  # devpictl/page_policy.py, beside devpictl's devpi plugin in the image
from devpi_common.url import URL
from devpi_server.filestore import make_splitdir
from devpi_server.mirror import SIMPLE_API_ACCEPT, parse_index
from devpi_server.views import INSTALLER_USER_AGENT_REGEXP

PORT = int("{{ first_pages_port }}")
DEVPI = "http://127.0.0.1:{{ devpi_port }}"
SERVER_CONFIG = "{{ server_config }}"
AUTH_FILE = "{{ run_dir }}/{{ upstream_auth }}"  # {"URL without trailing slash": "Basic ..."}, as the devpi plugin reads it
# The page policy (`up --min-release-age`, `set-policy`): applied here as devpictl's devpi plugin applies it to devpi's pages.
POLICY = pp.PolicyFile("{{ run_dir }}/{{ page_policy_file }}")
WHOLE_FILE = "@{{ whole_file_location }}"  # the front's fetch of a whole file through devpi
INDEX = "root/pypi"
JSON_PAGE = pp.JSON_PAGE
PAGE = re.compile(r"^/root/pypi/\+simple/([^/?]+)/$")
FILE = re.compile(r"^/(root/pypi/\+f/[0-9a-f]{3}/[0-9a-f]{13}/([^/?]+))$")
CONFIG_SECONDS = 10  # root/pypi's settings are read again after this long (and at once after a switch)
BROKEN_SECONDS = 10  # after an upstream failure, requests go to devpi for this long
RECORDERS = 1  # devpi writes one page at a time: more would only wait on its database lock
# devpi records a page while the front is quiet this long (its CPU is the clients' too: a
# resolution's burst of first pages goes first), and at the latest this long after the page
# was answered. A file asked for meanwhile has devpi record its page at once (recorded_first).
QUIET_SECONDS = 1.0
RECORD_WITHIN = 20.0
# Connections to the upstream, kept alive. A burst of new ones costs more than it gains: through
# the test machine's TLS-inspecting proxy, 32 connections opened at once stalled 5 s (a connect
# timeout, so 10 s of BROKEN_SECONDS) where 24 or fewer answered 50 pages in 0.35 s (docs/core-metadata.md).
UPSTREAM_CONNECTIONS = 16
UPSTREAM_SECONDS = 15.0  # an upstream request that has not answered by then has failed
DEVPI_SECONDS = 300.0  # devpi's answer for a page it records: a large page takes it seconds
MAX_RANGE = 16 * 1024 * 1024  # a longer range is a file fetch: devpi stores it
KEPT_PAGES = 2000  # pages whose file URLs are kept for their metadata and range requests
REPLICA_HEADER = "x-devpi-replica-uuid"  # on every request a replica's devpi sends its primary
# An absolute link that urljoin, urlsplit and urlunsplit give back unchanged: printable ASCII without
# a query, params or fragment (?#;), brackets (urlsplit checks them) or whitespace (urlsplit strips it).
USUAL_LINK = re.compile(r'https?://[!"$-:<->@-Z\\^-~]+')
# A file name that urlsplit reads as path only: the href's hash is what follows its "#".
SAFE_NAME = re.compile(r"[\w.+!~-]+", re.ASCII)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def preferred(accept: str | None, offers: tuple[str, ...]) -> str | None:
    """The offer webob's ``acceptable_offers`` puts first (devpi's content negotiation); None: none acceptable."""
    if accept is None:
        return offers[0]
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((media.lower(), q))
    best: tuple[float, int, str] | None = None
    for order, offer in enumerate(offers):
        kind = offer.split("/")[0]
        matches = [((r == offer) * 2 + (r == f"{kind}/*"), q) for r, q in ranges if r in (offer, f"{kind}/*", "*/*")]
        if not matches:
            continue
        q = max(matches)[1]
        if q > 0 and (best is None or q > best[0]):
            best = (q, -order, offer)
    return best[2] if best else None


@dataclass
class Link:
    basename: str
    href: str  # devpi's: root/pypi/+f/.../NAME#sha256=...
    requires_python: str | None
    yanked: object
    url: str  # the upstream's


@dataclass
class Page:
    links: list[Link]
    serial: int
    metadata: dict[str, str]  # basename -> the sha256 of its core metadata the upstream announced
    times: dict[str, list]  # basename -> [upload-time, size] from the upstream's JSON page (PEP 700), as the plugin keeps them
    by_path: dict[str, Link] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_path = {link.href.partition("#")[0]: link for link in self.links}


class MetadataAnnounced(html.parser.HTMLParser):
    """basename -> sha256 of a link's core metadata, from an HTML page (devpi's parser does not keep it)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = dict(attrs)
        spec = values.get("data-core-metadata") or values.get("data-dist-info-metadata") or ""
        href = values.get("href") or ""
        if spec.startswith("sha256="):
            self.found[URL(href).basename] = spec.partition("=")[2]


def announced_metadata(text: str, data: dict | None) -> dict[str, str]:
    """basename -> sha256 of the core metadata the upstream's page announced (``data``: its PEP 691 JSON, None for HTML)."""
    if data is None:
        parser = MetadataAnnounced()
        parser.feed(text)
        return parser.found
    found = {}
    for item in data.get("files", []):
        spec = item.get("core-metadata") or item.get("dist-info-metadata")
        if isinstance(spec, dict) and "sha256" in spec:
            found[item["filename"]] = spec["sha256"]
    return found


def replaced(url: str, **parts: str) -> str:
    """devpi_common's ``URL(url).replace(...)`` of scheme, netloc, path, query or fragment: urlparse's parts, put together by urlunsplit."""
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.urlunsplit(
        tuple(parts.get(name, getattr(parsed, name)) for name in ("scheme", "netloc", "path", "query", "fragment"))
    )


def json_releaselinks(base: str, data: dict) -> list[SimpleNamespace]:
    """The links devpi's ``parse_index_v1_json`` makes of an upstream's PEP 691 page, without its URL objects.

    devpi's own parser builds several URL objects per file (0.76 s for a page of 4,400 files,
    which the front then answers 0.05 s after the upstream); this follows it step for step:
    ``_joinpath`` (the page's query kept, the link's dropped), the fragment from ``sha256``
    or else the first hash, and ``parse_hash_spec``'s check of the algorithm. devpi also wraps
    each link in ``BasenameMeta``, which refuses nothing a file name can be (``splitbasename``
    without ``checkarch`` always splits, a version that is not PEP 440 parses as a legacy one).
    """
    major, _, _ = str(data["meta"].get("api-version", "1.0")).partition(".")
    if major != "1":
        raise ValueError(f"wrong API version {data['meta'].get('api-version')!r} in the upstream's JSON page")
    query = urllib.parse.urlparse(base).query
    page = replaced(base, query="")
    links = []
    for item in data["files"]:
        given = item["url"]
        # urljoin gives an absolute link back as it is, once urlsplit has nothing to strip or split in it.
        joined = given if USUAL_LINK.fullmatch(given) else urllib.parse.urljoin(page, given)
        hashes = item["hashes"]
        fragment = f"sha256={hashes['sha256']}" if "sha256" in hashes else "=".join(next(iter(hashes.items()))) if hashes else ""
        if not query and USUAL_LINK.fullmatch(joined):
            # The usual link (absolute, no query, params or fragment): urlparse and urlunsplit give it back as it is.
            url_nofrag, path = joined, "/" + joined.split("/", 3)[3] if joined.count("/") >= 3 else ""
        else:
            url = replaced(replaced(joined, query=query), fragment=fragment) if fragment else replaced(joined, query=query)
            parsed = urllib.parse.urlparse(url)
            url_nofrag, path, fragment = replaced(url, fragment=""), parsed.path, parsed.fragment
        basename = posixpath.basename(urllib.parse.unquote(path))
        algorithm, _, value = fragment.partition("=")
        links.append(
            SimpleNamespace(
                basename=basename,
                hash_spec=f"{algorithm}={value}" if "=" in fragment and getattr(hashlib, algorithm, None) is not None else "",
                url_nofrag=url_nofrag,
                requires_python=item.get("requires-python"),
                yanked=item.get("yanked"),
            )
        )
    return links


def devpi_page(response: httpx.Response, project: str) -> Page | None:
    """The page devpi records for this upstream answer (mirror.py's _async_fetch_releaselinks); None: not one the front can give."""
    base = URL(str(response.url)).replace(username=None, password=None)
    is_json = response.headers.get("content-type") == JSON_PAGE
    data = json.loads(response.text) if is_json else None
    releaselinks = json_releaselinks(base.url, data) if data is not None else parse_index(base, response.text).releaselinks
    links, seen = [], set()
    for link in releaselinks:
        if not link.hash_spec:
            return None  # devpi files it under +e/, from the URL: left to devpi
        if link.basename in seen:
            continue  # get_simplelinks keeps the first of a name
        seen.add(link.basename)
        a, b = make_splitdir(link.hash_spec)
        href = f"{INDEX}/+f/{a}/{b}/{link.basename}#{link.hash_spec}"
        yanked = None if link.yanked is False else link.yanked
        links.append(Link(link.basename, href, link.requires_python, yanked, link.url_nofrag))
    try:
        serial = int(response.headers.get("X-PYPI-LAST-SERIAL", ""))
    except ValueError:
        serial = -1
    return Page(links, serial, announced_metadata(response.text, data), pp.upstream_files(data) if data is not None else {})


def relative_hrefs(path: str, page: Page) -> list[str]:
    """Each link's href relative to the page at ``path``, with its hash: devpi_common's ``URL(path).relpath``, once per page.

    Every link is under ``INDEX/+f/`` and ``path`` under ``INDEX/+simple/`` (PAGE), so relpath parts
    the two where ``+f`` meets ``+simple`` for every link alike: one prefix serves them all.
    """
    under = f"{INDEX}/+f/"
    prefix = URL(path).relpath("/" + under)
    return [prefix + link.href[len(under) :] for link in page.links]


def render_html(project: str, page: Page, path: str, core_metadata: bool, kept: dict[str, str] | None = None) -> bytes:
    """devpi's _simple_list_project for an installer: its links in the upstream's order, relative to the page.

    ``kept``: the page policy's {file name: URL} (None: no policy); the other files are left off, and a file whose
    URL the policy changed (a refused project's) announces no core metadata, as the plugin rewrites devpi's page.
    """
    title = f"{INDEX}: links for {project}"
    parts = [f'<!DOCTYPE html><html lang="en"><head><title>{title}</title></head><body><h1>{title}</h1>\n']
    for link, href in zip(page.links, relative_hrefs(path, page), strict=True):
        if kept is not None and link.basename not in kept:
            continue
        refused = kept is not None and kept[link.basename] != href
        attribs = [f'href="{kept[link.basename] if refused else href}"']  # type: ignore[index]
        if core_metadata and link.basename.endswith(".whl") and not refused:
            attribs.append('data-dist-info-metadata="true" data-core-metadata="true"')
        if link.requires_python is not None:
            attribs.append(f'data-requires-python="{escape(link.requires_python)}"')
        if link.yanked is not None and link.yanked is not False:
            yanked = "" if link.yanked is True else link.yanked
            attribs.append(f'data-yanked="{escape(str(yanked))}"')
        parts.append(f"{INDEX} <a {' '.join(attribs)}>{link.basename}</a><br>\n")
    parts.append("</body></html>")
    return "".join(parts).encode()


def page_files(page: Page, path: str, core_metadata: bool) -> list[dict]:
    """The page's files as devpi's _simple_list_project_json_v1 lists them, with the upload times and sizes the plugin adds."""
    files = []
    for link, href in zip(page.links, relative_hrefs(path, page), strict=True):
        if SAFE_NAME.fullmatch(link.basename):  # URL's url_nofrag and hash of the href, read off it as they would
            url_nofrag, _, spec = href.partition("#")
            algorithm, _, value = spec.partition("=")
            hashes = {algorithm: value}
        else:
            url = URL(href)
            url_nofrag, hashes = url.url_nofrag, {url.hash_type: url.hash_value} if url.hash_type else {}
        data: dict[str, object] = {"filename": link.basename, "url": url_nofrag, "hashes": hashes}
        if core_metadata and link.basename.endswith(".whl"):
            data["core-metadata"] = True
        if link.requires_python is not None:
            data["requires-python"] = link.requires_python
        if link.yanked is not None and link.yanked is not False:
            data["yanked"] = link.yanked
        uploaded, size = page.times.get(link.basename, [None, None])
        if uploaded is not None:
            data["upload-time"] = uploaded
        if size is not None:
            data["size"] = size
        files.append(data)
    return files


def policed(
    project: str, page: Page, path: str, core_metadata: bool, as_json: bool, policy: pp.Policy
) -> tuple[bytes, list[tuple[str, str]]]:
    """(body, headers) of the page under the cache's policy, byte for byte what the plugin makes of devpi's page."""
    if not as_json and not policy.active:
        return render_html(project, page, path, core_metadata), []
    if as_json:
        files = page_files(page, path, core_metadata)
    else:  # the plugin reads an HTML page's file names and links, and adds their upload times
        files = [
            {"filename": link.basename, "url": href, "upload-time": page.times.get(link.basename, [None, None])[0]}
            for link, href in zip(page.links, relative_hrefs(path, page), strict=True)
        ]
    if not policy.active:  # it keeps every file: nothing to apply
        return pp.json_page(project, files), [("X-Devpictl-Held-Back", "0")]
    applied = pp.apply(policy, project, files)
    kept = pp.denied_files(project, applied.files) if policy.denial(project) is not None else applied.files
    headers = [("X-Devpictl-Held-Back", str(len(applied.held_back)))]
    if applied.next_release is not None:
        headers.append(("X-Accel-Expires", str(max(1, int(applied.next_release) + 1))))
    if as_json:
        return pp.json_page(project, kept), headers
    return render_html(project, page, path, core_metadata, {f["filename"]: f["url"] for f in kept}), headers


def core_metadata_enabled() -> bool:
    """devpi-server.yml's enable-core-metadata: devpi announces none without it."""
    try:
        with open(SERVER_CONFIG, encoding="utf-8") as fh:
            return re.search(r"^\s*enable-core-metadata:\s*true\s*$", fh.read(), re.MULTILINE | re.IGNORECASE) is not None
    except OSError:
        return False


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


class Closed(Exception):
    """A connection to the upstream failed before its answer."""


class Connection(NamedTuple):
    """One HTTP/1.1 connection of PlainHTTP's, h11 keeping its state."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    state: h11.Connection


class PlainHTTP(httpx.AsyncBaseTransport):
    """httpx's transport for an http:// upstream (a mirror on the cache's network, the failover server): h11 over asyncio connections, kept alive.

    httpx's own transport (httpcore over anyio) costs 0.8-1.5 ms of this one thread's CPU per
    request, this one 0.25-0.4 ms (docs/core-metadata.md), and a first page of an HTML upstream
    is a few upstream requests. An answer is read whole: pages, `.metadata`, HEADs and ranges of
    at most MAX_RANGE bytes. A kept-alive connection the server has closed meanwhile is retried
    once on a new one (these requests are GETs and HEADs).
    """

    def __init__(self, connections: int = UPSTREAM_CONNECTIONS, seconds: float = UPSTREAM_SECONDS) -> None:
        self.idle: dict[tuple[str, int], list[Connection]] = collections.defaultdict(list)
        self.slots: dict[tuple[str, int], asyncio.Semaphore] = collections.defaultdict(lambda: asyncio.Semaphore(connections))
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.host, request.url.port or 80)
        async with self.slots[origin]:
            if self.idle[origin]:
                try:
                    return await self.ask(origin, self.idle[origin].pop(), request)
                except Closed:
                    pass  # the server closed the kept-alive connection meanwhile: again on a new one
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*origin), self.seconds)
            except (OSError, TimeoutError) as exc:
                raise httpx.ConnectError(f"{request.url.host}:{origin[1]}: {exc!r}", request=request) from exc
            try:
                return await self.ask(origin, Connection(reader, writer, h11.Connection(h11.CLIENT)), request)
            except Closed as exc:
                raise httpx.ReadError(str(exc), request=request) from exc

    async def ask(self, origin: tuple[str, int], conn: Connection, request: httpx.Request) -> httpx.Response:
        """The answer to ``request`` on ``conn``, which goes back to the idle ones if it can; Closed: it failed before an answer."""
        try:
            status, headers, body = await asyncio.wait_for(self.exchange(conn, request), self.seconds)
        except (ConnectionError, h11.ProtocolError) as exc:
            conn.writer.close()
            raise Closed(repr(exc)) from exc
        except TimeoutError as exc:
            conn.writer.close()
            raise httpx.ReadTimeout(f"no answer within {self.seconds} s", request=request) from exc
        except BaseException:
            conn.writer.close()
            raise
        if conn.state.our_state is h11.DONE and conn.state.their_state is h11.DONE:
            conn.state.start_next_cycle()
            self.idle[origin].append(conn)
        else:
            conn.writer.close()
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)

    @staticmethod
    async def exchange(conn: Connection, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send ``request`` and read its whole answer: (status, headers, body)."""
        state = conn.state
        conn.writer.write(state.send(h11.Request(method=request.method, target=request.url.raw_path, headers=request.headers.raw)) or b"")
        conn.writer.write(state.send(h11.EndOfMessage()) or b"")
        await conn.writer.drain()
        answer: h11.Response | None = None
        body: list[bytes] = []
        while True:
            event = state.next_event()
            if event is h11.NEED_DATA:
                data = await conn.reader.read(65536)
                if not data and answer is None:
                    raise ConnectionError("the upstream closed the connection")
                state.receive_data(data)
            elif isinstance(event, h11.Response):
                answer = event
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the upstream closed the connection")
        assert answer is not None
        return answer.status_code, list(answer.headers), b"".join(body)


class FirstPages:
    def __init__(self) -> None:
        cafile = os.environ.get("SSL_CERT_FILE")
        context = ssl.create_default_context(cafile=cafile if cafile and os.path.exists(cafile) else None)
        self.upstream = httpx.AsyncClient(
            verify=context,
            http2=True,
            follow_redirects=True,
            timeout=httpx.Timeout(UPSTREAM_SECONDS, connect=10.0),
            limits=httpx.Limits(max_connections=UPSTREAM_CONNECTIONS, max_keepalive_connections=UPSTREAM_CONNECTIONS),
            # With an http proxy in the environment (`up` hands the caller's in), httpx's own transport goes through it.
            mounts={} if urllib.request.getproxies().get("http") else {"http://": PlainHTTP()},
        )
        self.devpi = httpx.AsyncClient(base_url=DEVPI, trust_env=False, transport=PlainHTTP(seconds=DEVPI_SECONDS))
        self.core_metadata_enabled = core_metadata_enabled()
        self.config: dict | None = None
        self.config_at = 0.0
        self.reading: asyncio.Task[None] | None = None
        self.generation: str | None = None
        self.broken_until = 0.0
        self.fetching: dict[str, asyncio.Future[Page | None]] = {}
        self.pages: collections.OrderedDict[str, Page] = collections.OrderedDict()
        self.recorded: set[str] = set()
        self.queued: set[str] = set()
        self.to_record: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        self.recording: dict[str, asyncio.Task[None]] = {}
        self.answered_at = 0.0
        self.serves_ranges: set[str] = set()  # upstream file hosts (scheme://host) that have answered a range or announced them

    # --- root/pypi's settings, as devpi has them now
    async def settings(self, generation: str | None) -> dict | None:
        """root/pypi's settings: read at once after a switch (a new generation), else in the background every CONFIG_SECONDS."""
        if self.config is None or generation != self.generation:
            await self.read_settings(generation)
        elif time.monotonic() - self.config_at > CONFIG_SECONDS and self.reading is None:
            asyncio.get_running_loop().create_task(self.read_settings(generation))
        return self.config if generation == self.generation else None

    async def read_settings(self, generation: str | None) -> None:
        if self.reading is None:  # one read of devpi for every request that waits on it
            self.reading = asyncio.get_running_loop().create_task(self.fetch_settings(generation))
        reading = self.reading
        try:
            await asyncio.shield(reading)
        finally:
            if self.reading is reading and reading.done():
                self.reading = None

    async def fetch_settings(self, generation: str | None) -> None:
        try:
            answer = await self.devpi.get(f"/{INDEX}?no_projects=", headers={"Accept": "application/json"})
            answer.raise_for_status()
            config = answer.json()["result"]
        except (httpx.HTTPError, ValueError, KeyError):
            return  # devpi not up yet: its own answers meanwhile
        if config != self.config:
            # Links of another upstream; and devpi records each page again, from the new one
            # (a switch marks its pages stale), before it is asked for a file of it.
            self.pages.clear()
            self.recorded.clear()
        self.config, self.config_at, self.generation = config, time.monotonic(), generation

    def mirror(self, config: dict) -> str | None:
        url = config.get("mirror_url")
        if config.get("type") != "mirror" or not url or "@" in url.partition("://")[2].partition("/")[0]:
            return None
        return url if url.endswith("/") else url + "/"

    def auth_headers(self, mirror_url: str, url: str) -> dict[str, str]:
        origin = "/".join(mirror_url.split("/")[:3]) + "/"
        if not url.startswith(origin):
            return {}
        try:
            with open(AUTH_FILE, encoding="utf-8") as fh:
                entries = json.load(fh)
        except (OSError, ValueError):
            return {}
        value = entries.get(mirror_url.rstrip("/")) if isinstance(entries, dict) else None
        return {"Authorization": value} if isinstance(value, str) else {}

    # --- the upstream's pages, one fetch for many clients
    async def page(self, project: str, mirror_url: str) -> Page | None:
        if time.monotonic() < self.broken_until:
            return None
        future = self.fetching.get(project)
        if future is None:
            future = self.fetching[project] = asyncio.get_running_loop().create_future()
            try:
                future.set_result(await self.fetch_page(project, mirror_url))
            except Exception as exc:  # every client of this fetch falls back on devpi
                print(f"devpictl-first-pages: {project}: {exc!r}", file=sys.stderr, flush=True)
                future.set_result(None)
            finally:
                del self.fetching[project]
        return await asyncio.shield(future)

    async def fetch_page(self, project: str, mirror_url: str) -> Page | None:
        url = f"{mirror_url}{project}/"
        try:
            response = await self.upstream.get(url, headers={"Accept": SIMPLE_API_ACCEPT, **self.auth_headers(mirror_url, url)})
        except httpx.HTTPError:
            self.broken_until = time.monotonic() + BROKEN_SECONDS
            raise
        if response.status_code >= 500:
            self.broken_until = time.monotonic() + BROKEN_SECONDS
        if response.status_code != 200:
            return None  # devpi gives its own answer (a 404 included)
        page = devpi_page(response, project)
        if page is not None:
            await self.head_times(page, mirror_url)
            self.pages[project] = page
            self.pages.move_to_end(project)
            while len(self.pages) > KEPT_PAGES:
                self.pages.popitem(last=False)
        return page

    async def head_times(self, page: Page, mirror_url: str) -> None:
        """Upload times of the files the upstream's page gives none, from their Last-Modified, as devpictl's plugin takes them for devpi's record."""
        missing = [link for link in page.links if page.times.get(link.basename, [None, None])[0] is None]
        if not missing:
            return
        limit = asyncio.Semaphore(pp.HEAD_WORKERS)

        async def last_modified(link: Link) -> str | None:
            async with limit:
                answer = await self.upstream.head(link.url, headers=self.auth_headers(mirror_url, link.url))
            return pp.http_date_time(answer.headers.get("last-modified")) if answer.status_code == 200 else None

        asked = {asyncio.get_running_loop().create_task(last_modified(link)): link for link in missing}
        done, late = await asyncio.wait(asked, timeout=pp.HEAD_SECONDS)
        for task in late:
            task.cancel()
        for task in done:
            uploaded = task.result() if task.exception() is None else None
            if uploaded is not None:
                name = asked[task].basename
                page.times[name] = [uploaded, page.times.get(name, [None, None])[1]]

    async def link(self, relpath: str, filename: str, config: dict) -> tuple[Link, Page] | None:
        """The upstream link of a file the page lists (the page fetched if the front no longer has it)."""
        mirror_url = self.mirror(config)
        if mirror_url is None:
            return None
        project = normalized(filename.split("-", 1)[0]) if filename.endswith(".whl") else None
        candidates = [p for p in self.pages.values() if relpath in p.by_path]
        if not candidates and project:
            page = await self.page(project, mirror_url)
            candidates = [page] if page is not None and relpath in page.by_path else []
        return (candidates[0].by_path[relpath], candidates[0]) if candidates else None

    # --- devpi records every page the front answered
    def record(self, project: str) -> None:
        if project not in self.recorded and project not in self.queued:
            self.queued.add(project)
            self.to_record.put_nowait((project, time.monotonic()))

    async def recorder(self) -> None:
        while True:
            project, since = await self.to_record.get()
            while time.monotonic() - self.answered_at < QUIET_SECONDS and time.monotonic() - since < RECORD_WITHIN:
                await asyncio.sleep(0.05)
            try:
                await self.devpi_records(project)
            finally:
                self.queued.discard(project)

    async def devpi_records(self, project: str) -> None:
        """devpi fetches and records the page: one GET on its port however many ask at once."""
        if project in self.recorded:
            return
        task = self.recording.get(project)
        if task is None:
            task = self.recording[project] = asyncio.get_running_loop().create_task(self.ask_devpi_to_record(project))
            task.add_done_callback(lambda _: self.recording.pop(project, None))
        await asyncio.shield(task)

    async def ask_devpi_to_record(self, project: str) -> None:
        try:
            answer = await self.devpi.get(
                f"/{INDEX}/+simple/{project}/", headers={"Accept": JSON_PAGE, "User-Agent": "devpictl-first-pages"}
            )
            if answer.status_code == 200:
                self.recorded.add(project)
            else:
                print(f"devpictl-first-pages: devpi answered {answer.status_code} for {project}'s page", file=sys.stderr, flush=True)
        except httpx.HTTPError as exc:
            print(f"devpictl-first-pages: devpi did not record {project}: {exc!r}", file=sys.stderr, flush=True)

    async def recorded_first(self, relpath: str) -> None:
        """devpi records the page the front gave for this file before devpi is asked for the file.

        devpi looks a file up in the pages it recorded; for one it has not, it fetches the page
        only when the upstream's project list (which a fresh cache may not hold yet) names the
        project, and answers 404 otherwise.
        """
        for project, page in list(self.pages.items()):
            if relpath in page.by_path:
                await self.devpi_records(project)
                return

    # --- requests
    async def handle(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        generation = headers.get("x-devpictl-generation")
        path = urllib.parse.unquote(target)  # pip asks for /root/pypi/%2Bf/...
        if REPLICA_HEADER in headers:
            # A replica's devpi waits for the serial of its primary's record of the page (devpi's
            # X-Devpi-Serial): only devpi's own answer carries it, so the front never answers one.
            if FILE.match(path):
                return Answer(200, [("X-Accel-Redirect", WHOLE_FILE)])
            return await self.to_devpi(method, target, headers)
        if match := PAGE.match(path):
            if method == "GET":
                answer = await self.answer_page(match[1], target, headers, generation)
                if answer is not None:
                    return answer
            return await self.to_devpi(method, target, headers)
        if (match := FILE.match(path)) and match[2].endswith(".metadata"):
            answer = await self.answer_metadata(match[1], match[2], headers, generation) if method == "GET" else None
            if answer is None:
                await self.recorded_first(match[1].removesuffix(".metadata"))
            return answer or await self.to_devpi(method, target, headers)
        if match:
            answer = await self.answer_file(method, match[1], match[2], headers, generation)
            if answer is None:
                await self.recorded_first(match[1])
            return answer or Answer(200, [("X-Accel-Redirect", WHOLE_FILE)])
        return await self.to_devpi(method, target, headers)

    async def answer_page(self, project: str, path: str, headers: dict[str, str], generation: str | None) -> Answer | None:
        if normalized(project) != project or "x-devpi-absolute-urls" in headers:
            return None
        content_type = preferred(headers.get("accept"), ("text/html", JSON_PAGE))
        if content_type is None or (content_type != JSON_PAGE and not INSTALLER_USER_AGENT_REGEXP.match(headers.get("user-agent", ""))):
            return None  # devpi's page for browsers (sorted, with a form) stays devpi's
        config = await self.settings(generation)
        mirror_url = self.mirror(config) if config else None
        if config is None or mirror_url is None:
            return None
        try:
            policy = POLICY.get()
        except pp.BrokenPolicy:
            return None  # devpi's plugin refuses the page with the reason
        page = await self.page(project, mirror_url)
        if page is None:
            return None
        self.record(project)
        self.answered_at = time.monotonic()
        core_metadata = self.core_metadata_enabled and bool(config.get("mirror_provides_core_metadata"))
        body, policy_headers = policed(project, page, path, core_metadata, content_type == JSON_PAGE, policy)
        kind = JSON_PAGE if content_type == JSON_PAGE else "text/html; charset=UTF-8"
        answer_headers = [("Content-Type", kind), ("Vary", "Accept, User-Agent"), ("X-Devpictl-Page", "front"), *policy_headers]
        if page.serial > 0:
            answer_headers.append(("X-PYPI-LAST-SERIAL", str(page.serial)))
        return Answer(200, answer_headers, body)

    async def answer_metadata(self, relpath: str, filename: str, headers: dict[str, str], generation: str | None) -> Answer | None:
        config = await self.settings(generation)
        if not config or not config.get("mirror_provides_core_metadata") or not self.core_metadata_enabled:
            return None  # devpi's answer (404 unless it holds the wheel)
        found = await self.link(relpath.removesuffix(".metadata"), filename.removesuffix(".metadata"), config)
        if found is None:
            return None
        link, page = found
        url = link.url + ".metadata"
        try:
            response = await self.upstream.get(url, headers=self.auth_headers(self.mirror(config) or "", url))
        except httpx.HTTPError:
            return None
        expected = page.metadata.get(link.basename)
        if response.status_code != 200 or (expected and hashlib.sha256(response.content).hexdigest() != expected):
            return None
        self.answered_at = time.monotonic()
        return Answer(200, [("Content-Type", "application/octet-stream"), ("X-Devpictl-Page", "front")], response.content)

    async def answer_file(self, method: str, relpath: str, filename: str, headers: dict[str, str], generation: str | None) -> Answer | None:
        """A HEAD, or a short range, of a file the cache does not hold: the upstream's answer, nothing stored."""
        wanted = headers.get("range")
        if method not in ("GET", "HEAD") or (method == "GET" and not short_range(wanted)):
            return None
        config = await self.settings(generation)
        found = await self.link(relpath, filename, config) if config else None
        if config is None or found is None:
            return None
        link, page = found
        origin = "/".join(link.url.split("/")[:3])
        size = page.times.get(link.basename, [None, None])[1]
        if method == "HEAD" and size is not None and origin in self.serves_ranges:
            # The length the upstream's page gave (PEP 700), from a host that has answered ranges: what uv needs to read by ranges.
            return Answer(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(size)), ("Accept-Ranges", "bytes")])
        send = {"Accept-Encoding": "identity", **self.auth_headers(self.mirror(config) or "", link.url)}
        if wanted and method == "GET":
            send["Range"] = wanted
        request = self.upstream.build_request(method, link.url, headers=send)
        try:
            response = await self.upstream.send(request, stream=True)
        except httpx.HTTPError:
            return None
        if response.status_code != (206 if method == "GET" else 200):
            await response.aclose()
            return None  # an upstream that ignores ranges sends the whole file: devpi fetches and stores it
        if method == "GET" or response.headers.get("accept-ranges") == "bytes":
            self.serves_ranges.add(origin)
        kept = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() in ("content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified")
        ]
        if method == "HEAD":
            await response.aclose()
            return Answer(200, kept)

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return Answer(206, kept, stream=body())

    async def to_devpi(self, method: str, target: str, headers: dict[str, str]) -> Answer:
        """devpi's own answer, as nginx would have had it."""
        send = {k: v for k, v in headers.items() if k not in HOP_HEADERS and not k.startswith("x-devpictl-")}
        response = await self.devpi.request(method, target, headers=send)
        kept = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"]
        return Answer(response.status_code, kept, response.content)


def short_range(value: str | None) -> bool:
    """One range of at most MAX_RANGE bytes (uv reads a wheel's metadata so)."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (value or "").strip())
    if not match or match[1] == match[2] == "":
        return False
    if match[1] == "":
        return int(match[2]) <= MAX_RANGE
    return match[2] != "" and int(match[2]) - int(match[1]) < MAX_RANGE


async def serve(front: FirstPages, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with nginx's kept-alive connections (h11), one request after another."""
    conn = h11.Connection(h11.SERVER)

    async def next_event() -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await reader.read(65536))

    async def send(event: h11.Event) -> None:
        writer.write(conn.send(event) or b"")
        await writer.drain()

    try:
        while True:
            request = await next_event()
            if not isinstance(request, h11.Request):
                break
            while not isinstance(await next_event(), h11.EndOfMessage):
                pass  # GET and HEAD carry no body
            method, target = request.method.decode(), request.target.decode()
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
            try:
                answer = await front.handle(method, target, headers)
            except Exception as exc:  # one line, and nginx gets a clear 502
                print(f"devpictl-first-pages: {method} {target}: {exc!r}", file=sys.stderr, flush=True)
                answer = Answer(502, [("Content-Type", "text/plain")], b"the front's first pages failed\n")
            # A streamed answer and a HEAD keep the upstream's length: uv reads a wheel by ranges
            # only when the HEAD says how long it is (else it downloads the whole file).
            out = [
                (k, v)
                for k, v in answer.headers
                if k.lower() not in HOP_HEADERS or (k.lower() == "content-length" and (answer.stream is not None or method == "HEAD"))
            ]
            if answer.stream is None and method != "HEAD":
                out.append(("Content-Length", str(len(answer.body))))
            await send(h11.Response(status_code=answer.status, headers=out))
            if method != "HEAD":
                if answer.stream is not None:
                    async for chunk in answer.stream:
                        await send(h11.Data(data=chunk))
                elif answer.body:
                    await send(h11.Data(data=answer.body))
            await send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
    except (h11.ProtocolError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    front = FirstPages()
    for _ in range(RECORDERS):
        asyncio.get_running_loop().create_task(front.recorder())
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] = lambda r, w: serve(front, r, w)  # noqa: E731
    server = await asyncio.start_server(handler, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
