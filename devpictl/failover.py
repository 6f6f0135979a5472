"""Failover across upstreams (`--fallback`): a server block of the cache's own nginx.

devpi's root/pypi fetches from ``http://127.0.0.1:3144/<primary>/simple``, a server of
the front server's nginx on the container's loopback. It passes every request to the
same path under the primary's root, and on a connection error, a timeout or a 5xx
(for files also a 404) to the next upstream's, in order. Pages are rewritten so that
file links on an upstream's own root point back at this server, so files fail over
too; devpi checks every file against the sha256 its page gave. See docs/failover.md.

The server block and the chain live in the data volume (``/data/failover``), which
the image's nginx.conf includes: a restarted or re-created container keeps them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from devpictl import container as ctr
from devpictl.errors import BadInput, Conflict, EngineError
from devpictl.mirrors import Upstream, effective_url, find_by_url, is_fastest, resolve
from devpictl.precedence import load_remembered, save_remembered

PORT = 3144  # on the container's loopback only, beside the front server (3141), devpi (3142) and the metrics (3143)
DIRECTORY = "/data/failover"
SERVER_CONF = f"{DIRECTORY}/server.conf"
CHAIN_FILE = f"{DIRECTORY}/chain.json"
LOCAL_PREFIX = f"http://127.0.0.1:{PORT}/"
NONE = "none"  # `--fallback none`: no fallbacks
MARKER = "/+devpictl-failover"  # answers the digest of the server block nginx runs
# Each upstream gets this long to connect and between two reads before the next one is asked;
# three upstreams fit in devpi's request timeout (30 s, image.render_server_config).
CONNECT_TIMEOUT = "3s"
READ_TIMEOUT = "7s"
# nginx.conf of images that can fail over includes the volume's server block.
NGINX_CONF = "/etc/devpictl/nginx.conf"


@dataclass(frozen=True)
class Chain:
    """The primary upstream and the fallbacks asked, in order, when it fails."""

    primary: Upstream
    fallbacks: tuple[Upstream, ...]

    @property
    def members(self) -> tuple[Upstream, ...]:
        return (self.primary, *self.fallbacks)

    @property
    def name(self) -> str:
        return "+".join(label(member) for member in self.members)

    def key(self, official: str) -> str:
        """The first path segment of the local URL: it names the primary, so a new primary is a switch for devpi."""
        if self.primary.name != "custom":
            return self.primary.name
        return "custom-" + hashlib.sha256(effective_url(self.primary, official).encode()).hexdigest()[:10]

    def local_url(self, official: str) -> str:
        return f"{LOCAL_PREFIX}{self.key(official)}/simple"

    def as_upstream(self, official: str) -> Upstream:
        """The chain as the one upstream devpi sees."""
        return Upstream(self.name, self.local_url(official), f"{label(self.primary)}, then {', '.join(label(f) for f in self.fallbacks)}")


def label(upstream: Upstream) -> str:
    """A member's name in a chain's name: its catalog name, or the host of a URL."""
    if upstream.name == "custom" and upstream.url:
        return urlsplit(upstream.url).netloc.rpartition("@")[2]
    return upstream.name


def root(upstream: Upstream, official: str) -> str:
    """The upstream's URL without its final /simple: the base its pages' relative file links share."""
    return effective_url(upstream, official).removesuffix("/simple")


def parse_fallbacks(spec: str) -> tuple[Upstream, ...]:
    """``tuna,bfsu`` (names or URLs) as Upstreams; ``none`` (or nothing) for no fallbacks."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if [item.lower() for item in items] in ([], [NONE]):
        return ()
    if any(is_fastest(item) for item in items):
        raise BadInput("--fallback takes mirror names or URLs, not 'fastest': name them, e.g. --fallback tuna,bfsu")
    return tuple(resolve(item) for item in items)


def without(fallbacks: tuple[Upstream, ...] | None, primary: Upstream) -> tuple[Upstream, ...] | None:
    """``fallbacks`` without ``primary`` (None stays None: the remembered ones, which plan() filters)."""
    if fallbacks is None:
        return None
    return tuple(f for f in fallbacks if f.public_url != primary.public_url)


