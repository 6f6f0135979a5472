"""What the commands do to a cache: up, set-upstream, status, down.

The CLI parses and reports; everything here takes typed values and a Reporter.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import shlex
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from devpictl import container as ctr
from devpictl import coremetadata, replica, simplepage, speedtest
from devpictl import image as img
from devpictl.devpi import MIRROR_INDEX, DevpiClient
from devpictl.errors import (
    BadInput,
    CacheNotFound,
    CacheUnreachable,
    Conflict,
    DevpictlError,
    DevpiError,
    EngineError,
    Interrupted,
    LoginRefused,
    ReadinessTimeout,
    UpstreamUnreachable,
)
from devpictl.mirrors import OFFICIAL, Upstream, find_by_url
from devpictl.settings import (
    DEFAULT_HOST,
    DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_PORT,
    Instance,
    commit_root_password,
    drop_pending_root_password,
    ensure_root_password,
    forget_cache,
    forget_root_password,
    is_loopback,
    load_remembered,
    memory_bytes,
    read_root_password,
    read_secret_file,
    save_remembered,
    write_durably,
)

DEFAULT_PROBE_PROJECT = "pip"
DOWN = "down"  # the state of a cache without a container
SERVER_CONFIG = "/etc/devpi/devpi-server.yml"  # the YAML file the image's devpi-server reads


class Reporter(Protocol):
    def step(self, message: str) -> None: ...
    def log(self, line: str) -> None: ...
    def waiting(self, message: str) -> contextlib.AbstractContextManager[None]: ...
    def transfer(self, message: str) -> contextlib.AbstractContextManager[Callable[[int], None]]: ...


class QuietReporter:
    """A Reporter that shows nothing (for --json and for tests)."""

    def step(self, message: str) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def transfer(self, message: str) -> Iterator[Callable[[int], None]]:
        yield lambda nbytes: None


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
    check: bool = True  # check that a new upstream answers before switching to it
    replica_of: str | None = None  # the primary's URL: run as its replica (replica.py)
    replica_secret: Path | None = None  # the file holding the primary's devpi secret
    timeout: float = 180.0
    environ: Mapping[str, str] = field(default_factory=dict)
    # The build options the user gave (BuildOptions has defaults for the rest):
    # an existing image must match these, see choose_image.
    build_given: frozenset[str] = frozenset()


@dataclass
class UpResult:
    name: str
    index_url: str
    upstream: Upstream
    actions: list[str]
    password_file: Path
    host: str = DEFAULT_HOST  # the address the cache is published on
    offline: bool = False
    core_metadata: bool = False  # whether the mirror's pages announce core metadata (PEP 658)
    port: int | None = None  # the port it is published on
    primary_url: str | None = None  # what a replica follows

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def index_url(base_url: str) -> str:
    return f"{base_url}/{MIRROR_INDEX}/+simple/"


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


def proxy_env_file(environ: Mapping[str, str]) -> bytes:
    lines = [f"{k}={shlex.quote(v)}" for k, v in img.proxy_build_args(dict(environ)).items()]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def running_container(engine, instance: Instance):
    container = ctr.find_container(engine, instance)
    if container is None or container.status != "running":
        state = "no cache" if container is None else f"cache is {container.status}"
        raise CacheNotFound(f"{state} named {instance.name!r}: start it with `devpictl up --name {instance.name}`")
    return container


def with_remembered(opts: UpOptions) -> tuple[UpOptions, UpOptions]:
    """(opts with remembered values filled in, the same with built-in defaults too)."""
    stored = load_remembered(opts.instance)
    given = dataclasses.replace(
        opts,
        host=opts.host or stored.get("host"),
        port=opts.port or stored.get("port"),
        image=opts.image or stored.get("image"),
        network=opts.network or stored.get("network"),
        ca_bundle=opts.ca_bundle or (Path(stored["ca_bundle"]) if stored.get("ca_bundle") else None),
        probe_project=opts.probe_project or stored.get("probe_project"),
        front=opts.front if opts.front is not None else stored.get("front"),
        offline=opts.offline if opts.offline is not None else stored.get("offline"),
        memory=opts.memory or stored.get("memory"),
        pids_limit=opts.pids_limit or stored.get("pids_limit"),
        max_bytes=opts.max_bytes if opts.max_bytes is not None else stored.get("max_bytes"),
        replica_of=opts.replica_of or stored.get("replica_of"),
    )
    full = dataclasses.replace(
        given,
        host=given.host or DEFAULT_HOST,
        port=given.port or DEFAULT_PORT,
        image=given.image or img.default_image(given.build.devpi_server_version),
        probe_project=given.probe_project or DEFAULT_PROBE_PROJECT,
        front=given.front if given.front is not None else True,
        offline=bool(given.offline),
        memory=given.memory or DEFAULT_MEMORY,
        pids_limit=given.pids_limit or DEFAULT_PIDS_LIMIT,
        max_bytes=given.max_bytes or 0,
    )
    return given, full


def up(engine, requested: UpOptions, reporter: Reporter) -> UpResult:
    given, opts = with_remembered(requested)
    instance = opts.instance
    actions: list[str] = []
    if requested.replica_secret is not None:
        replica.read_replica_secret(requested.replica_secret)  # a bad file is refused before anything changes
    # The image runs with or without its front server; one built for `up` has
    # nginx exactly when the cache runs it.
    opts = dataclasses.replace(opts, build=dataclasses.replace(opts.build, front=bool(opts.front)))
    image = choose_image(engine, requested, opts, reporter, actions)
    if given.image is not None or image != opts.image:  # else: no image asked for, keep the container's
        given = dataclasses.replace(given, image=image)
    opts = dataclasses.replace(opts, image=image)
    container = ctr.find_container(engine, instance)
    created: list[Callable[[], None]] = []
    try:
        wanted = opts.upstream
        # An earlier `up` stopped between creating the volume and handing in the password
        # leaves a container that can never start (it restarts for ever) and holds nothing.
        suspect = container is not None and (container.status != "running" or ctr.restart_count(container) > 0)
        if suspect and not ctr.volume_initialised(engine, container.image.id, instance):
            reporter.step(f"Removing the container of cache {instance.name!r}, which an interrupted `up` left unfinished")
            ctr.remove(container)
            actions.append(f"removed the unfinished container {instance.container}")
            container = None
        if container is not None:
            check_unchanged(container, given)
            if given.image is not None and not ctr.runs_image(engine, container, given.image):
                upgrade(engine, container, opts, reporter, actions)
                container = None
        if container is None:
            container, fresh = create(engine, opts, reporter, actions, created)
            if fresh:
                wanted = wanted or OFFICIAL  # a new cache starts on the official index
        elif container.status != "running":
            reporter.step(f"Starting stopped cache {instance.name!r}")
            ctr.start(container)
            actions.append("started the container")
        container.reload()
        base_url = ctr.local_base_url(container)
        with DevpiClient(base_url) as client:
            wait_for_api(client, container, opts.timeout, reporter)
            if opts.replica_of:
                # The primary's upstream and settings arrive by replication; nothing to set here.
                replica.check_primary_answers(container, opts.replica_of)
                replica.wait_until_caught_up(client, container, opts.replica_of, opts.timeout, reporter)
                upstream = find_by_url(client.get_index().get("mirror_url"), official_url(container))
            else:
                settled = login_root(client, instance)
                if settled:
                    actions.append(settled)
                official = official_url(container)
                if wanted is not None and not opts.offline:
                    check_not_itself(container, wanted, official)
                    keep_credentials(container, instance, wanted, official)
                if wanted is not None and (opts.check or opts.offline):
                    current = find_by_url(client.get_index().get("mirror_url"), official)
                    if opts.offline and effective_url(wanted, official) != effective_url(current, official):
                        raise Conflict(offline_switch_message(instance))
                    check_switch(container, current, wanted, official, opts.probe_project, reporter)
                measure = core_metadata_measurement(container, reporter, probe_project=opts.probe_project, check=opts.check, offline=bool(opts.offline))
                upstream = configure_upstream(
                    client, wanted, official, reporter, actions, lambda: flush_front_caches(client, container),
                    instance.unfinished_switch_file, measure,
                )
            # Offline, devpi lists only the files it stored, so the probe project's page
            # may rightly be empty, and the upstream is never asked: an answering API is it.
            if not opts.offline:
                wait_until_ready(client, opts.probe_project, opts.timeout, reporter)
            core_metadata = core_metadata_state(client, container)
    except BaseException as exc:
        if created:
            log = save_failure_log(instance, container) if container is not None else None
            reporter.step("Removing what this run created")
            for undo in reversed(created):
                undo()
            if log is not None and isinstance(exc, DevpictlError):
                exc.args = (f"{exc} (devpi's log is kept in {log})",)
        raise
    host, port = ctr.published_address(container)
    memory, pids = ctr.limits(container)  # what the container has, so a cache made without limits keeps none
    save_remembered(instance, {
        "host": opts.host, "port": port, "image": opts.image,
        "network": opts.network, "ca_bundle": str(opts.ca_bundle) if opts.ca_bundle else None,
        "probe_project": opts.probe_project, "front": opts.front, "offline": opts.offline,
        "memory": f"{memory // 1024**2}m" if memory else None, "pids_limit": pids or None,
        "max_bytes": max_bytes(container), "replica_of": opts.replica_of,
    })
    return UpResult(
        instance.name, index_url(base_url), upstream, actions, instance.password_file, host, bool(opts.offline), core_metadata, port, opts.replica_of
    )


def choose_image(engine, requested: UpOptions, opts: UpOptions, reporter: Reporter, actions: list[str]) -> str:
    """The image `up` runs: one whose contents and recipe match what the user asked for.

    An image named with --image is used as it is, or refused when it lacks what was
    asked. Otherwise build options pick devpictl's tag for that variant (-web,
    -nofront), rebuilt when the engine's image was built another way. Never a
    silent mismatch. A missing image is built later, by ensure_image.
    """
    build = opts.build
    if requested.image:
        tag = requested.image
    elif opts.build_given or not build.front:
        tag = img.variant_image(build)
    else:
        tag = opts.image
    labels = ctr.image_labels(engine, tag)
    if labels is None:
        return tag
    differences = img.recipe_differences(labels, build, opts.build_given)
    if not differences:
        return tag
    if requested.image:
        raise Conflict(
            f"image {tag} has {'; '.join(differences)}: rebuild it with `devpictl build --image {tag}` and those options, or drop --image"
        )
    reporter.step(f"Rebuilding image {tag}: it has {'; '.join(differences)}")
    img.build_image(engine.api, build, tag, dict(opts.environ), reporter.log)
    actions.append(f"rebuilt image {tag} ({'; '.join(differences)})")
    return tag


def ensure_image(engine, opts: UpOptions, reporter: Reporter, actions: list[str]) -> None:
    """Build ``opts.image`` from the template when the engine does not have it."""
    if not ctr.image_exists(engine, opts.image):
        reporter.step(f"Building image {opts.image}")
        img.build_image(engine.api, opts.build, opts.image, dict(opts.environ), reporter.log)
        actions.append(f"built image {opts.image}")


def check_unchanged(container, given: UpOptions) -> None:
    """Refuse flags that would need a new container: those take `down` first."""
    name = given.instance.name
    host, port = ctr.published_address(container)
    if (given.port is not None and port != given.port) or (given.host is not None and host != given.host):
        raise Conflict(
            f"cache {name!r} is published on {host}:{port}: run `devpictl down --name {name}` first to move it, or drop --host/--port"
        )
    if given.front is not None and given.front != front_enabled(container):
        raise Conflict(
            f"cache {name!r} runs {'with' if front_enabled(container) else 'without'} its front server: run `devpictl down --name {name}` first to change that"
        )
    memory, pids = ctr.limits(container)
    if (given.memory is not None and memory_bytes(given.memory) != memory) or (given.pids_limit is not None and given.pids_limit != pids):
        raise Conflict(
            f"cache {name!r} runs with other resource limits: run `devpictl down --name {name}` first to change them"
        )
    if given.max_bytes is not None and given.max_bytes != max_bytes(container):
        raise Conflict(
            f"cache {name!r} runs with another size limit: run `devpictl down --name {name}` first to change it, or `devpictl prune` now"
        )
    if given.replica_of is not None and given.replica_of != replica.primary_of(container):
        primary = replica.primary_of(container)
        raise Conflict(
            f"cache {name!r} is {'a replica of ' + primary if primary else 'a primary'}: run `devpictl down --name {name}` first to change that, or drop --replica-of"
        )
    if given.offline is not None and given.offline != offline_enabled(container):
        raise Conflict(
            f"cache {name!r} runs {'in' if offline_enabled(container) else 'without'} offline mode: run `devpictl down --name {name}` first to change that"
        )


def upgrade(engine, container, opts: UpOptions, reporter: Reporter, actions: list[str]) -> None:
    """Replace the container with one of ``opts.image``, keeping the volume, when devpi can read its data.

    devpi-server refuses a server dir of another database version; then devpictl
    stops here, before touching anything, and says how to move the data.
    """
    ensure_image(engine, opts, reporter, actions)
    name = opts.instance.name
    needed = ctr.run_once(engine, opts.image, ["python", "-c", "from devpi_server.main import DATABASE_VERSION as v; print(v)"])
    have = ctr.run_once(engine, opts.image, ["cat", "/data/server/.serverversion"], volume=opts.instance.volume)
    if needed.split(".")[0] != have.split(".")[0]:
        raise Conflict(
            f"devpi-server in {opts.image} needs database version {needed}, cache {name!r} has {have}: "
            f"nothing was changed; move the data with `devpictl backup --name {name} --include-files` and "
            f"`devpictl restore --name NEW --image {opts.image} ARCHIVE`"
        )
    old_image = ctr.image_label(container)
    reporter.step(f"Upgrading cache {name!r} from {old_image} to {opts.image}; the volume stays")
    ctr.remove(container)
    actions.append(f"replaced the container of {old_image} with {opts.image}")


def create(engine, opts: UpOptions, reporter: Reporter, actions: list[str], created: list[Callable[[], None]]):
    """Create (and start) the container, and the volume if missing; returns (container, a new cache?)."""
    instance = opts.instance
    port = opts.port
    ensure_image(engine, opts, reporter, actions)
    ctr.check_no_cache_on_port(engine, port)
    ctr.check_port_free(opts.host, port)
    if opts.network:
        ctr.check_network(engine, opts.network)
    fresh_volume = ctr.ensure_volume(engine, instance)
    if fresh_volume:
        created.append(lambda: ctr.remove_volume(engine, instance))
        actions.append(f"created volume {instance.volume}")
        needs_init = True
    else:
        needs_init = not ctr.volume_initialised(engine, opts.image, instance)
        if needs_init:
            actions.append(f"set up volume {instance.volume}, which an interrupted `up` left empty")
        elif read_root_password(instance) is None and not opts.replica_of:
            raise LoginRefused(
                f"volume {instance.volume} holds a cache whose root password devpictl does not have: put it in {instance.password_file}, or remove the volume"
            )
    files: dict[str, bytes] = {}
    if opts.replica_of:
        # A replica's users come from the primary; it proves itself with the primary's secret.
        if opts.replica_secret is not None:
            replica.store_replica_secret(instance, replica.read_replica_secret(opts.replica_secret))
        secret = replica.stored_replica_secret(instance)
        if secret is None:
            raise BadInput(
                "a replica needs its primary's secret: write it with `devpictl password --replica-secret FILE` on the primary, then pass --replica-secret FILE"
            )
        files[replica.SECRET_FILE] = secret
    else:
        password, new_password = ensure_root_password(instance)
        if new_password:
            created.append(lambda: forget_root_password(instance))
        # devpi-init needs the password only for a volume it has not set up; the entrypoint deletes
        # it after init, and an initialised volume must not leave it in the container's files.
        if needs_init:
            files["root-password"] = password.encode()
    spec = ctr.ContainerSpec(
        instance, opts.image, opts.host, port, opts.network, front=bool(opts.front), offline=bool(opts.offline),
        memory=memory_bytes(opts.memory), pids_limit=opts.pids_limit, max_bytes=opts.max_bytes or 0, primary_url=opts.replica_of,
    )
    container = ctr.create_container(engine, spec)
    created.append(lambda: ctr.remove(container))
    if opts.ca_bundle is not None:
        files["ca-bundle.pem"] = img.read_ca_bundle(opts.ca_bundle)
    if stored_credentials(instance):
        files[UPSTREAM_AUTH] = instance.upstream_auth_file.read_bytes()
    proxies = proxy_env_file(opts.environ)
    if proxies:
        files["proxy.env"] = proxies
    ctr.hand_in_files(container, files)
    reporter.step(f"Starting cache {instance.name!r} on {opts.host}:{port}")
    ctr.start(container)
    actions.append(f"created container {instance.container}")
    return container, needs_init


def save_failure_log(instance: Instance, container) -> Path | None:
    text = ctr.logs_tail(container, 200)
    if not text:
        return None
    instance.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    instance.failure_log.write_text(text)
    return instance.failure_log


def wait_for_api(client: DevpiClient, container, timeout: float, reporter: Reporter) -> None:
    deadline = time.monotonic() + timeout
    restarts = ctr.restart_count(container)
    with reporter.waiting(f"Waiting for devpi-server to answer (up to {timeout:.0f} s)"):
        while True:
            try:
                client.api()
                return
            except CacheUnreachable:
                pass
            if ctr.failed_since(container, restarts):
                raise ReadinessTimeout(
                    f"devpi-server exited during start-up: {last_line(ctr.logs_tail(container))}; see `devpictl logs`"
                )
            if time.monotonic() > deadline:
                raise ReadinessTimeout(f"devpi-server did not answer within {timeout:.0f} s: see `devpictl logs`")
            time.sleep(0.5)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def login_root(client: DevpiClient, instance: Instance) -> str | None:
    """Log in as root, first settling a password rotation that was interrupted; returns what was settled.

    ``password --rotate`` writes the pending file before it asks devpi to change
    the password, so after any interruption (even SIGKILL) one of the two files
    holds devpi's password: devpi itself says which.
    """
    settled = None
    pending = read_secret_file(instance.pending_password_file)
    if pending is not None:
        try:
            client.login("root", pending)
        except LoginRefused:
            drop_pending_root_password(instance)
            settled = f"dropped {instance.pending_password_file}: devpi never took the password of an interrupted rotation"
        else:
            commit_root_password(instance)
            return f"devpi took the password of an interrupted rotation: moved {instance.pending_password_file} to {instance.password_file}"
    password = read_root_password(instance)
    if password is None:
        raise LoginRefused(
            f"devpictl has no root password for cache {instance.name!r}: put it in {instance.password_file}"
        )
    client.login("root", password)
    return settled


def effective_url(upstream: Upstream, official: str) -> str:
    """The URL devpi fetches from, without credentials."""
    return (upstream.public_url or official).rstrip("/")


# In RUN_DIR: {"URL": "Basic ..."}, read by devpictl's devpi plugin and by the upstream check.
UPSTREAM_AUTH = "upstream-auth.json"


def stored_credentials(instance: Instance) -> dict[str, str]:
    text = read_secret_file(instance.upstream_auth_file)
    try:
        entries = json.loads(text) if text else {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        raise BadInput(f"{instance.upstream_auth_file} is not devpictl's JSON: delete it and give the upstream URL with its credentials again")
    return entries


def check_not_itself(container, upstream: Upstream, official: str) -> None:
    """Refuse the cache as its own upstream: every project it lacks would loop until devpi gives up (502)."""
    parts = urlsplit(effective_url(upstream, official))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    local = host in ("localhost", container.name.lower()) or is_loopback(host)
    published_host, published_port = ctr.published_address(container)
    # From inside the container, loopback reaches the front server and devpi; the
    # published port reaches the cache from anywhere that can see its address.
    inside = local and port in (img.CONTAINER_PORT, img.DEVPI_INTERNAL_PORT)
    outside = port == published_port and (local or host == published_host)
    if inside or outside:
        raise BadInput(
            f"{upstream.display_url} is this cache itself: give the index it should fetch from, e.g. `--mirror pypi`"
        )


def keep_credentials(container, instance: Instance, upstream: Upstream, official: str) -> None:
    """Keep the upstream's user and password out of devpi's readable config: in devpictl's 0600 store and the container's run dir."""
    if upstream.credentials is None:
        return
    user, password = upstream.credentials
    entries = stored_credentials(instance)
    entries[effective_url(upstream, official)] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    data = json.dumps(entries)
    write_durably(instance.upstream_auth_file, data)
    ctr.hand_in_files(container, {UPSTREAM_AUTH: data.encode()})


def official_url(container) -> str:
    """The official index's URL as devpi itself knows it (the mirror_url devpi-init gives root/pypi).

    devpictl names no index host of its own; dropping mirror_url instead makes
    devpi 6.20 fail every fetch (KeyError), so the default is read from devpi.
    """
    code, output = ctr.exec_output(
        container,
        [f"{img.VENV}/bin/python", "-c", "from devpi_server.main import _pypi_ixconfig_default as d; print(d['mirror_url'])"],
    )
    url = last_line(output)
    if code != 0 or not url.startswith(("http://", "https://")):
        raise DevpiError(
            f"cannot read devpi's default upstream from {container.name} ({last_line(output)}): give the official index's URL instead of 'pypi'"
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
) -> Upstream:
    """Point root/pypi at ``wanted`` (None: keep its upstream) and refresh what it cached.

    ``flush`` empties the front server's page cache after any change. The file
    ``unfinished`` exists from just before a switch's PATCH until its pages are
    refreshed, so a run that was stopped in between is finished by the next one,
    even when that one has nothing to PATCH.

    ``core_metadata`` measures whether an upstream URL serves core metadata;
    mirror_provides_core_metadata follows it. Without a verdict (None: nothing
    measured; or the upstream did not answer) the option stays as it is, unless the
    upstream changes, which turns it off. The option goes off before a switch (no
    page may announce a metadata file the new upstream lacks) and on only after the
    cached pages list the new upstream's files.
    """
    ixconfig = client.get_index()
    current = find_by_url(ixconfig.get("mirror_url"), official)
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
        refreshed, missing = refresh_cached_projects(client, reporter)
        # Metadata is announced only once the pages list the new upstream's files.
        if announce:
            client.patch_index([f"{coremetadata.INDEX_OPTION}=true"])
        flush()
    except DevpictlError as exc:
        exc.args = (f"the upstream was switched to {target.name}, but its cached pages were not all refreshed ({exc}); run the same command again to finish",)
        raise
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted after the upstream was switched to {target.name}, before its cached pages were refreshed: run the same command again to finish"
        ) from None
    unfinished.unlink(missing_ok=True)
    if refreshed:
        actions.append(f"refreshed {len(refreshed)} cached project pages from the new upstream")
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        actions.append(f"{len(missing)} cached projects are not on the new upstream: {shown}")
    if announce:
        actions.append(f"announcing core metadata: {check.detail}")
    return target


def core_metadata_measurement(
    container, reporter: Reporter, *, probe_project: str, check: bool, offline: bool
) -> Callable[[str], coremetadata.MetadataCheck] | None:
    """What configure_upstream uses to decide mirror_provides_core_metadata; None: measure nothing."""
    if not serves_core_metadata(container):
        return None  # devpi < 6.20, or an image built before devpictl enabled it: nothing to decide
    if offline:
        # Offline, devpi lists only the files it stored, and reads their metadata out of them.
        return lambda url: coremetadata.MetadataCheck(True, "offline mode lists only stored wheels, whose metadata devpi reads from them")
    if not check:
        return None

    def measure(url: str) -> coremetadata.MetadataCheck:
        with reporter.waiting(f"Checking whether {url} serves core metadata"):
            return measure_core_metadata(container, url, probe_project)

    return measure


def core_metadata_state(client: DevpiClient, container) -> bool:
    """Whether the cache announces core metadata for its mirror now."""
    return serves_core_metadata(container) and bool(client.get_index().get(coremetadata.INDEX_OPTION))


def container_env(container) -> list[str]:
    return container.attrs.get("Config", {}).get("Env") or []


def front_enabled(container) -> bool:
    return "DEVPICTL_FRONT=0" not in container_env(container)


def max_bytes(container) -> int:
    """The size the container keeps its mirrored files under (`up --max-size`); 0 for none."""
    for item in container_env(container):
        if item.startswith("DEVPICTL_MAX_BYTES="):
            value = item.partition("=")[2]
            return int(value) if value.isdigit() else 0
    return 0


def offline_enabled(container) -> bool:
    """Whether the container runs devpi with --offline-mode (made by `up --offline`)."""
    return "DEVPICTL_OFFLINE=1" in container_env(container)


def offline_switch_message(instance: Instance) -> str:
    return (
        f"cache {instance.name!r} runs in offline mode and asks no upstream, so it cannot switch to another: "
        f"run `devpictl down --name {instance.name}` and `devpictl up --name {instance.name} --online` first"
    )


# Addresses that publish the cache on every interface of the machine.
ALL_INTERFACES = ("0.0.0.0", "::", "")


def publishes_to_network(host: str) -> bool:
    """True for any address beyond loopback: every interface, or one that others can reach."""
    return not is_loopback(host)


def network_warning(host: str, port: int | None = None) -> str:
    """The risk of publishing beyond loopback; shown whatever chose the host (flag, environment, remembered)."""
    where = f"{host or '0.0.0.0'}:{port}" if port else (host or "0.0.0.0")
    reach = "every network interface" if host in ALL_INTERFACES else "an address other machines may reach"
    return (
        f"cache published on {where}, {reach}: anyone who can reach it can read the cache "
        "and, with the root password, write to it (upload packages, create users, change the upstream); "
        "to keep it local, run `devpictl down` and `devpictl up --host 127.0.0.1`"
    )


def flush_front_cache(container) -> None:
    """Make the front server's cached pages misses, so a switched upstream shows at once."""
    if not front_enabled(container):
        return
    code, output = ctr.exec_output(container, ["devpictl-flush-cache"])
    if code != 0:
        raise EngineError(f"could not empty the front server's page cache ({last_line(output)}): run `devpictl down` and `devpictl up`")


