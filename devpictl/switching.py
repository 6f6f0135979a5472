"""Switching root/pypi's upstream safely: credentials, core metadata, refreshing cached pages."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from devpictl import container as ctr
from devpictl import coremetadata, failover, layout, password, precedence, probe, refresh, replica
from devpictl.devpi import DevpiClient, ExpiredPages
from devpictl.errors import BadInput, Conflict, DevpictlError, DevpiError, Interrupted
from devpictl.front import Front
from devpictl.mirrors import Upstream, effective_url, find_by_url
from devpictl.network import is_loopback
from devpictl.reporter import Reporter
from devpictl.settings import Instance, read_secret_file, write_durably

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container


@dataclass(frozen=True)
class Switched:
    previous: Upstream  # what root/pypi fetched from before
    upstream: Upstream  # what it fetches from now: the failover server when ``chain`` is set
    chain: failover.Chain | None


def set_up_upstream(
    client: DevpiClient,
    container: Container,
    opts: precedence.SwitchOptions,
    wanted: Upstream | None,
    reporter: Reporter,
    actions: list[str],
) -> Switched:
    """Log in and point root/pypi at ``wanted`` and its fallbacks (None: keep what it has); what `up` and set-upstream share."""
    instance = opts.instance
    official = official_url(container)
    if wanted is not None and not opts.offline:
        check_not_itself(container, wanted, official)  # before anything changes, the login's settling included
    measure = core_metadata_measurement(container, reporter, probe_project=opts.probe_project, check=opts.check, offline=opts.offline)
    settled = password.login_root(client, instance)
    if settled:
        actions.append(settled)
    front = Front(container)
    mirror_url = client.get_index().get("mirror_url")
    running = front.running(mirror_url)
    current = failover.current(running, mirror_url, official)
    wanted, chain = failover.plan(running, wanted, opts.fallbacks, failover.remembered(instance), mirror_url, official)
    if wanted is not None and not opts.offline:
        keep_credentials(container, instance, wanted, official)
    if chain is not None and not opts.offline:
        check = upstream_checker(container, opts.probe_project, reporter) if opts.check else None
        actions += front.prepare(chain, official, check)
    if wanted is not None and (opts.check or opts.offline):
        if opts.offline and effective_url(wanted, official) != effective_url(current, official):
            raise Conflict(offline_switch_message(instance))
        check_switch(container, current, wanted, official, opts.probe_project, reporter)
    upstream = configure_upstream(
        client,
        wanted,
        official,
        reporter,
        actions,
        lambda: flush_front_caches(client, front),
        instance.unfinished_switch_file,
        measure,
        current,
        refresh_pages=opts.refresh_pages,
    )
    if chain is None and not opts.offline and front.enabled:
        actions += front.drop()
    return Switched(current, upstream, chain)


def upstream_changes(upstream: Upstream, ixconfig: Mapping[str, object], official_url: str) -> list[str]:
    """The PATCH items that make root/pypi fetch from ``upstream``; empty when it already does."""
    wanted: dict[str, object] = {
        "mirror_url": upstream.public_url or official_url,
        # Without PyPI's serial header devpi would reject the pages of an upstream
        # that is "older" than what it cached before (and most mirrors send none).
        "mirror_ignore_serial_header": not upstream.sends_serial_header,
        # Don't load the upstream's ~1e6-name project list: it delays the first
        # install on a fresh cache, and with it off the index lists what it cached.
        "mirror_no_project_list": True,
    }
    changes = []
    for key, want in wanted.items():
        have = ixconfig.get(key)
        if isinstance(want, bool):
            if bool(have) != want:
                changes.append(f"{key}={'true' if want else 'false'}")
        elif have is None or str(have).rstrip("/") != str(want).rstrip("/"):
            changes.append(f"{key}={want}")
    return changes


def stored_credentials(instance: Instance) -> dict[str, str]:
    text = read_secret_file(instance.upstream_auth_file)
    try:
        entries = json.loads(text) if text else {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise BadInput(
            f"{instance.upstream_auth_file} is not devpictl's JSON: delete it and give the upstream URL with its credentials again"
        )
    return entries


def check_not_itself(container: Container, upstream: Upstream, official: str) -> None:
    """Refuse the cache as its own upstream: every project it lacks would loop until devpi gives up (502)."""
    parts = urlsplit(effective_url(upstream, official))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", (container.name or "").lower()) or is_loopback(host)
    published_host, published_port = ctr.published_address(container)
    # From inside the container, loopback reaches the front server and devpi; the
    # published port reaches the cache from anywhere that can see its address.
    inside = local and port in (layout.CONTAINER_PORT, layout.DEVPI_PORT)
    outside = port == published_port and (local or host == published_host)
    if inside or outside:
        raise BadInput(f"{upstream.display_url} is this cache itself: give the index it should fetch from, e.g. `--mirror pypi`")


def keep_credentials(container: Container, instance: Instance, upstream: Upstream, official: str) -> None:
    """Keep the upstream's user and password out of devpi's readable config: in devpictl's 0600 store and the container's run dir."""
    if upstream.credentials is None:
        return
    user, password = upstream.credentials
    entries = stored_credentials(instance)
    entries[effective_url(upstream, official)] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    data = json.dumps(entries)
    write_durably(instance.upstream_auth_file, data)
    ctr.hand_in_files(container, {layout.UPSTREAM_AUTH: data.encode()})


def official_url(container: Container) -> str:
    """The official index's URL as devpi itself knows it (the mirror_url devpi-init gives root/pypi).

    devpictl names no index host of its own; dropping mirror_url instead makes
    devpi 6.20 fail every fetch (KeyError), so the default is read from devpi.
    """
    code, output = ctr.exec_output(
        container,
        [layout.PYTHON, "-c", "from devpi_server.main import _pypi_ixconfig_default as d; print(d['mirror_url'])"],
    )
    url = ctr.last_line(output)
    if code != 0 or not url.startswith(("http://", "https://")):
        raise DevpiError(
            f"cannot read devpi's default upstream from {container.name} ({ctr.last_line(output)}): give the official index's URL instead of 'pypi'"
        )
    return url.rstrip("/")


def configure_upstream(
    client: DevpiClient,
    wanted: Upstream | None,
    official: str,
    reporter: Reporter,
    actions: list[str],
    flush: Callable[[], None],
    unfinished: Path,
    core_metadata: Callable[[str], coremetadata.MetadataCheck] | None = None,
    current: Upstream | None = None,
    *,
    refresh_pages: bool = False,
) -> Upstream:
    """Point root/pypi at ``wanted`` (None: keep its upstream) and renew what it cached.

    ``flush`` empties the front server's page cache after any change. The file
    ``unfinished`` exists from just before a switch's PATCH until its pages are
    renewed (renew_cached_pages), so a run that was stopped in between is finished
    by the next one, even when that one has nothing to PATCH.

    ``core_metadata`` measures whether an upstream URL serves core metadata;
    mirror_provides_core_metadata follows it. Without a verdict (None: nothing
    measured; or the upstream did not answer) the option stays as it is, unless the
    upstream changes, which turns it off. The option goes off before a switch (no
    page may announce a metadata file the new upstream lacks) and on only after the
    cached pages list the new upstream's files.
    """
    ixconfig = client.get_index()
    current = current or find_by_url(ixconfig.get("mirror_url"), official)
    target = wanted or current
    changes = upstream_changes(target, ixconfig, official)
    switching = effective_url(target, official) != effective_url(current, official)
    have = bool(ixconfig.get(coremetadata.INDEX_OPTION))
    check = core_metadata(effective_url(target, official)) if core_metadata is not None else coremetadata.NOT_MEASURED
    want = (have and not switching) if check.served is None else check.served
    finishing = not changes and unfinished.exists()
    if not changes and want == have and not finishing:
        return target
    if have and not want:
        client.patch_index([f"{coremetadata.INDEX_OPTION}=false"])
        flush()
        actions.append(f"stopped announcing core metadata: {check.detail}")
    if changes:
        reporter.step(f"Setting upstream to {target.name} {target.display_url}")
        if switching:
            write_durably(unfinished, effective_url(target, official) + "\n")
        client.patch_index(changes)
        if switching:
            actions.append(f"switched upstream from {current.name} to {target.name}")
        else:
            actions.append("updated the mirror options of root/pypi")
    elif finishing:
        switching = True
        actions.append(f"finishing the switch to {target.name} that an earlier run left unfinished")
    announce = want and not have
    if not switching:
        if announce:
            client.patch_index([f"{coremetadata.INDEX_OPTION}=true"])
            actions.append(f"announcing core metadata: {check.detail}")
        flush()
        return target
    try:
        renewed = renew_cached_pages(client, reporter, unfinished, refresh_pages)
        # Metadata is announced only once no page lists the old upstream's files.
        if announce:
            client.patch_index([f"{coremetadata.INDEX_OPTION}=true"])
        flush()
    except DevpictlError as exc:
        exc.args = (
            f"the upstream was switched to {target.name}, but its cached pages were not all renewed ({exc}); run the same command again to finish",
        )
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after the upstream was switched to {target.name}, before its cached pages were renewed: run the same command again to finish"
        ) from None
    unfinished.unlink(missing_ok=True)
    actions.extend(renewed)
    if announce:
        actions.append(f"announcing core metadata: {check.detail}")
    return target


def core_metadata_measurement(
    container, reporter: Reporter, *, probe_project: str, check: bool, offline: bool
) -> Callable[[str], coremetadata.MetadataCheck] | None:
    """What configure_upstream uses to decide mirror_provides_core_metadata; None: measure nothing."""
    if not probe.serves_core_metadata(container):
        return None  # devpi < 6.20, or an image built before devpictl enabled it: nothing to decide
    if offline:
        # Offline, devpi lists only the files it stored, and reads their metadata out of them.
        return lambda url: coremetadata.MetadataCheck(True, "offline mode lists only stored wheels, whose metadata devpi reads from them")
    if not check:
        return None

    def measure(url: str) -> coremetadata.MetadataCheck:
        with probe.checking(reporter, url, "serves core metadata"):
            return probe.measure_core_metadata(container, url, probe_project)

    return measure


def core_metadata_state(client: DevpiClient, container: Container) -> bool:
    """Whether the cache announces core metadata for its mirror now."""
    return probe.serves_core_metadata(container) and bool(client.get_index().get(coremetadata.INDEX_OPTION))


def offline_switch_message(instance: Instance) -> str:
    return (
        f"cache {instance.name!r} runs in offline mode and asks no upstream, so it cannot switch to another: "
        f"run `devpictl down --name {instance.name}` and `devpictl up --name {instance.name} --online` first"
    )


def flush_front_caches(client: DevpiClient, front: Front) -> None:
    """Make cached pages misses in this cache's front server, then in its replicas' (replica.announce_new_pages)."""
    front.flush()
    replica.announce_new_pages(client)


def renew_cached_pages(client: DevpiClient, reporter: Reporter, unfinished: Path, refresh_pages: bool) -> list[str]:
    """After a switch, make every cached page come from the new upstream; what was done, as actions.

    First, at once: devpi marks every cached page stale in one transaction. Each is
    fetched from the new upstream on its next request, as when mirror_cache_expiry
    passes (seconds, however many there are); until then, and while the new upstream
    fails, devpi serves it listing the files the cache holds. ``refresh_pages``, or a
    devpi without devpictl's plugin request: then each page is fetched again now
    (refresh_cached_projects), which takes minutes on a large cache but tells which
    projects the new upstream lacks; a page whose refresh fails stays as marked.
    """
    resumed_refresh = refresh_pages and bool(refresh.already_done(unfinished))
    expired = None
    if not resumed_refresh:  # a resumed refresh marked every page before its first refresh
        with reporter.waiting("Marking the pages cached from the old upstream stale"):
            expired = client.expire_pages()
    if expired is not None and not refresh_pages:
        return [describe_expired(expired)] if expired.pages else []
    refreshed, missing = refresh_cached_projects(client, reporter, unfinished)
    actions = [f"refreshed {len(refreshed)} cached project pages from the new upstream"] if refreshed else []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        actions.append(f"{len(missing)} cached projects are not on the new upstream: {shown}")
    return actions


def describe_expired(expired: ExpiredPages) -> str:
    if expired.kept is None:  # an image whose plugin forgets the pages
        return f"forgot {expired.pages} cached project pages: each comes from the new upstream at its next request"
    return (
        f"marked {expired.pages} cached project pages stale: each comes from the new upstream at its next request; "
        f"{expired.kept} with stored files are served as they are while that upstream fails"
    )


def refresh_cached_projects(client: DevpiClient, reporter: Reporter, unfinished: Path) -> tuple[list[str], list[str]]:
    """Make pages cached from the old upstream list the new upstream's files now (devpictl/refresh.py).

    Files already downloaded stay in the cache. Returns (refreshed, not upstream).
    """
    projects = sorted(client.list_projects())
    done = refresh.already_done(unfinished)
    todo = sum(1 for project in projects if project not in done)
    resumed = f" ({len(projects) - todo} done before)" if todo < len(projects) else ""
    with reporter.counting(f"Refreshing cached project pages{resumed}", todo) as advance:
        return refresh.refresh(projects, client.refresh_project, unfinished, advance)


def check_switch(container: Container, current: Upstream, wanted: Upstream, official: str, project: str, reporter: Reporter) -> None:
    """Before a switch, refuse a ``wanted`` upstream that does not answer; the cache's own upstream needs no check."""
    url = effective_url(wanted, official)
    if url != effective_url(current, official):
        with probe.checking(reporter, url):
            probe.check_upstream(container, url, project)


@dataclass
class SwitchResult:
    name: str
    previous: Upstream
    upstream: Upstream
    actions: list[str]
    core_metadata: bool = False  # whether the mirror's pages announce core metadata now
    fallbacks: tuple[Upstream, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "previous": self.previous.public_dict(),
            "upstream": self.upstream.public_dict(),
            "fallbacks": [f.public_dict() for f in self.fallbacks],
            "changed": bool(self.actions),
            "actions": self.actions,
            "core_metadata": self.core_metadata,
        }


def set_upstream(
    engine: DockerClient,
    instance: Instance,
    upstream: Upstream,
    *,
    check: bool,
    probe_project: str | None,
    reporter: Reporter,
    fallbacks: tuple[Upstream, ...] | None = None,
    refresh_pages: bool = False,
) -> SwitchResult:
    container = ctr.running_container(engine, instance)
    replica.refuse_on_replica(container, instance, "set-upstream")
    if ctr.offline_enabled(container):
        raise Conflict(offline_switch_message(instance))
    opts = precedence.SwitchOptions(
        instance, precedence.probe_project(instance, probe_project), fallbacks, check=check, refresh_pages=refresh_pages
    )
    actions: list[str] = []
    with DevpiClient(ctr.local_base_url(container)) as client:
        switched = set_up_upstream(client, container, opts, upstream, reporter, actions)
        core_metadata = core_metadata_state(client, container)
    failover.remember(instance, switched.chain)
    primary, chosen = failover.primary_and_fallbacks(switched.upstream, switched.chain)
    return SwitchResult(instance.name, switched.previous, primary, actions, core_metadata, chosen)


def upstream_checker(container: Container, probe_project: str, reporter: Reporter) -> Callable[[str], None]:
    """check_upstream for ``probe_project``, with a spinner: how failover checks a chain's new upstreams."""

    def check(url: str) -> None:
        with probe.checking(reporter, url):
            probe.check_upstream(container, url, probe_project)

    return check