def spec(upstream: Upstream) -> str:
    """How the chain is remembered: a name, or the URL of a custom upstream."""
    return upstream.url if upstream.name == "custom" and upstream.url else upstream.name


def make_chain(primary: Upstream, fallbacks: tuple[Upstream, ...]) -> Chain:
    """A checked chain (see check_members)."""
    chain = Chain(primary, tuple(fallbacks))
    check_members(chain.members)
    return chain


def check_members(members: tuple[Upstream, ...]) -> None:
    """Refuse a chain that names an upstream twice, one not ending in /simple, or one with credentials."""
    seen: set[str] = set()
    for member in members:
        url = (member.public_url or "").rstrip("/")  # "" is the official index, devpi's default (…/simple)
        if url in seen:
            raise BadInput(
                f"{member.display_url} is in the chain twice: give each upstream once (the primary with --mirror, the others with --fallback)"
            )
        seen.add(url)
        if url and not url.endswith("/simple"):
            raise BadInput(
                f"{member.display_url} does not end in /simple: a failover chain maps the same paths onto every upstream, so each must be an index URL ending in /simple"
            )
        if member.credentials is not None:
            raise BadInput(f"{member.display_url} needs credentials, which a failover chain cannot pass on yet: use it without --fallback")
        if url.startswith(LOCAL_PREFIX):
            raise BadInput(f"{member.display_url} is the cache's own failover server: give the indexes it should fetch from")


def render(chain: Chain, official: str) -> str:
    """The server block (and its log format) that devpi's mirror_url points at."""
    key = chain.key(official)
    roots = [root(member, official) for member in chain.members]
    # Links to an upstream's own root become links to this server, so files fail over too.
    # The official index links its files on another host, which is left as it is.
    rewrites = [f"    sub_filter '{base}/' '/{key}/';" for base in roots]
    lines = [
        f"# Written by devpictl: failover from {label(chain.primary)} to {', '.join(label(f) for f in chain.fallbacks)} (docs/failover.md).",
        "# The request's path after the first segment, as the client sent it (still encoded).",
        'map $request_uri $devpictl_failover_path { "~^/[^/]+/(?<rest>.*)$" $rest; default ""; }',
        "log_format devpictl_failover '$time_iso8601 failover \"$request\" $status $body_bytes_sent '",
        '                             \'upstreams="$upstream_addr" statuses="$upstream_status" $request_time s\';',
        "server {",
        f"    listen 127.0.0.1:{PORT};",
        "    include /run/devpictl/resolver.conf;",
        "    resolver_timeout 3s;",
        "    access_log /dev/stderr devpictl_failover;",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        '    proxy_set_header Accept-Encoding "";  # sub_filter reads plain bodies',
        f"    proxy_connect_timeout {CONNECT_TIMEOUT};",
        f"    proxy_send_timeout {READ_TIMEOUT};",
        f"    proxy_read_timeout {READ_TIMEOUT};",
        "    proxy_intercept_errors on;",
        "    recursive_error_pages on;",
        "    proxy_ssl_server_name on;",
        "    proxy_ssl_verify on;",
        "    proxy_ssl_verify_depth 10;",
        "    proxy_ssl_trusted_certificate /run/devpictl/failover-ca.pem;",
        "    sub_filter_once off;",
        "    sub_filter_types application/vnd.pypi.simple.v1+json application/vnd.pypi.simple.v1+html;",
        *rewrites,
        "",
        "    # Pages: a 404 is an answer (no such project); files: a 404 means this upstream lacks it yet.",
        *_chain("page", roots, "500 502 503 504"),
        *_chain("file", roots, "404 500 502 503 504"),
        "}",
        "",
    ]
    text = "\n".join(lines)
    # Which server block nginx runs: install() waits until this answers with the new one's digest.
    marker = f'    location = {MARKER} {{ return 200 "{hashlib.sha256(text.encode()).hexdigest()}"; }}\n}}\n'
    return text.removesuffix("}\n") + marker


