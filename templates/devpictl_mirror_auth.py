"""devpi-server plugin of devpictl: the upstream's credentials, kept out of devpi's readable config;
and a mirror index setting that tells replicas to empty their front server's page cache.

devpi shows root/pypi's mirror_url to anonymous readers, so devpictl sets it without
user and password and hands these in a file instead (0444 in devpi's 0700 run dir).
devpi asks this hook when the upstream answers 401 or 403, then retries with its answer.
"""

import json

from pluggy import HookimplMarker

hookimpl = HookimplMarker("devpiserver")
AUTH_FILE = "/run/devpictl/upstream-auth.json"  # {"URL without trailing slash": "Basic ..."}


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
