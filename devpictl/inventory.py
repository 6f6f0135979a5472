"""Every cache devpictl knows here: running, stopped, or down with its data kept.

A cache is known by any of its traces: its container, its data volume (both
labelled with its name), or its state directory (root password, remembered
settings). Each entry says what to do next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl import devpi
from devpictl import status as cache_status
from devpictl.cache import Cache
from devpictl.settings import LABEL_INSTANCE, Instance, data_dir

if TYPE_CHECKING:
    from docker import DockerClient


@dataclass
class KnownCache:
    name: str
    # the container's state (running, exited, restarting, ...), or "down" without a container
    state: str
    health: str | None
    index_url: str | None
    upstream_name: str | None
    upstream: str | None
    cache_bytes: int | None  # the data volume's size, as the engine last counted it
    volume: str | None  # None once the volume is deleted
    next_step: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def known_names(engine: DockerClient) -> list[str]:
    """Names of every cache with a container, a volume or a state directory here."""
    names = ctr.instance_names(engine)
    caches = data_dir() / "caches"
    if caches.is_dir():
        names |= {d.name for d in caches.iterdir() if d.is_dir() and holds_a_cache(d)}
    return sorted(names)


def holds_a_cache(state_dir: Path) -> bool:
    """Whether a state directory keeps more than the log of an `up` that failed and removed all it made."""
    return any(f.name != Instance(state_dir.name).failure_log.name for f in state_dir.iterdir())


def volume_sizes(engine: DockerClient) -> dict[str, int]:
    """The engine's count of each labelled volume's bytes (-1 where it has not counted)."""
    usage = engine.df().get("Volumes") or []
    return {v["Name"]: v.get("UsageData", {}).get("Size", -1) for v in usage if LABEL_INSTANCE in (v.get("Labels") or {})}


def describe(engine: DockerClient, name: str, sizes: dict[str, int]) -> KnownCache:
    instance = Instance(name)
    cache = Cache.find(engine, instance, timeout=3)
    has_volume = ctr.volume_exists(engine, instance)
    size = sizes.get(instance.volume)
    state, health = (cache.status, cache.health) if cache is not None else (cache_status.DOWN, None)
    index_url = upstream_name = upstream = None
    if cache is not None and state == "running":
        index_url = devpi.index_url(cache.local_base_url)
        with cache:
            served = cache_status.serving(cache)
        if served is not None:
            upstream_name, upstream = served.upstream.name, served.upstream.display_url
    return KnownCache(
        name=name,
        state=state,
        health=health,
        index_url=index_url,
        upstream_name=upstream_name,
        upstream=upstream,
        cache_bytes=size if size is not None and size >= 0 else None,
        volume=instance.volume if has_volume else None,
        next_step=cache_status.next_step(name, state, health, has_volume),
    )


def known_caches(engine: DockerClient, names: list[str] | None = None) -> list[KnownCache]:
    """Every cache devpictl knows (``names``, when the caller has them already)."""
    sizes = volume_sizes(engine)
    return [describe(engine, name, sizes) for name in (known_names(engine) if names is None else names)]
