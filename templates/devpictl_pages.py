"""devpictl's page policy in devpi-server, imported by devpictl's devpi plugin (devpictl_mirror_auth.py, beside it).

PEP 700 upload times and sizes kept with each mirrored page (from the upstream's JSON
page, else the upstream's Last-Modified of each file) and served on the JSON pages of API
1.1; the cache's page policy (page_policy.py, beside it too) applied to every simple page:
a minimum release age, allow and deny lists.
"""

import calendar
import concurrent.futures
import contextlib
import json
import logging
import re
from functools import wraps
from urllib.parse import urljoin, urlsplit

import page_policy


def answer(request, status, body):
    response = request.response
    response.status_code = status
    response.content_type = "application/json"
    response.body = json.dumps(body).encode()
    return response


# In a mirrored page's stored links: {file name: [upload-time, size]} from the upstream's
# JSON page (PEP 700). devpi keeps only url, hashes, requires-python and yanked of each
# file; its JSON page then has API 1.0 and no upload-time, and uv's exclude-newer and
# pip's --uploaded-prior-to fail closed on it.
UPLOAD_TIMES = "devpictl_files"
# The policy `devpictl up`/`set-policy` hands in: page_policy.Policy.to_dict, JSON.
POLICY = page_policy.PolicyFile("{{ run_dir }}/{{ page_policy_file }}")
JSON_PAGE = page_policy.JSON_PAGE
# GET: the policy in force, for the page at / ({policy: one line, policy_settings, problem}).
POLICY_ROUTE = "/+devpictl/policy"
log = logging.getLogger("devpictl")
SIMPLE_PAGE = re.compile(r"^/([^/]+)/([^/]+)/\+simple/([^/]+)/?$")
FILE_PATH = re.compile(r"([^/]+/[^/]+/\+f/[^#?]+)")
HTML_LINK = re.compile(r'^(.*?<a href=")([^"]*)("[^>]*>)([^<]+)(</a>.*)$')

_fetched: dict[str, dict[str, list]] = {}  # project -> its files' [upload-time, size], parsed and not yet stored


def keep_upload_times(mirror):
    """Wrap devpi's parsing of an upstream JSON page and its storing of the links (``mirror``: devpi_server.mirror), so the page keeps its files' upload times.

    devpi parses in its event loop and stores in the request's thread, one fetch per project at a time.
    A file the upstream's page gives no time (an HTML-only upstream, a JSON page of API 1.0) keeps the
    time the page stored before, else takes its Last-Modified (``head_times``).
    """
    if getattr(mirror.parse_index_v1_json, "devpictl", False):
        return
    parse = mirror.parse_index_v1_json
    save = mirror.MirrorStage._save_cache_links

    @wraps(parse)
    def parse_keeping_times(disturl, text):
        links = parse(disturl, text)
        project = page_policy.normalize(str(disturl).rstrip("/").rsplit("/", 1)[-1])
        _fetched[project] = page_policy.upstream_files(json.loads(text))
        return links

    @wraps(save)
    def save_with_times(self, project, links, *args, **kwargs):
        key = self.key_projsimplelinks(project)
        known = (key.get() or {}).get(UPLOAD_TIMES) or {}  # devpi's save drops it when the links changed
        save(self, project, links, *args, **kwargs)
        fetched = _fetched.pop(project, {})
        times = {}
        for name, _ in links:
            uploaded, size = fetched.get(name) or [None, None]
            before = known.get(name) or [None, None]
            times[name] = [uploaded or before[0], size if size is not None else before[1]]
        if not getattr(self, "offline", False):
            for name, uploaded in head_times(self, {name: href for name, href in links if times[name][0] is None}).items():
                times[name][0] = uploaded
        page = key.get()
        if page and page.get(UPLOAD_TIMES, {}) != times and any(value != [None, None] for value in times.values()):
            key.set({**page, UPLOAD_TIMES: times})

    parse_keeping_times.devpictl = True  # type: ignore[attr-defined]
    mirror.parse_index_v1_json = parse_keeping_times
    mirror.MirrorStage._save_cache_links = save_with_times