def flush_front_caches(client: DevpiClient, container) -> None:
    """Make cached pages misses in this cache's front server, then in its replicas' (replica.announce_new_pages)."""
    flush_front_cache(container)
    replica.announce_new_pages(client)


def refresh_cached_projects(client: DevpiClient, reporter: Reporter) -> tuple[list[str], list[str]]:
    """Make pages cached from the old upstream list the new upstream's files now.

    devpi keeps a cached page until mirror_cache_expiry passes; a refresh drops it.
    Files already downloaded stay in the cache. Returns (refreshed, not upstream).
    """
    projects = sorted(client.list_projects())
    refreshed: list[str] = []
    missing: list[str] = []
    with reporter.waiting(f"Refreshing {len(projects)} cached project pages"):
        for project in projects:
            (refreshed if client.refresh_project(project) else missing).append(project)
    return refreshed, missing


def wait_until_ready(client: DevpiClient, project: str, timeout: float, reporter: Reporter) -> list[str]:
    """Wait until the simple page of ``project`` lists files through the cache.

    An answering /+api is not enough: a fresh devpi can fail installs while it
    is still setting up its mirror (docs/devpi-facts.md).
    """
    deadline = time.monotonic() + timeout
    last_problem = "it listed no files"
    with reporter.waiting(f"Waiting until the cache lists files for {project!r} (up to {timeout:.0f} s)"):
        while True:
            try:
                files = client.simple_files(project)
                if files:
                    return files
            except (UpstreamUnreachable, CacheUnreachable) as exc:
                last_problem = str(exc)
            if time.monotonic() > deadline:
                raise ReadinessTimeout(
                    f"the cache did not list files for {project!r} within {timeout:.0f} s ({last_problem}); "
                    "check the upstream and `devpictl logs`, or pick another with --mirror"
                )
            time.sleep(1.0)


