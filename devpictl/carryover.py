"""What a backup carries of its cache besides devpi's data: the settings `up` remembered, and the CA bundle's text.

restore gives them to a cache that has none of its own, so that its next `up` makes the same cache.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl.errors import DevpictlError
from devpictl.files import write_atomic
from devpictl.precedence import REMEMBERED, load_remembered, save_remembered
from devpictl.settings import Instance

if TYPE_CHECKING:
    from docker import DockerClient


def carried_settings(instance: Instance) -> dict[str, object]:
    """What `up` remembered for the cache, and its CA bundle's text, for the manifest: restore gives them to the new cache."""
    try:
        stored = load_remembered(instance)
    except DevpictlError:  # a broken cache.toml must not stop a backup: `up` names its fault
        stored = {}
    carried: dict[str, object] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in stored.items()}}
    ca_bundle = stored.get("ca_bundle")
    if ca_bundle is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            carried["ca_bundle_pem"] = Path(ca_bundle).read_text("utf-8")
    return carried


def carry_over_settings(engine: DockerClient, instance: Instance, manifest: dict, image: str) -> list[str]:
    """Give a cache with no remembered settings those of the archive's cache, so its next `up` makes the same cache.

    The image is the one restore used; a port another cache here publishes, and a network
    this engine lacks, are left for `up`'s flags; a CA bundle whose file is gone comes from the archive's copy.
    """
    settings = manifest.get("settings")
    if instance.settings_file.exists() or not isinstance(settings, dict):
        return []  # the cache keeps its own; an archive of an older devpictl carries none
    kept = {}
    for key, value in settings.items():
        if key in REMEMBERED:
            with contextlib.suppress(DevpictlError):  # a setting this devpictl does not take is left out
                kept[key] = REMEMBERED[key].remembered(value, f"the archive's settings: {key} =")
    notes = []
    if kept.get("image") is not None and kept["image"] != image:
        kept["image"] = image
    port = kept.get("port")
    if port is not None:
        try:
            ctr.check_no_cache_on_port(engine, port)
        except DevpictlError:
            del kept["port"]
            notes.append(f"port {port} belongs to another cache here: give `devpictl up --name {instance.name} --port PORT`")
    network = kept.get("network")
    if network is not None:
        try:
            ctr.check_network(engine, network)
        except DevpictlError:
            del kept["network"]
            notes.append(
                f"network {network!r} is not on this engine: give `devpictl up --name {instance.name} --network NAME` if it needs one"
            )
    ca_bundle, pem = kept.get("ca_bundle"), manifest.get("ca_bundle_pem")
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        if isinstance(pem, str) and pem:
            write_atomic(instance.ca_bundle_copy, pem.encode("utf-8"), 0o644)
            kept["ca_bundle"] = instance.ca_bundle_copy
        else:
            notes.append(f"its CA bundle {ca_bundle} is not here: give `devpictl up --name {instance.name} --ca-bundle FILE`")
    if not kept:
        return notes
    save_remembered(instance, kept)
    return [f"kept the settings of cache {manifest.get('cache')!r} for the next `up` ({', '.join(sorted(kept))})", *notes]
