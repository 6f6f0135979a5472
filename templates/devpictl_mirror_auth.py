"""devpi-server plugin of devpictl: the upstream's credentials, kept out of devpi's readable config;
a mirror index setting that tells replicas to empty their front server's page cache;
for a switch of upstream, one request that marks every page a mirror cached stale
(fetched from the new upstream next, served as it is while that upstream fails);
the front server's login check of `up --read-auth`; and the cache's page policy
(devpictl_pages.py, beside this plugin, applying page_policy.py): PEP 700 upload times
and sizes kept with each mirrored page and served on the JSON pages, a minimum release
age, allow and deny lists.

devpi shows root/pypi's mirror_url to anonymous readers, so devpictl sets it without
user and password and hands these in a file instead (0444 in devpi's 0700 run dir).
devpi asks this hook when the upstream answers 401 or 403, then retries with its answer.
"""

import importlib
import json
import os
import sys
import time

import devpictl_pages
from devpictl_pages import answer
from pluggy import HookimplMarker

# httpcore (devpi's upstream client) asks `import sniffio` for every request; where sniffio is
# not installed each failed import scans sys.path again. A None entry fails it at once.
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

hookimpl = HookimplMarker("devpiserver")
AUTH_FILE = "{{ run_dir }}/{{ upstream_auth }}"  # {"URL without trailing slash": "Basic ..."}


@hookimpl
def devpiserver_get_mirror_auth(mirror_url, www_authenticate_header):
    try:
        with open(AUTH_FILE, encoding="utf-8") as fh:
            entries = json.load(fh)
    except (OSError, ValueError):
        return None
    url = str(mirror_url).rstrip("/")
    return entries.get(url) if isinstance(entries, dict) else None


# Set by `set-upstream` on a primary once its pages list the new upstream's files;
# a replica's follow-primary.py empties its page cache when it changes.
PAGES_GENERATION = "devpictl_pages_generation"
# Set by `up`/`set-policy` on a primary: its page policy (JSON, page_policy.Policy.to_dict),
# which a replica's follow-primary.py writes into the replica's policy file.
PAGE_POLICY = "devpictl_page_policy"


@hookimpl
def devpiserver_indexconfig_defaults(index_type):
    return {PAGES_GENERATION: "", PAGE_POLICY: ""} if index_type == "mirror" else {}


# POST by the index's owner: every cached page of a mirror index is marked stale at once,
# so each is fetched again, from the mirror_url of now, on its next request, and is
# still served, with the files the cache holds, while that upstream fails.
EXPIRE_PAGES_ROUTE = "/{user}/{index}/+devpictl/expire-pages"
# GET: how many cached pages a switch marked and no fetch from the new upstream has replaced yet.
PAGES_ROUTE = "/{user}/{index}/+devpictl/pages"
# In a page's stored links: when a switch marked it. devpi writes the page anew (without
# this key) the first time the new upstream answers it.
SWITCHED = "devpictl_switched_at"


@hookimpl
def devpiserver_pyramid_configure(config, pyramid_config):
    pyramid_config.add_route("devpictl-expire-pages", EXPIRE_PAGES_ROUTE)
    pyramid_config.add_view(expire_pages, route_name="devpictl-expire-pages", request_method="POST", permission="index_modify")
    pyramid_config.add_route("devpictl-pages", PAGES_ROUTE)
    pyramid_config.add_view(count_pages, route_name="devpictl-pages", request_method="GET")
    pyramid_config.add_route("devpictl-authcheck", AUTHCHECK_ROUTE)
    pyramid_config.add_view(authcheck, route_name="devpictl-authcheck")
    pyramid_config.add_tween(f"{__name__}.stale_pages_tween")
    pyramid_config.add_tween("devpictl_pages.policy_tween")
    xom = pyramid_config.registry["xom"]
    if not xom.is_replica():  # a replica's pages, upload times included, come by replication
        devpictl_pages.keep_upload_times(importlib.import_module("devpi_server.mirror"))
    if xom.is_replica():
        # Before devpi starts its threads, as devpi registers its own.
        xom.keyfs.PROJSIMPLELINKS.on_key_change(PageForgotten(xom))


# The front server's subrequest for every request with `up --read-auth` (nginx auth_request).
AUTHCHECK_ROUTE = "{{ authcheck_path }}"


def authcheck(context, request):
    """200 when devpi knows who sent the request (its login token, a user's password, a replica's signed token), else 401."""
    if request.authenticated_userid:
        return answer(request, 200, {"type": "authcheck", "result": {}})
    response = answer(request, 401, {"message": "this cache needs a login to read: `devpictl pip-config --write` sets it up"})
    response.headers["WWW-Authenticate"] = 'Basic realm="devpictl cache"'
    return response


# How long the front server keeps a page devpi served stale because its upstream failed:
# long enough to spare each installer the upstream's failure (devpi asks it again for
# every request, and one that hangs costs devpi's request timeout), short enough that
# the upstream's page shows soon after it is back. The front keeps other pages for
# mirror_cache_expiry.
STALE_PAGE_SECONDS = 10


def stale_pages_tween(handler, registry):
    """Tell the front server to keep a stale page (devpi marks it `Pragma: no-cache`) only briefly: X-Accel-Expires.

    Offline, devpi serves every page so, and none ever changes: they are kept as long as any.
    """
    offline = registry["xom"].config.offline_mode

    def tween(request):
        response = handler(request)
        if not offline and "/+simple/" in request.path and response.headers.get("Pragma") == "no-cache":
            response.headers["X-Accel-Expires"] = str(STALE_PAGE_SECONDS)
        return response

    return tween