def digest_of(conf: str) -> str:
    """The digest render() put into a server block's marker location."""
    return conf.rsplit('return 200 "', 1)[1].split('"', 1)[0]


# Run after `nginx -s reload`, which only signals nginx: waits until new connections get the new server block.
WAIT_FOR_RELOAD = """
import os, sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen(os.environ["DEVPICTL_MARKER_URL"], timeout=1) as answer:
            if answer.read().decode() == os.environ["DEVPICTL_DIGEST"]:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("the front server did not load the failover server")
"""


def _chain(kind: str, roots: list[str], errors: str) -> list[str]:
    lines = []
    for position, base in enumerate(roots):
        if position:
            where = f"location @{kind}{position} {{"
        else:
            where = "location ~ ^/[^/]+/simple/ {" if kind == "page" else "location / {"
        lines.append(f"    {where}")
        lines.append(f"        proxy_pass {base}/$devpictl_failover_path;")
        if position + 1 < len(roots):
            lines.append(f"        error_page {errors} = @{kind}{position + 1};")
        lines.append("    }")
    return lines


def chain_document(chain: Chain, official: str) -> str:
    """What status reads back from the volume: the chain's members, without credentials."""
    return (
        json.dumps(
            {
                "key": chain.key(official),
                "members": [{"name": label(m), "url": m.public_url, "spec": spec(m)} for m in chain.members],
            },
            indent=1,
        )
        + "\n"
    )


def supported(container) -> bool:
    """Whether the container's front server includes the volume's failover server (images of this devpictl)."""
    code, output = ctr.exec_output(container, ["grep", "-c", f"include {DIRECTORY}/", NGINX_CONF])
    return code == 0 and output.strip() not in ("", "0")


def install(container, chain: Chain, official: str) -> None:
    """Write the chain's server block into the volume and make nginx load it."""
    if not supported(container):
        raise Conflict(
            "this cache's image has no failover server: rebuild it with this devpictl (`devpictl build`, then `devpictl up` upgrades the cache), or drop --fallback"
        )
    conf = render(chain, official)
    script = (
        f"set -e; mkdir -p {DIRECTORY}; "
        f'printf %s "$DEVPICTL_CONF" > {SERVER_CONF}.new; printf %s "$DEVPICTL_CHAIN" > {CHAIN_FILE}.new; '
        f"mv {SERVER_CONF}.new {SERVER_CONF}; mv {CHAIN_FILE}.new {CHAIN_FILE}; "
        f"nginx -e stderr -c {NGINX_CONF} -t -q; nginx -e stderr -c {NGINX_CONF} -s reload; "
        'python -c "$DEVPICTL_WAIT"'
    )
    code, output = ctr.exec_output(
        container,
        ["sh", "-c", script],
        {
            "DEVPICTL_CONF": conf,
            "DEVPICTL_CHAIN": chain_document(chain, official),
            "DEVPICTL_WAIT": WAIT_FOR_RELOAD,
            "DEVPICTL_DIGEST": digest_of(conf),
            "DEVPICTL_MARKER_URL": f"http://127.0.0.1:{PORT}{MARKER}",
        },
    )
    if code != 0:
        remove(container)
        raise EngineError(
            f"the front server refused the failover server ({output.strip().splitlines()[-1] if output.strip() else code}): see `devpictl logs`"
        )


def remove(container) -> None:
    """Drop the failover server (the upstream no longer goes through it)."""
    ctr.exec_output(container, ["sh", "-c", f"rm -rf {DIRECTORY} && nginx -e stderr -c {NGINX_CONF} -s reload"])


def installed(container) -> dict | None:
    """The chain in the cache's volume, as chain_document wrote it; None without one."""
    code, output = ctr.exec_output(container, ["cat", CHAIN_FILE])
    if code != 0:
        return None
    try:
        data = json.loads(output)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("members"), list) else None


def is_local(url: object) -> bool:
    """Whether devpi's mirror_url points at the failover server."""
    return isinstance(url, str) and url.startswith(LOCAL_PREFIX)


def describe(container, mirror_url: str) -> Upstream:
    """The upstream devpi's mirror_url stands for, when it is the failover server."""
    data = installed(container) or {}
    members = [m for m in data.get("members", []) if isinstance(m, dict)]
    names = [str(m.get("name")) for m in members]
    name = "+".join(names) if names else urlsplit(mirror_url).path.split("/")[1] + "+fallbacks"
    note = f"{names[0]}, then {', '.join(names[1:])}" if len(names) > 1 else ""
    return Upstream(name, mirror_url.rstrip("/"), note)


def members_of(container) -> list[dict]:
    """[{name, url, spec}] of the chain the cache's volume holds; empty without one."""
    data = installed(container) or {}
    return [m for m in data.get("members", []) if isinstance(m, dict)]


def plan(
    container,
    wanted: Upstream | None,
    fallbacks: tuple[Upstream, ...] | None,
    remembered: list[str],
    mirror_url: object,
    official: str,
) -> tuple[Upstream | None, Chain | None]:
    """(what devpi should fetch from, None to keep its upstream; the chain to install, if any).

    ``fallbacks`` None means the remembered ones; the primary is ``wanted``, else the
    cache's own (the chain's primary when it runs one). A remembered fallback that is
    the new primary is dropped; one given twice is refused.
    """
    running = members_of(container) if is_local(mirror_url) else []
    given = fallbacks is not None
    if fallbacks is None:
        fallbacks = tuple(resolve(item) for item in remembered)
    if wanted is None:
        if not fallbacks and not running:
            return None, None
        wanted = (
            resolve(str(running[0].get("spec"))) if running else find_by_url(mirror_url if isinstance(mirror_url, str) else None, official)
        )
    if not given:
        fallbacks = tuple(f for f in fallbacks if effective_url(f, official) != effective_url(wanted, official))
    if not fallbacks:
        return wanted, None
    chain = make_chain(wanted, fallbacks)
    return chain.as_upstream(official), chain


def prepare(container, chain: Chain, official: str, check: Callable[[str], None] | None, *, front: bool, actions: list[str]) -> None:
    """Check the chain's upstreams that are new to the cache (``check`` raises for one that does not answer), then install it."""
    if not front:
        raise Conflict(
            f"--fallback works in the front server, which {container.name} runs without: run `devpictl down` and `devpictl up --front`, or drop --fallback"
        )
    before = [str(m.get("url") or official).rstrip("/") for m in members_of(container)]
    if check is not None:
        for member in chain.members:
            if effective_url(member, official) not in before:
                check(effective_url(member, official))
    install(container, chain, official)
    if before != [effective_url(member, official) for member in chain.members]:
        actions.append(f"fallbacks: {', '.join(label(f) for f in chain.fallbacks)}, in that order")


def drop(container, actions: list[str]) -> None:
    """Remove a failover server the cache no longer fetches through."""
    if members_of(container):
        remove(container)
        actions.append("removed the fallbacks")


def current(container, mirror_url: object, official: str) -> Upstream:
    """What root/pypi fetches from: a catalog or user entry, a custom URL, or a failover chain."""
    if is_local(mirror_url):
        return describe(container, str(mirror_url))
    return find_by_url(mirror_url if isinstance(mirror_url, str) else None, official)


def remembered(instance) -> list[str]:
    """The fallbacks `up` or `set-upstream` remembered for the cache (cache.toml)."""
    value = load_remembered(instance).get("fallback")
    return list(value) if isinstance(value, list) else []


def remember(instance, chain: Chain | None) -> None:
    """Keep set-upstream's fallbacks with what `up` remembered, for the next `up` and `set-upstream`."""
    stored = load_remembered(instance)
    stored["fallback"] = [spec(f) for f in chain.fallbacks] if chain else []
    save_remembered(instance, stored)


def primary_and_fallbacks(upstream: Upstream, chain: Chain | None) -> tuple[Upstream, tuple[Upstream, ...]]:
    """What a command reports: the primary upstream, and its fallbacks."""
    return (chain.primary, chain.fallbacks) if chain is not None else (upstream, ())