# Runs inside the cache container, so the check sees the network, proxy and CA
# bundle that devpi itself will use. The URL arrives in the environment. It prints
# one JSON line: a page's final URL and text, or (DEVPICTL_CHECK_WHAT=digest) a
# file's HTTP status and sha256; or, exit code 1, why nothing answered.
UPSTREAM_CHECK = r"""
import hashlib, json, os, shlex, signal, ssl, sys, urllib.error, urllib.request
run = "/run/devpictl"
if os.path.exists(run + "/proxy.env"):
    for item in shlex.split(open(run + "/proxy.env").read()):
        k, _, v = item.partition("=")
        os.environ[k] = v
ca = run + "/ca-bundle.pem"
ctx = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
url = os.environ["DEVPICTL_CHECK_URL"]
headers = {"Accept": "text/html", "User-Agent": "pip/24.0 devpictl"}
# The upstream's credentials, kept out of the URL (and so out of devpi's config and every message).
try:
    entries = json.load(open(run + "/upstream-auth.json"))
except (OSError, ValueError):
    entries = {}
for prefix, authorization in entries.items():
    if url.startswith(prefix.rstrip("/") + "/"):
        headers["Authorization"] = authorization
req = urllib.request.Request(url, headers=headers)
timeout = float(os.environ.get("DEVPICTL_CHECK_TIMEOUT", "20"))
def give_up(signum, frame):
    raise TimeoutError(f"no answer within {timeout:g} s")
# urlopen's timeout bounds each socket call, not name resolution or a slow trickle.
signal.signal(signal.SIGALRM, give_up)
signal.setitimer(signal.ITIMER_REAL, timeout + 0.5)
digest = os.environ.get("DEVPICTL_CHECK_WHAT") == "digest"
try:
    with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
        body, status, final = resp.read(), resp.status, resp.geturl()
except urllib.error.HTTPError as exc:
    if not digest:
        print(type(exc).__name__ + ": " + str(exc.reason))
        sys.exit(1)
    body, status, final = b"", exc.code, exc.url
except Exception as exc:
    print(type(exc).__name__ + ": " + str(getattr(exc, "reason", exc)))
    sys.exit(1)
if digest:
    print(json.dumps({"status": status, "sha256": hashlib.sha256(body).hexdigest()}))
else:
    print(json.dumps({"url": final, "text": body.decode("utf-8", "replace")}))
"""


