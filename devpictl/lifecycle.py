"""A cache's life: `up` (build if needed, create or upgrade, start, log in, set the upstream, wait) and `down`."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl import devpi, failover, layout, network, page_policy, policy, precedence, replica, switching, tls
from devpictl import image as img
from devpictl.cache import Cache
from devpictl.certificates import ServerCertificate
from devpictl.errors import BadInput, Conflict, DevpictlError, LoginRefused
from devpictl.mirrors import OFFICIAL, Upstream, find_by_url
from devpictl.network import DEFAULT_HOST
from devpictl.readiness import wait_for_api, wait_until_ready
from devpictl.reporter import Reporter
from devpictl.settings import Instance, ensure_root_password, forget_cache, forget_root_password, memory_bytes, read_root_password

if TYPE_CHECKING:
    from docker import DockerClient


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
    fallbacks: tuple[Upstream, ...] = ()  # asked in order when ``upstream`` fails (docs/failover.md)

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "index_url": self.index_url,
            "upstream": self.upstream.public_dict(),
            "fallbacks": [f.public_dict() for f in self.fallbacks],
            "changed": self.changed,
            "actions": self.actions,
            "password_file": str(self.password_file),
            "offline": self.offline,
            "core_metadata": self.core_metadata,
            "primary_url": self.primary_url,
        }


@dataclass
class DownResult:
    """What `down` did to one cache."""

    name: str
    actions: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "actions": self.actions}


def proxy_env_file(environ: Mapping[str, str]) -> bytes:
    lines = [f"{k}={shlex.quote(v)}" for k, v in img.proxy_build_args(dict(environ)).items()]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def up(engine: DockerClient, requested: precedence.CacheSettings, reporter: Reporter) -> UpResult:
    started = datetime.now(UTC)  # a TLS failure devpi logged before this `up` is not this one's
    opts = precedence.decide(requested)
    instance = opts.instance
    if opts.replica_secret is not None:
        replica.read_replica_secret(opts.replica_secret)  # a bad file is refused before anything changes
    if opts.replica_of and opts.read_auth:
        replica.check_login(instance)
    certificate = tls.prepare(opts)  # a bad certificate too; a self-signed one near its end is made anew
    # The image runs with or without its front server; one built for `up` has
    # nginx exactly when the cache runs it.
    opts = dataclasses.replace(opts, build=dataclasses.replace(opts.build, front=opts.front))
    image, actions = choose_image(engine, opts, reporter)
    if image != opts.image:  # else: unless one was given, keep the container's
        opts = dataclasses.replace(opts, image=image, given=opts.given | {"image"})
    cache = Cache.find(engine, instance)
    created: list[Callable[[], None]] = []
    try:
        wanted = opts.upstream
        # An earlier `up` stopped between creating the volume and handing in the password
        # leaves a container that can never start (it restarts for ever) and holds nothing.
        suspect = cache is not None and (cache.status != "running" or cache.restart_count > 0)
        if cache is not None and suspect and not ctr.volume_initialised(engine, cache.image_id or cache.image_label, instance):
            reporter.step(f"Removing the container of cache {instance.name!r}, which an interrupted `up` left unfinished")
            cache.remove()
            actions.append(f"removed the unfinished container {instance.container}")
            cache = None
        if cache is not None:
            check_unchanged(cache, opts)
            if "image" in opts.given and not cache.runs_image(engine, opts.image):
                actions += upgrade(engine, cache, opts, reporter)
                cache = None
        if cache is None:
            cache, fresh, made = create(engine, opts, reporter, created, certificate)
            actions += made
            if fresh:
                wanted = wanted or OFFICIAL  # a new cache starts on the official index
        elif certificate is not None:
            actions += tls.renew_certificate(cache, opts, certificate, reporter)
        elif cache.status != "running":
            reporter.step(f"Starting stopped cache {instance.name!r}")
            cache.start()
            actions.append("started the container")
        cache.refresh()
        with cache:
            switched = start_serving(cache, opts, wanted, reporter, started)
    except BaseException as exc:
        if created:
            log = save_failure_log(instance, cache) if cache is not None else None
            reporter.step("Removing what this run created")
            for undo in reversed(created):
                undo()
            if log is not None and isinstance(exc, DevpictlError):
                exc.args = (f"{exc} (devpi's log is kept in {log})",)
        raise
    memory = cache.memory  # what the container has, so a cache made without limits keeps none
    precedence.remember(
        opts,
        port=cache.port,
        memory=f"{memory // 1024**2}m" if memory else None,
        pids_limit=cache.pids_limit or None,
        max_bytes=cache.max_bytes,
        fallback=[failover.spec(f) for f in switched.fallbacks],
    )
    return UpResult(
        instance.name,
        devpi.index_url(cache.local_base_url),
        switched.upstream,
        actions + switched.actions,
        instance.password_file,
        cache.host,
        opts.offline,
        switched.core_metadata,
        cache.port,
        primary_url=opts.replica_of,
        fallbacks=switched.fallbacks,
    )


def start_serving(
    cache: Cache, opts: precedence.CacheSettings, wanted: Upstream | None, reporter: Reporter, started: datetime
) -> switching.SwitchResult:
    """Wait for devpi, switch its upstream (a replica: catch up with the primary instead), wait until it serves files."""
    wait_for_api(cache, opts.timeout, reporter)
    if opts.replica_of:
        # The primary's upstream and settings arrive by replication; nothing to set here.
        replica.check_primary_answers(cache, opts.replica_of)
        replica.wait_until_caught_up(cache, opts.replica_of, opts.timeout, reporter)
        upstream = find_by_url(cache.client.get_index().get("mirror_url"), cache.official_url())
        switched = switching.SwitchResult(opts.instance.name, upstream, upstream, [], switching.core_metadata_state(cache))
    else:
        switched = switching.switch(cache, opts.switch_options(), wanted, reporter)
    # Offline, devpi lists only the files it stored, so the probe project's page
    # may rightly be empty, and the upstream is never asked: an answering API is it.
    if not opts.offline:
        wait_until_ready(cache.client, opts.probe_project, opts.timeout, reporter, cache, started)
    rules = opts.page_policy()
    if policy.install(cache, rules):
        switched.actions.append(f"page policy: {page_policy.describe(rules)}")
    return switched


def choose_image(engine: DockerClient, opts: precedence.CacheSettings, reporter: Reporter) -> tuple[str, list[str]]:
    """The image `up` runs, and what was done to have it: one whose contents and recipe match what the user asked for.

    An image named with --image is used as it is, or refused when it lacks what was
    asked. Otherwise build options pick devpictl's tag for that variant (-web,
    -nofront), rebuilt when the engine's image was built another way. Never a
    silent mismatch. A missing image is built later, by ensure_image.
    """
    build = opts.build
    asked = "image" in opts.asked
    if asked:
        tag = opts.image
    elif opts.build_given or not build.front:
        tag = img.variant_image(build)
    else:
        tag = opts.image
    labels = ctr.image_labels(engine, tag)
    if labels is None:
        return tag, []
    differences = img.recipe_differences(labels, build, opts.build_given)
    if not differences:
        return tag, []
    if asked:
        raise Conflict(
            f"image {tag} has {'; '.join(differences)}: rebuild it with `devpictl build --image {tag}` and those options, or drop --image"
        )
    reporter.step(f"Rebuilding image {tag}: it has {'; '.join(differences)}")
    img.build_image(engine.api, build, tag, dict(opts.environ), reporter.log)
    return tag, [f"rebuilt image {tag} ({'; '.join(differences)})"]


def ensure_image(engine: DockerClient, opts: precedence.CacheSettings, reporter: Reporter) -> list[str]:
    """Build ``opts.image`` from the template when the engine does not have it; what was done."""
    if ctr.image_exists(engine, opts.image):
        return []
    reporter.step(f"Building image {opts.image}")
    img.build_image(engine.api, opts.build, opts.image, dict(opts.environ), reporter.log)
    return [f"built image {opts.image}"]


def check_unchanged(cache: Cache, opts: precedence.CacheSettings) -> None:
    """Refuse settings given or remembered that would need a new container: those take `down` first."""
    name, given = opts.instance.name, opts.given
    host, port = cache.host, cache.port
    if ("port" in given and port != opts.port) or ("host" in given and host != opts.host):
        raise Conflict(
            f"cache {name!r} is published on {host}:{port}: run `devpictl down --name {name}` first to move it, or drop --host/--port"
        )
    if "front" in given and opts.front != cache.front:
        raise Conflict(
            f"cache {name!r} runs {'with' if cache.front else 'without'} its front server: run `devpictl down --name {name}` first to change that"
        )
    memory, pids = cache.memory, cache.pids_limit
    if ("memory" in given and memory_bytes(opts.memory) != memory) or ("pids_limit" in given and opts.pids_limit != pids):
        raise Conflict(f"cache {name!r} runs with other resource limits: run `devpictl down --name {name}` first to change them")
    if "max_bytes" in given and opts.max_bytes != cache.max_bytes:
        raise Conflict(
            f"cache {name!r} runs with another size limit: run `devpictl down --name {name}` first to change it, or `devpictl prune` now"
        )
    if "replica_of" in given and opts.replica_of != cache.primary_url:
        primary = cache.primary_url
        raise Conflict(
            f"cache {name!r} is {'a replica of ' + primary if primary else 'a primary'}: run `devpictl down --name {name}` first to change that, or drop --replica-of"
        )
    if ({"tls", "http"} & given and tls.wanted_switch(opts) != cache.tls) or ("read_auth" in given and opts.read_auth != cache.read_auth):
        raise Conflict(
            f"cache {name!r} runs with other HTTPS or --read-auth settings: run `devpictl down --name {name}` first to change them (the volume stays)"
        )
    if "offline" in given and opts.offline != cache.offline:
        raise Conflict(
            f"cache {name!r} runs {'in' if cache.offline else 'without'} offline mode: run `devpictl down --name {name}` first to change that"
        )


def upgrade(engine: DockerClient, cache: Cache, opts: precedence.CacheSettings, reporter: Reporter) -> list[str]:
    """Replace the container with one of ``opts.image``, keeping the volume, when devpi can read its data; what was done.

    devpi-server refuses a server dir of another database version; then devpictl
    stops here, before touching anything, and says how to move the data.
    """
    actions = ensure_image(engine, opts, reporter)
    name = opts.instance.name
    needed = ctr.run_once(engine, opts.image, ["python", "-c", "from devpi_server.main import DATABASE_VERSION as v; print(v)"])
    have = ctr.run_once(engine, opts.image, ["cat", f"{layout.SERVER_DIR}/.serverversion"], volume=opts.instance.volume)
    if needed.split(".")[0] != have.split(".")[0]:
        raise Conflict(
            f"devpi-server in {opts.image} needs database version {needed}, cache {name!r} has {have}: "
            f"nothing was changed; move the data with `devpictl backup --name {name} --include-files` and "
            f"`devpictl restore --name NEW --image {opts.image} ARCHIVE`"
        )
    old_image = cache.image_label
    reporter.step(f"Upgrading cache {name!r} from {old_image} to {opts.image}; the volume stays")
    cache.remove()
    return [*actions, f"replaced the container of {old_image} with {opts.image}"]


def create(
    engine: DockerClient,
    opts: precedence.CacheSettings,
    reporter: Reporter,
    created: list[Callable[[], None]],
    certificate: ServerCertificate | None = None,
) -> tuple[Cache, bool, list[str]]:
    """Create (and start) the container, and the volume if missing: (its Cache, a new cache?, what was done).

    ``created`` gets how to undo each thing made, at once, so a failure later in `up` removes it.
    """
    instance = opts.instance
    port = opts.port
    actions = ensure_image(engine, opts, reporter)
    certificate = tls.for_new_container(engine, opts, certificate)
    ctr.check_no_cache_on_port(engine, port)
    network.check_port_free(opts.host, port)
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
        files[layout.REPLICA_SECRET] = secret
    else:
        root_password, new_password = ensure_root_password(instance)
        if new_password:
            created.append(lambda: forget_root_password(instance))
        # devpi-init needs the password only for a volume it has not set up; the entrypoint deletes
        # it after init, and an initialised volume must not leave it in the container's files.
        if needs_init:
            files[layout.ROOT_PASSWORD] = root_password.encode()
    spec = ctr.ContainerSpec(
        instance,
        opts.image,
        opts.host,
        port,
        opts.network,
        front=opts.front,
        offline=opts.offline,
        memory=memory_bytes(opts.memory),
        pids_limit=opts.pids_limit,
        max_bytes=opts.max_bytes,
        primary_url=opts.replica_of,
        tls=tls.wanted_switch(opts),
        read_auth=opts.read_auth,
    )
    container = ctr.create_container(engine, spec)
    created.append(lambda: ctr.remove(container))
    if opts.ca_bundle is not None:
        files[layout.CA_BUNDLE] = img.read_ca_bundle(opts.ca_bundle)
    if switching.stored_credentials(instance):
        files[layout.UPSTREAM_AUTH] = instance.upstream_auth_file.read_bytes()
    proxies = proxy_env_file(opts.environ)
    if proxies:
        files[layout.PROXY_ENV] = proxies
    if certificate is not None:
        files.update(tls.files_to_hand_in(certificate))
        tls.keep_served(instance, certificate, self_signed=opts.tls == tls.SELF_SIGNED)
    ctr.hand_in_files(container, files)
    reporter.step(f"Starting cache {instance.name!r} on {opts.host}:{port}")
    ctr.start(container)
    actions.append(f"created container {instance.container}")
    container.reload()
    return Cache.of(container), needs_init, actions


def save_failure_log(instance: Instance, cache: Cache) -> Path | None:
    text = cache.logs_tail(200)
    if not text:
        return None
    instance.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    instance.failure_log.write_text(text)
    return instance.failure_log


def down(engine: DockerClient, instance: Instance, *, volumes: bool) -> list[str]:
    actions = []
    volume = volumes and ctr.volume_exists(engine, instance)
    if volume:
        ctr.check_volume_is_ours(engine, instance)  # before anything goes
    cache = Cache.find(engine, instance)
    if cache is not None:
        cache.remove()
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
