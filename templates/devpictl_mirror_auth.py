"""devpi-server plugin of devpictl: the upstream's credentials, kept out of devpi's readable config;
a mirror index setting that tells replicas to empty their front server's page cache;
and one request that forgets every page a mirror cached, for a switch of upstream.

devpi shows root/pypi's mirror_url to anonymous readers, so devpictl sets it without
user and password and hands these in a file instead (0444 in devpi's 0700 run dir).
devpi asks this hook when the upstream answers 401 or 403, then retries with its answer.
"""

import json

from pluggy import HookimplMarker

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


@hookimpl
def devpiserver_indexconfig_defaults(index_type):
    return {PAGES_GENERATION: ""} if index_type == "mirror" else {}


# POST by the index's owner: every cached page of a mirror index is forgotten at once,
# so each is fetched again, from the mirror_url of now, on its next request.
EXPIRE_PAGES_ROUTE = "/{user}/{index}/+devpictl/expire-pages"


@hookimpl
def devpiserver_pyramid_configure(config, pyramid_config):
    pyramid_config.add_route("devpictl-expire-pages", EXPIRE_PAGES_ROUTE)
    pyramid_config.add_view(expire_pages, route_name="devpictl-expire-pages", request_method="POST", permission="index_modify")
    xom = pyramid_config.registry["xom"]
    if xom.is_replica():
        # Before devpi starts its threads, as devpi registers its own.
        xom.keyfs.PROJSIMPLELINKS.on_key_change(PageForgotten(xom))


class PageForgotten:
    """On a replica: a page the primary forgot is fetched at its next request, not after mirror_cache_expiry.

    A replica keeps in memory when it last fetched each page, and answers "not found"
    for a page that is empty but was fetched within mirror_cache_expiry. When the
    primary's emptied page arrives by replication, that time goes too.
    """

    def __init__(self, xom):
        self.xom = xom

    def __call__(self, event):
        if event.value:
            return  # new links: nothing was forgotten
        params = event.typedkey.params
        with self.xom.keyfs.read_transaction():
            stage = self.xom.model.getstage(params["user"], params["index"])
            if stage is not None and stage.ixconfig.get("type") == "mirror":
                stage.cache_retrieve_times.expire(params["project"])


def expire_pages(context, request):
    """Forget every page the mirror cached: what devpi's own refresh does, without the fetch.

    devpi's refresh (POST .../+simple/NAME/refresh) drops one page and fetches it again
    inside a write transaction, so a switch refreshing thousands of pages takes minutes.
    Here all go in the one write transaction of this request: each page's stored links
    become empty (replicas follow, as with devpi's refresh) and its fetch time is
    forgotten, so the next request for it fetches the page from the new upstream and
    points the files it lists, stored or not, at that upstream's URLs.
    """
    stage = context.stage
    if stage.ixconfig.get("type") != "mirror":
        return answer(request, 400, {"message": f"{stage.name} is not a mirror index"})
    if not stage.no_project_list:
        # The list would be the upstream's every name (a million on the official index).
        return answer(request, 409, {"message": f"{stage.name} lists its upstream's projects: set mirror_no_project_list first"})
    projects = list(stage.list_projects_perstage())  # the projects it cached
    for project in projects:
        stage.clear_simplelinks_cache(project)
    return answer(request, 200, {"type": "expired-pages", "result": {"expired": len(projects)}})


def answer(request, status, body):
    response = request.response
    response.status_code = status
    response.content_type = "application/json"
    response.body = json.dumps(body).encode()
    return response