class PageForgotten:
    """On a replica: a page the primary forgot or marked stale is fetched at its next request, not after mirror_cache_expiry.

    A replica keeps in memory when it last fetched each page, and serves the page it
    holds (or answers "not found" for an empty one) until mirror_cache_expiry has passed
    since. When the primary's emptied or marked page arrives by replication, that time goes too.
    """

    def __init__(self, xom):
        self.xom = xom

    def __call__(self, event):
        if event.value and SWITCHED not in event.value:
            return  # links fetched from the upstream: nothing was forgotten
        params = event.typedkey.params
        with self.xom.keyfs.read_transaction():
            stage = self.xom.model.getstage(params["user"], params["index"])
            if stage is not None and stage.ixconfig.get("type") == "mirror":
                stage.cache_retrieve_times.expire(params["project"])


# A link's yanked value in a marked page: one devpi serves the same way (it takes False
# for "not yanked", and renders True and "" alike), but which no upstream page gives, so
# devpi finds every link of the marked page changed on its first fetch from the new
# upstream and points each file at that upstream, stored files included.
MARKED_YANKED = {None: False, "": True, True: ""}


def marked_page(page, stored, now):
    """A stored page (devpi's PROJSIMPLELINKS value) as a switch leaves it; None: nothing to keep.

    Only links to files the cache holds stay (``stored(href)``; a never-fetched file's link would send its
    fetch to the old upstream), so the page devpi falls back on while the new upstream
    fails lists what the cache can serve. Its serial and ETag go: they were the old
    upstream's.
    """
    if not page or not page.get("links"):
        return None
    links, requires_python, yanked = [], [], []
    for index, link in enumerate(page["links"]):
        if not stored(link[1]):
            continue
        links.append(tuple(link))
        requires_python.append(at(page.get("requires_python"), index))
        value = at(page.get("yanked"), index)
        yanked.append(MARKED_YANKED.get(value, value))  # a reason stays: that link keeps its entry's URL
    if not links:
        return None
    return {"links": links, "requires_python": requires_python, "yanked": yanked, "serial": -1, "etag": None, SWITCHED: int(now)}


def at(values, index):
    return values[index] if values is not None and index < len(values) else None


# Stored files, at the path of their URL: what the front server serves from disk.
FILES_DIR = "{{ files_dir }}"


def stored_files(index):
    """The paths (USER/INDEX/+f/...) of every file the index holds, in one walk of the disk.

    What devpi's own check (MirrorStage._is_file_cached) finds too, without its database
    read per link: a switch of 5,000 pages asks for tens of thousands.
    """
    found = set()
    for folder, _, names in os.walk(os.path.join(FILES_DIR, index, "+f")):
        for name in names:
            found.add(os.path.relpath(os.path.join(folder, name), FILES_DIR))
    return found


def expire_pages(context, request):
    """Mark every page the mirror cached stale: fetched from the new upstream at its next request, kept as the fallback.

    devpi's refresh (POST .../+simple/NAME/refresh) drops one page and fetches it again
    inside a write transaction, so a switch refreshing thousands of pages takes minutes.
    Here all go in the one write transaction of this request: each page keeps only its
    links to stored files (marked_page; an empty page is forgotten, as devpi's refresh
    does), and its fetch time is forgotten. The next request for it fetches the page
    from the new upstream and points every file it lists at that upstream's URLs; while
    that upstream fails, devpi serves the marked page as it serves any stale page.
    Replicas follow by replication (PageForgotten).
    """
    stage = context.stage
    if stage.ixconfig.get("type") != "mirror":
        return answer(request, 400, {"message": f"{stage.name} is not a mirror index"})
    if not stage.no_project_list:
        # The list would be the upstream's every name (a million on the official index).
        return answer(request, 409, {"message": f"{stage.name} lists its upstream's projects: set mirror_no_project_list first"})
    projects = list(stage.list_projects_perstage())  # the projects it cached
    stored = stored_files(stage.name)
    now = time.time()
    kept = 0
    for project in projects:
        key = stage.key_projsimplelinks(project)
        page = key.get()
        stage.cache_retrieve_times.expire(project)  # its ETag too: it was the old upstream's
        if page and SWITCHED in page:
            kept += 1  # marked by a switch before (run again): as it is
            continue
        page = marked_page(page, lambda href: href.partition("#")[0] in stored, now)
        if page is None:
            key.set({})  # devpi's own "cleared" page: replicas see an empty one
        else:
            kept += 1
            key.set(page)
    return answer(request, 200, {"type": "expired-pages", "result": {"expired": len(projects), "kept": kept}})


def count_pages(context, request):
    """{cached: pages the mirror holds, marked: of those, pages a switch marked that the new upstream has not answered yet}."""
    stage = context.stage
    if stage.ixconfig.get("type") != "mirror":
        return answer(request, 400, {"message": f"{stage.name} is not a mirror index"})
    if not stage.no_project_list:
        return answer(request, 409, {"message": f"{stage.name} lists its upstream's projects: set mirror_no_project_list first"})
    projects = list(stage.list_projects_perstage())
    marked = sum(1 for project in projects if SWITCHED in (stage.key_projsimplelinks(project).get() or {}))
    return answer(request, 200, {"type": "pages", "result": {"cached": len(projects), "marked": marked}})