@dataclass(frozen=True)
class UpstreamProbe:
    """What the upstream answered, asked from inside the cache, for one project's simple page."""

    answered: bool
    files: list[simplepage.Link]  # the files the page links; none when it did not answer
    problem: str | None  # why it did not answer, else None


def fetch_in_container(container, url: str, timeout: float, *, digest: bool = False) -> tuple[dict | None, str]:
    """Ask ``url`` from inside the cache: (UPSTREAM_CHECK's answer, or None and why not)."""
    environment = {"DEVPICTL_CHECK_URL": url, "DEVPICTL_CHECK_TIMEOUT": str(timeout)}
    if digest:
        environment["DEVPICTL_CHECK_WHAT"] = "digest"
    code, output = ctr.exec_output(container, [f"{img.VENV}/bin/python", "-c", UPSTREAM_CHECK], environment)
    answer = last_line(output)
    if code != 0:
        return None, answer
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, f"unreadable answer from the check: {answer[:120]}"
    return data, ""


def probe_upstream(container, url: str, project: str, timeout: float = 20.0) -> UpstreamProbe:
    answer, problem = fetch_in_container(container, f"{url}/{project}/", timeout)
    if answer is None:
        return UpstreamProbe(False, [], problem)
    return UpstreamProbe(True, simplepage.parse(answer["text"], answer["url"]), None)


def check_upstream(container, url: str, project: str, timeout: float = 20.0) -> None:
    """Refuse an upstream whose simple page for ``project`` lists no files, as seen from the cache."""
    probe = probe_upstream(container, url, project, timeout)
    if not probe.answered:
        raise UpstreamUnreachable(
            f"upstream {url} did not answer a simple page for {project!r} ({probe.problem}): check the URL, or pass --no-check to switch anyway"
        )
    if not probe.files:
        raise UpstreamUnreachable(
            f"upstream {url} lists no files for {project!r}: is it a simple index? pass --probe-project or --no-check"
        )


def check_switch(container, current: Upstream, wanted: Upstream, official: str, project: str, reporter: Reporter) -> None:
    """Before a switch, refuse a ``wanted`` upstream that does not answer; the cache's own upstream needs no check."""
    url = effective_url(wanted, official)
    if url != effective_url(current, official):
        with reporter.waiting(f"Checking that {url} answers"):
            check_upstream(container, url, project)


def measure_core_metadata(container, url: str, project: str, timeout: float = 20.0) -> coremetadata.MetadataCheck:
    """Whether the upstream at ``url`` serves core metadata, as seen from inside the cache.

    The newest wheel of ``project`` stands for all: its ``.metadata`` must answer, and
    match the sha256 the page announces for it where the page gives one.
    """
    probe = probe_upstream(container, url, project, timeout)
    if not probe.answered:
        return coremetadata.MetadataCheck(None, f"not measured: its page for {project!r} did not answer ({probe.problem})")
    wheel = speedtest.newest_wheel(probe.files)
    if wheel is None:
        return coremetadata.MetadataCheck(False, f"its page for {project!r} lists no wheel")
    answer, problem = fetch_in_container(container, wheel + ".metadata", timeout, digest=True)
    name = speedtest.file_name(wheel)
    if answer is None:
        return coremetadata.MetadataCheck(None, f"not measured: {name}.metadata did not answer ({problem})")
    return coremetadata.judge(name, speedtest.announced_metadata(probe.files, wheel), answer["status"], answer["sha256"])


def serves_core_metadata(container) -> bool:
    """Whether the container's devpi-server runs with enable-core-metadata (images devpictl built for devpi >= 6.20)."""
    code, output = ctr.exec_output(container, ["cat", SERVER_CONFIG])
    return code == 0 and f"  {coremetadata.SERVER_OPTION}: true" in output.splitlines()


@dataclass
class SwitchResult:
    name: str
    previous: Upstream
    upstream: Upstream
    actions: list[str]
    core_metadata: bool = False  # whether the mirror's pages announce core metadata now


def set_upstream(engine, instance: Instance, upstream: Upstream, *, check: bool, probe_project: str | None, reporter: Reporter) -> SwitchResult:
    container = running_container(engine, instance)
    replica.refuse_on_replica(container, instance, "set-upstream")
    if offline_enabled(container):
        raise Conflict(offline_switch_message(instance))
    probe_project = probe_project or str(load_remembered(instance).get("probe_project") or DEFAULT_PROBE_PROJECT)
    official = official_url(container)
    check_not_itself(container, upstream, official)
    keep_credentials(container, instance, upstream, official)
    actions: list[str] = []
    measure = core_metadata_measurement(container, reporter, probe_project=probe_project, check=check, offline=False)
    with DevpiClient(ctr.local_base_url(container)) as client:
        settled = login_root(client, instance)
        if settled:
            actions.append(settled)
        previous = find_by_url(client.get_index().get("mirror_url"), official)
        if check:
            check_switch(container, previous, upstream, official, probe_project, reporter)
        configure_upstream(
            client, upstream, official, reporter, actions, lambda: flush_front_caches(client, container), instance.unfinished_switch_file, measure
        )
        core_metadata = core_metadata_state(client, container)
    return SwitchResult(instance.name, previous, upstream, actions, core_metadata)


@dataclass
class Status:
    name: str
    state: str
    health: str
    index_url: str | None
    upstream: str | None
    upstream_name: str | None
    devpi_version: str | None
    cache_bytes: int | None
    image: str | None
    volume: str
    password_file: str
    front_server: bool
    offline: bool = False
    # Whether the upstream answers the probe project's page from inside the cache;
    # None when nobody asked (offline mode, or the cache is not running).
    upstream_reachable: bool | None = None
    upstream_problem: str | None = None
    next_step: str = ""
    # Whether the mirror's pages announce core metadata (PEP 658); None when not running.
    core_metadata: bool | None = None
    core_metadata_note: str | None = None  # why it is off
    # role (primary or replica), the primary a replica follows, how far behind it is (replica.Replication)
    replication: dict | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# status asks the upstream with this deadline, so it stays quick when the upstream is gone.
STATUS_UPSTREAM_TIMEOUT = 4.0


def upstream_reachability(container, url: str | None, project: str, *, offline: bool) -> tuple[bool | None, str | None]:
    """(does the upstream answer?, why not) as `status` reports it; (None, None) when it is not asked."""
    import docker.errors

    if offline or url is None:
        return None, None
    try:
        probe = probe_upstream(container, url, project, STATUS_UPSTREAM_TIMEOUT)
    except docker.errors.APIError as exc:  # e.g. the container stopped meanwhile
        return None, f"could not ask from inside the cache: {exc.explanation or exc}"
    return probe.answered, probe.problem


