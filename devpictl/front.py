"""The cache's nginx front server: emptying its page cache, and the failover server in its volume.

One ``Front`` stands for one cache's front server during one command: the failover
chain in the volume (chain.json) is read once, and what the command installs or
removes replaces what was read. devpictl/failover.py plans and renders the chain;
the Cache runs what it takes inside the container.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from devpictl import failover, layout
from devpictl.cache import REFUSED
from devpictl.errors import BadInput, Conflict, EngineError
from devpictl.mirrors import effective_url

if TYPE_CHECKING:
    from devpictl.cache import Cache


class Front:
    """One cache's front server, for the life of one command."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._members: list[dict] | None = None  # the volume's chain, once read

    @property
    def enabled(self) -> bool:
        """Whether the cache runs its front server (`up --front`, the default)."""
        return self.cache.front

    def flush(self) -> None:
        """Make the front server's cached pages misses, so a switched upstream shows at once."""
        if self.enabled:
            self.cache.flush_front()

    @property
    def members(self) -> list[dict]:
        """[{name, url, spec}] of the chain the cache's volume holds (failover.chain_document); empty without one."""
        if self._members is None:
            self._members = parse_members(self.cache.failover_chain())
        return self._members

    def running(self, mirror_url: object) -> list[dict]:
        """The members of the chain devpi fetches through: none when its ``mirror_url`` is not the failover server."""
        return self.members if failover.is_local(mirror_url) else []

    def install(self, chain: failover.Chain, official: str) -> None:
        """Write the chain's server block into the volume and make nginx load it."""
        if not self.cache.failover_supported():
            raise Conflict(
                "this cache's image has no failover server: rebuild it with this devpictl (`devpictl build`, then `devpictl up` upgrades the cache), or drop --fallback"
            )
        conf = failover.render(chain, official)
        document = failover.chain_document(chain, official)
        marker = f"http://127.0.0.1:{layout.FAILOVER_PORT}{failover.MARKER}"
        result = self.cache.install_failover(conf, document, failover.digest_of(conf), marker)
        said = result.output.strip().splitlines()[-1] if result.output.strip() else result.code
        if result.code == REFUSED:
            raise BadInput(
                f"the front server refused the failover server for this chain ({said}); nothing was changed: check the --fallback URLs"
            )
        if not result.ok:
            self.remove()
            raise EngineError(f"the front server refused the failover server ({said}): see `devpictl logs`")
        self._members = json.loads(document)["members"]

    def remove(self) -> None:
        """Drop the failover server (the upstream no longer goes through it)."""
        self.cache.remove_failover()
        self._members = []

    def prepare(self, chain: failover.Chain, official: str, check: Callable[[str], None] | None) -> list[str]:
        """Check the chain's upstreams that are new to the cache (``check`` raises for one that does not answer), then install it; what changed."""
        if not self.enabled:
            raise Conflict(
                f"--fallback works in the front server, which {self.cache.name} runs without: run `devpictl down` and `devpictl up --front`, or drop --fallback"
            )
        before = [str(m.get("url") or official).rstrip("/") for m in self.members]
        if check is not None:
            for member in chain.members:
                if effective_url(member, official) not in before:
                    check(effective_url(member, official))
        self.install(chain, official)
        if before == [effective_url(member, official) for member in chain.members]:
            return []
        return [f"fallbacks: {', '.join(failover.label(f) for f in chain.fallbacks)}, in that order"]

    def drop(self) -> list[str]:
        """Remove a failover server the cache no longer fetches through; what changed."""
        if not self.members:
            return []
        self.remove()
        return ["removed the fallbacks"]


def parse_members(text: str | None) -> list[dict]:
    """The members of a chain.json as failover.chain_document wrote it; empty without one, or for one unreadable."""
    if text is None:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    members = data.get("members") if isinstance(data, dict) else None
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []
