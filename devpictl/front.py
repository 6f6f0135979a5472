"""The cache's nginx front server: emptying its page cache, and the failover server in its volume.

One ``Front`` stands for one cache's front server during one command: the failover
chain in the volume (chain.json) is read once, and what the command installs or
removes replaces what was read. devpictl/failover.py plans and renders the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl import failover, layout
from devpictl.errors import BadInput, Conflict, EngineError
from devpictl.mirrors import effective_url

if TYPE_CHECKING:
    from docker.models.containers import Container

SERVER_CONF = f"{layout.FAILOVER_DIR}/server.conf"
CHAIN_FILE = f"{layout.FAILOVER_DIR}/chain.json"

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


REFUSED = 65  # the install script's exit code when nginx refuses the new server block


class Front:
    """One cache's front server, for the life of one command."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._members: list[dict] | None = None  # the volume's chain, once read

    @property
    def enabled(self) -> bool:
        """Whether the cache runs its front server (`up --front`, the default)."""
        return ctr.front_enabled(self.container)

    def flush(self) -> None:
        """Make the front server's cached pages misses, so a switched upstream shows at once."""
        if not self.enabled:
            return
        code, output = ctr.exec_output(self.container, [layout.FLUSH_CACHE])
        if code != 0:
            raise EngineError(
                f"could not empty the front server's page cache ({ctr.last_line(output)}): run `devpictl down` and `devpictl up`"
            )

    @property
    def members(self) -> list[dict]:
        """[{name, url, spec}] of the chain the cache's volume holds (failover.chain_document); empty without one."""
        if self._members is None:
            self._members = read_members(self.container)
        return self._members

    def running(self, mirror_url: object) -> list[dict]:
        """The members of the chain devpi fetches through: none when its ``mirror_url`` is not the failover server."""
        return self.members if failover.is_local(mirror_url) else []

    def supported(self) -> bool:
        """Whether the front server includes the volume's failover server (images of this devpictl)."""
        code, output = ctr.exec_output(self.container, ["grep", "-c", f"include {layout.FAILOVER_DIR}/", layout.NGINX_CONF])
        return code == 0 and output.strip() not in ("", "0")

    def install(self, chain: failover.Chain, official: str) -> None:
        """Write the chain's server block into the volume and make nginx load it."""
        if not self.supported():
            raise Conflict(
                "this cache's image has no failover server: rebuild it with this devpictl (`devpictl build`, then `devpictl up` upgrades the cache), or drop --fallback"
            )
        conf = failover.render(chain, official)
        document = failover.chain_document(chain, official)
        nginx = f"nginx -e stderr -c {layout.NGINX_CONF}"
        # nginx checks the new server block in a copy of its configuration first: one it
        # refuses changes nothing, and the running chain (files, nginx, devpi) stays as it is.
        check = f"{layout.NGINX_DIR}/failover-check.conf"
        script = (
            f"set -e; mkdir -p {layout.FAILOVER_DIR}; "
            f'printf %s "$DEVPICTL_CONF" > {SERVER_CONF}.new; printf %s "$DEVPICTL_CHAIN" > {CHAIN_FILE}.new; '
            f'sed "s|include {layout.FAILOVER_DIR}/\\*\\.conf;|include {SERVER_CONF}.new;|" {layout.NGINX_CONF} > {check}; '
            f"nginx -e stderr -q -t -c {check} || {{ rm -f {SERVER_CONF}.new {CHAIN_FILE}.new {check}; exit {REFUSED}; }}; "
            f"rm -f {check}; mv {SERVER_CONF}.new {SERVER_CONF}; mv {CHAIN_FILE}.new {CHAIN_FILE}; "
            f"{nginx} -s reload; "
            'python -c "$DEVPICTL_WAIT"'
        )
        code, output = ctr.exec_output(
            self.container,
            ["sh", "-c", script],
            {
                "DEVPICTL_CONF": conf,
                "DEVPICTL_CHAIN": document,
                "DEVPICTL_WAIT": WAIT_FOR_RELOAD,
                "DEVPICTL_DIGEST": failover.digest_of(conf),
                "DEVPICTL_MARKER_URL": f"http://127.0.0.1:{layout.FAILOVER_PORT}{failover.MARKER}",
            },
        )
        said = output.strip().splitlines()[-1] if output.strip() else code
        if code == REFUSED:
            raise BadInput(
                f"the front server refused the failover server for this chain ({said}); nothing was changed: check the --fallback URLs"
            )
        if code != 0:
            self.remove()
            raise EngineError(f"the front server refused the failover server ({said}): see `devpictl logs`")
        self._members = json.loads(document)["members"]

    def remove(self) -> None:
        """Drop the failover server (the upstream no longer goes through it)."""
        ctr.exec_output(self.container, ["sh", "-c", f"rm -rf {layout.FAILOVER_DIR} && nginx -e stderr -c {layout.NGINX_CONF} -s reload"])
        self._members = []

    def prepare(self, chain: failover.Chain, official: str, check: Callable[[str], None] | None) -> list[str]:
        """Check the chain's upstreams that are new to the cache (``check`` raises for one that does not answer), then install it; what changed."""
        if not self.enabled:
            raise Conflict(
                f"--fallback works in the front server, which {self.container.name} runs without: run `devpictl down` and `devpictl up --front`, or drop --fallback"
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


def read_members(container: Container) -> list[dict]:
    """The members of the chain in the cache's volume, as failover.chain_document wrote them; empty without one."""
    code, output = ctr.exec_output(container, ["cat", CHAIN_FILE])
    if code != 0:
        return []
    try:
        data = json.loads(output)
    except ValueError:
        return []
    members = data.get("members") if isinstance(data, dict) else None
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []
