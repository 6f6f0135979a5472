"""What `up` is asked for, and the one place its precedence is settled: flag > environment > remembered > default.

(Typer fills flags and environment variables; cache.toml holds what `up` remembered.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devpictl import image as img
from devpictl.mirrors import Upstream
from devpictl.network import DEFAULT_HOST
from devpictl.settings import DEFAULT_MEMORY, DEFAULT_PIDS_LIMIT, DEFAULT_PORT, Instance, load_remembered

DEFAULT_PROBE_PROJECT = "pip"


@dataclass(frozen=True)
class UpOptions:
    instance: Instance
    upstream: Upstream | None  # None: keep what the cache has (pypi for a new one)
    # None below: what `up` remembered for this cache, else the built-in default.
    host: str | None
    port: int | None
    image: str | None
    build: img.BuildOptions
    network: str | None = None
    ca_bundle: Path | None = None
    probe_project: str | None = None
    front: bool | None = None  # nginx before devpi
    offline: bool | None = None  # devpi's --offline-mode: serve only cached files, never ask the upstream
    memory: str | None = None  # the container's memory limit, Docker's notation (2g)
    pids_limit: int | None = None
    max_bytes: int | None = None  # keep the mirrored files under this size (0: no limit)
    fallbacks: tuple[Upstream, ...] | None = None  # upstreams to fail over to; None: the remembered ones
    check: bool = True  # check that a new upstream answers before switching to it
    refresh_pages: bool = False  # after a switch, fetch every cached page now instead of at its next request
    replica_of: str | None = None  # the primary's URL: run as its replica (replica.py)
    replica_secret: Path | None = None  # the file holding the primary's devpi secret
    timeout: float = 180.0
    environ: Mapping[str, str] = field(default_factory=dict)
    # The build options the user gave (BuildOptions has defaults for the rest):
    # an existing image must match these, see choose_image.
    build_given: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SwitchOptions:
    """What pointing root/pypi at an upstream needs to know (switching.set_up_upstream)."""

    instance: Instance
    probe_project: str
    fallbacks: tuple[Upstream, ...] | None = None  # None: the remembered ones
    check: bool = True
    offline: bool = False
    refresh_pages: bool = False


@dataclass(frozen=True)
class CacheSettings:
    """Every setting of `up` decided: what was asked, else remembered, else the built-in default."""

    instance: Instance
    upstream: Upstream | None  # None: keep what the cache has (pypi for a new one)
    host: str
    port: int
    image: str
    build: img.BuildOptions
    network: str | None
    ca_bundle: Path | None
    probe_project: str
    front: bool
    offline: bool
    memory: str
    pids_limit: int
    max_bytes: int
    fallbacks: tuple[Upstream, ...] | None
    check: bool
    refresh_pages: bool
    replica_of: str | None
    replica_secret: Path | None
    timeout: float
    environ: Mapping[str, str]
    build_given: frozenset[str]

    def switch_options(self) -> SwitchOptions:
        return SwitchOptions(self.instance, self.probe_project, self.fallbacks, self.check, self.offline, self.refresh_pages)


def with_remembered(opts: UpOptions) -> tuple[UpOptions, CacheSettings]:
    """(opts with remembered values filled in, every setting decided)."""
    stored = load_remembered(opts.instance)
    remembered_bundle = stored.get("ca_bundle")
    given = dataclasses.replace(
        opts,
        host=opts.host or stored.get("host"),
        port=opts.port or stored.get("port"),
        image=opts.image or stored.get("image"),
        network=opts.network or stored.get("network"),
        ca_bundle=opts.ca_bundle or (Path(remembered_bundle) if remembered_bundle else None),
        probe_project=opts.probe_project or stored.get("probe_project"),
        front=opts.front if opts.front is not None else stored.get("front"),
        offline=opts.offline if opts.offline is not None else stored.get("offline"),
        memory=opts.memory or stored.get("memory"),
        pids_limit=opts.pids_limit or stored.get("pids_limit"),
        max_bytes=opts.max_bytes if opts.max_bytes is not None else stored.get("max_bytes"),
        replica_of=opts.replica_of or stored.get("replica_of"),
    )
    full = CacheSettings(
        instance=given.instance,
        upstream=given.upstream,
        host=given.host or DEFAULT_HOST,
        port=given.port or DEFAULT_PORT,
        image=given.image or img.default_image(given.build.devpi_server_version),
        build=given.build,
        network=given.network,
        ca_bundle=given.ca_bundle,
        probe_project=given.probe_project or DEFAULT_PROBE_PROJECT,
        front=given.front if given.front is not None else True,
        offline=bool(given.offline),
        memory=given.memory or DEFAULT_MEMORY,
        pids_limit=given.pids_limit or DEFAULT_PIDS_LIMIT,
        max_bytes=given.max_bytes or 0,
        fallbacks=given.fallbacks,
        check=given.check,
        refresh_pages=given.refresh_pages,
        replica_of=given.replica_of,
        replica_secret=given.replica_secret,
        timeout=given.timeout,
        environ=given.environ,
        build_given=given.build_given,
    )
    return given, full


def probe_project(instance: Instance, given: str | None = None) -> str:
    """The project whose page shows that an upstream answers: given (--probe-project), else remembered, else pip."""
    return given or load_remembered(instance).get("probe_project") or DEFAULT_PROBE_PROJECT