def remembered_probe_project(instance: Instance) -> str:
    try:
        return str(load_remembered(instance).get("probe_project") or DEFAULT_PROBE_PROJECT)
    except DevpictlError:  # a broken cache.toml must not break status
        return DEFAULT_PROBE_PROJECT


def status(engine, instance: Instance) -> Status:
    container = ctr.find_container(engine, instance)
    if container is None:
        option = "" if instance.name == "default" else f" --name {instance.name}"
        if ctr.volume_exists(engine, instance):
            raise CacheNotFound(f"cache {instance.name!r} is down (its data is kept): bring it back with `devpictl up{option}`")
        raise CacheNotFound(f"no cache named {instance.name!r}: create it with `devpictl up{option}`, or list the caches with `devpictl ls`")
    running = container.status == "running"
    offline = offline_enabled(container)
    url = upstream_url = upstream_name = version = check_url = None
    size = None
    reachable = problem = None
    core_metadata = core_metadata_note = None
    replication = None
    if running:
        url = index_url(ctr.local_base_url(container))
        served = serving(container)
        if served is not None:
            upstream_name, upstream_url = served.upstream.name, served.upstream.display_url
            check_url, version = served.check_url, served.devpi_version
            try:
                core_metadata, core_metadata_note = describe_core_metadata(container, served.ixconfig, version)
            except DevpictlError:
                pass
        replication = replica.replication_state(container)
        if replication.role == replica.REPLICA:
            reachable, problem = None, "a replica fetches through its primary"
        else:
            reachable, problem = upstream_reachability(container, check_url, remembered_probe_project(instance), offline=offline)
        code, out = ctr.exec_output(container, ["du", "-sb", "/data"])
        if code == 0 and out.split():
            size = int(out.split()[0])
    return Status(
        name=instance.name,
        state=container.status,
        health=ctr.health(container),
        index_url=url,
        upstream=upstream_url,
        upstream_name=upstream_name,
        devpi_version=version,
        cache_bytes=size,
        image=ctr.image_label(container),
        volume=instance.volume,
        password_file=str(instance.password_file),
        front_server=front_enabled(container),
        offline=offline,
        upstream_reachable=reachable,
        upstream_problem=problem,
        next_step=next_step(instance.name, container.status, ctr.health(container), has_volume=True),
        core_metadata=core_metadata,
        core_metadata_note=core_metadata_note,
        replication=replication.as_dict() if replication is not None else None,
    )


@dataclass
class Serving:
    """What a running cache's devpi says of itself."""

    upstream: Upstream
    check_url: str  # the upstream's URL, the official index's included
    devpi_version: str | None
    ixconfig: Mapping[str, object]  # root/pypi's settings


def serving(container, timeout: float = 10) -> Serving | None:
    """The upstream and devpi version of a running cache; None when its devpi does not answer."""
    base = ctr.local_base_url(container)
    try:
        with DevpiClient(base, timeout=timeout) as client:
            ixconfig = client.get_index()
            official = official_url(container)
            found = find_by_url(ixconfig.get("mirror_url"), official)
            return Serving(found, effective_url(found, official), devpi_server_version(client.server_status()), ixconfig)
    except DevpictlError:
        return None


def next_step(name: str, state: str, health: str | None, has_volume: bool) -> str:
    """What to do with a cache in ``state`` (a container state, or DOWN when it has no container)."""
    option = "" if name == "default" else f" --name {name}"
    if state == "running" and health in ("healthy", "none", None):
        return f"devpictl pip-config{option} --write points pip at it"
    if state in ("running", "restarting"):
        return f"not healthy: devpictl logs{option} shows why"
    if state != DOWN:
        return f"stopped: devpictl up{option} starts it"
    if has_volume:
        return f"down, data kept: devpictl up{option} brings it back"
    return f"down, data deleted: devpictl up{option} makes it anew"


def describe_core_metadata(container, ixconfig: Mapping[str, object], version: str | None) -> tuple[bool, str | None]:
    """(does the mirror announce core metadata?, why not) as `status` shows it."""
    if not serves_core_metadata(container):
        if version and not coremetadata.supported_by(version):
            return False, f"devpi-server {version} has no core metadata support (6.20 or newer has)"
        return False, "this image's devpi-server runs without enable-core-metadata: rebuild it with this devpictl"
    if not ixconfig.get(coremetadata.INDEX_OPTION):
        return False, "the upstream was not found to serve .metadata files (by the last `devpictl up` or `set-upstream`)"
    return True, None


def devpi_server_version(server_status: Mapping) -> str | None:
    return server_status.get("versioninfo", {}).get("devpi-server")


def down(engine, instance: Instance, *, volumes: bool) -> list[str]:
    actions = []
    volume = volumes and ctr.volume_exists(engine, instance)
    if volume:
        ctr.check_volume_is_ours(engine, instance)  # before anything goes
    container = ctr.find_container(engine, instance)
    if container is not None:
        ctr.remove(container)
        actions.append(f"removed container {instance.container}")
    if not volumes:
        return actions
    if volume:
        ctr.remove_volume(engine, instance)
        actions.append(f"deleted volume {instance.volume}")
    removed = forget_cache(instance)
    if removed:
        actions.append(f"deleted {', '.join(removed)} from {instance.state_dir}")
    return actions
