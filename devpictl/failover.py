"""Failover across upstreams (`--fallback`): the chain, and the server block of the cache's own nginx.

devpi's root/pypi fetches from ``http://127.0.0.1:<failover port>/<primary>/simple``, a
server of the front server's nginx on the container's loopback (templates/failover.conf.j2).
It passes every request to the same path under the primary's root, and on a connection
error, a timeout or a 5xx (for files also a 404) to the next upstream's, in order. Pages
are rewritten so that file links on an upstream's own root point back at this server, so
files fail over too; devpi checks every file against the sha256 its page gave. See
docs/failover.md.

This module plans and renders, without the container; devpictl/front.py puts the server
block and the chain into the data volume (layout.FAILOVER_DIR), which the image's
nginx.conf includes: a restarted or re-created container keeps them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from devpictl import layout
from devpictl.errors import BadInput
from devpictl.image import render_template
from devpictl.mirrors import Upstream, effective_url, find_by_url, is_fastest, resolve
from devpictl.precedence import load_remembered, save_remembered

LOCAL_PREFIX = f"http://127.0.0.1:{layout.FAILOVER_PORT}/"
NONE = "none"  # `--fallback none`: no fallbacks
MARKER = "/+devpictl-failover"  # answers the digest of the server block nginx runs
# Each upstream gets this long to connect and between two reads before the next one is asked;
# three upstreams fit in devpi's request timeout (30 s, image.render_server_config).
CONNECT_TIMEOUT = "3s"
READ_TIMEOUT = "7s"


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
    """The server block (and its log format) that devpi's mirror_url points at (templates/failover.conf.j2)."""
    values = {
        "primary": label(chain.primary),
        "fallbacks": [label(f) for f in chain.fallbacks],
        "key": chain.key(official),
        "roots": [root(member, official) for member in chain.members],
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "marker": MARKER,
    }
    # Which server block nginx runs: Front.install waits until the marker answers with the new one's digest.
    unmarked = render_template("failover.conf.j2", digest=None, **values)
    return render_template("failover.conf.j2", digest=hashlib.sha256(unmarked.encode()).hexdigest(), **values)


def digest_of(conf: str) -> str:
    """The digest render() put into a server block's marker location."""
    return conf.rsplit('return 200 "', 1)[1].split('"', 1)[0]


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


def is_local(url: object) -> bool:
    """Whether devpi's mirror_url points at the failover server."""
    return isinstance(url, str) and url.startswith(LOCAL_PREFIX)


def describe(running: list[dict], mirror_url: str) -> Upstream:
    """The upstream devpi's mirror_url stands for, when it is the failover server running the chain of ``running`` members."""
    names = [str(m.get("name")) for m in running]
    name = "+".join(names) if names else urlsplit(mirror_url).path.split("/")[1] + "+fallbacks"
    note = f"{names[0]}, then {', '.join(names[1:])}" if len(names) > 1 else ""
    return Upstream(name, mirror_url.rstrip("/"), note)


def plan(
    running: list[dict],
    wanted: Upstream | None,
    fallbacks: tuple[Upstream, ...] | None,
    remembered: list[str],
    mirror_url: object,
    official: str,
) -> tuple[Upstream | None, Chain | None]:
    """(what devpi should fetch from, None to keep its upstream; the chain to install, if any).

    ``running`` are the members of the chain the cache runs (Front.running). ``fallbacks``
    None means the remembered ones; the primary is ``wanted``, else the cache's own (the
    chain's primary when it runs one). A remembered fallback that is the new primary is
    dropped; one given twice is refused.
    """
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


def current(running: list[dict], mirror_url: object, official: str) -> Upstream:
    """What root/pypi fetches from: a catalog or user entry, a custom URL, or the failover chain of ``running`` members."""
    if is_local(mirror_url):
        return describe(running, str(mirror_url))
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