# The HEADs for the Last-Modified of files without an upload time (page_policy.HEAD_WORKERS at
# once, within page_policy.HEAD_SECONDS): devpi holds the page's write transaction meanwhile.
HEAD_SECONDS = page_policy.HEAD_SECONDS


def head_times(stage, hrefs):
    """{file name: upload-time} of the files ``hrefs`` ({file name: devpi's href}) from their upstream's Last-Modified."""
    urls = {}
    for name, href in hrefs.items():  # devpi's database, in this thread's transaction
        entry = stage._entry_from_href(href)
        if entry is not None and entry.url:
            urls[name] = entry.url

    def last_modified(url):
        with contextlib.ExitStack() as cstack:
            response = stage.http.stream(cstack, "HEAD", url, allow_redirects=True, timeout=HEAD_SECONDS)
            return response.headers.get("Last-Modified") if response.status_code == 200 else None

    return fetch_times(last_modified, urls, HEAD_SECONDS)


def fetch_times(ask, urls, limit, workers=page_policy.HEAD_WORKERS):
    """{name: upload-time} of ``urls`` ({name: URL}) from ``ask(url)``'s Last-Modified, asked concurrently, all within ``limit`` seconds."""
    if not urls:
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(urls)))
    asked = {pool.submit(ask, url): name for name, url in urls.items()}
    done, _ = concurrent.futures.wait(asked, timeout=limit)
    pool.shutdown(wait=False, cancel_futures=True)
    found = {}
    for future in done:
        uploaded = page_policy.http_date_time(future.result()) if future.exception() is None else None
        if uploaded is not None:
            found[asked[future]] = uploaded
    if len(found) < len(urls):
        log.info("devpictl: %d of %d files have no Last-Modified for their upload time (yet)", len(urls) - len(found), len(urls))
    return found


def file_facts(xom, project, relpath, cache):
    """(upload-time, size, private) of the stored file at ``relpath`` (USER/INDEX/+f/...), as the page should list it."""
    user, index = relpath.split("/", 2)[:2]
    stage = cache.get((user, index))
    if stage is None:
        stage = cache[(user, index)] = xom.model.getstage(user, index)
    if stage is None:
        return None, None, False
    if stage.ixconfig.get("type") == "mirror":
        times = cache.get((user, index, project))
        if times is None:
            times = cache[(user, index, project)] = (stage.key_projsimplelinks(project).get() or {}).get(UPLOAD_TIMES) or {}
        uploaded, size = times.get(relpath.rsplit("/", 1)[-1], [None, None])
        return uploaded, size, False
    link = stage.get_link_from_entrypath(relpath)
    if link is None:
        return None, None, True
    whens = [log["when"] for log in link.get_logs() if log.get("what") in ("upload", "overwrite") and log.get("when")]
    uploaded = page_policy.format_time(calendar.timegm(tuple(whens[-1]) + (0, 0, 0))) if whens else None
    try:
        size = link.entry.file_size()
    except Exception:  # a replica that has not received the file yet
        size = None
    return uploaded, size, True


def in_transaction(xom, work):
    keyfs = xom.keyfs
    try:
        keyfs.tx  # noqa: B018
    except AttributeError:
        with keyfs.read_transaction():
            return work()
    return work()


def policy_tween(handler, registry):
    """Every simple page devpi answers, through the page policy: JSON pages of API 1.1 with upload times, files held back or refused."""
    xom = registry["xom"]

    def tween(request):
        if request.path.startswith(page_policy.DENIED_PREFIX):
            return refused(request)
        if request.path == POLICY_ROUTE:
            return policy_in_force(request)
        match = SIMPLE_PAGE.match(request.path)
        if match is None or request.method not in ("GET", "HEAD"):
            return handler(request)
        try:
            policy = POLICY.get()
        except page_policy.BrokenPolicy as exc:
            return unguarded(request, str(exc))
        response = handler(request)
        kind = response.content_type
        if response.status_code != 200 or kind not in (JSON_PAGE, "text/html"):
            return response
        if kind == "text/html" and not policy.active:
            return response  # old installers' pages stay devpi's own
        project = page_policy.normalize(match.group(3))
        body = response.body
        new_body, held, wait = in_transaction(xom, lambda: policed_page(xom, policy, project, kind, body, request.path))
        response.body = new_body
        response.headers["X-Devpictl-Held-Back"] = str(held)
        if wait is not None:
            # The front keeps the page only until its first held-back file comes of age.
            response.headers["X-Accel-Expires"] = str(max(1, int(wait) + 1))
        return response

    return tween


def policed_page(xom, policy, project, kind, body, page_path):
    """(body, files held back, seconds until the first comes of age) of the page at ``page_path`` devpi rendered.

    devpi links files relative to the page, or absolute under the outside URL: either way the path ends in USER/INDEX/+f/...
    """
    cache: dict[tuple, object] = {}
    if kind == JSON_PAGE:
        files = json.loads(body).get("files", [])
    else:
        files = [{"filename": m.group(4), "url": m.group(2)} for m in map(HTML_LINK.match, body.decode().splitlines()) if m]
    private = set()
    for item in files:
        found = FILE_PATH.search(urlsplit(urljoin(page_path, str(item.get("url", "")))).path)
        if found is None:
            continue
        uploaded, size, is_private = file_facts(xom, project, found.group(1), cache)
        if uploaded is not None:
            item["upload-time"] = uploaded
        if size is not None:
            item["size"] = size
        if is_private:
            private.add(item["filename"])
    applied = page_policy.apply(policy, project, files, private=private)
    kept = applied.files
    if policy.denial(project) is not None:
        kept = page_policy.denied_files(project, kept)
    if kind == JSON_PAGE:
        return page_policy.json_page(project, kept), len(applied.held_back), applied.next_release
    urls = {item["filename"]: item["url"] for item in kept}
    lines = []
    for line in body.decode().splitlines(keepends=True):
        m = HTML_LINK.match(line.rstrip("\n"))
        if m is None:
            lines.append(line)
        elif m.group(4) in urls:
            attrs = m.group(3)
            if urls[m.group(4)] != m.group(2):  # refused: no core metadata to announce
                attrs = re.sub(r' data-(dist-info|core)-metadata="[^"]*"', "", attrs)
            lines.append(f"{m.group(1)}{urls[m.group(4)]}{attrs}{m.group(4)}{m.group(5)}\n")
    return "".join(lines).encode(), len(applied.held_back), applied.next_release


def refused(request):
    """A refused project's file: 403, the reason as the HTTP reason phrase (pip and uv show it) and as the body."""
    project = request.path[len(page_policy.DENIED_PREFIX) :].split("/", 1)[0]
    try:
        reason = POLICY.get().denial(project)
    except page_policy.BrokenPolicy as exc:
        reason = page_policy.broken_reason(str(exc))
    return plain(request, 403, reason or f"devpictl policy: project {project} was refused when its page was served; ask again")


_logged_problem = [None]  # the broken policy file's problem last logged: once a change, not once a request


def unguarded(request, problem):
    """Every simple page while the policy file is unreadable: 503 with the reason. Serving pages without the guards would hide the breakage."""
    if _logged_problem[0] != problem:
        _logged_problem[0] = problem
        log.error("%s", page_policy.broken_reason(problem))
    return plain(request, 503, page_policy.broken_reason(problem))  # the front keeps only 200s


def policy_in_force(request):
    """{policy: one line, policy_settings: Policy.to_dict or None, problem: why the file is unreadable or None}."""
    try:
        policy = POLICY.get()
    except page_policy.BrokenPolicy as exc:
        body = {"policy": page_policy.broken_reason(str(exc)), "policy_settings": None, "problem": str(exc)}
    else:
        body = {"policy": page_policy.describe(policy), "policy_settings": policy.to_dict(), "problem": None}
    return answer(request, 200, body)


def plain(request, status, reason):
    """A text answer whose reason phrase is ``reason`` (one line), as installers show it."""
    response = request.response
    response.status = f"{status} {reason}"
    response.content_type = "text/plain"
    response.text = reason + "\n"
    return response
