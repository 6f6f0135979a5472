"""The Docker side of a cache: engine connection, volume, container, files handed in."""

from __future__ import annotations

import datetime
import io
import tarfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpictl import frontlog, layout
from devpictl.errors import BadInput, EngineError, EngineUnavailable, PortInUse
from devpictl.image import add_bytes
from devpictl.settings import LABEL_INSTANCE, LABEL_MANAGED, Instance

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container


def connect():
    """A docker-py client for the engine $DOCKER_HOST (or the local socket) names."""
    import docker
    import docker.errors

    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable.from_exception(exc) from None
    return engine


def instance_names(engine: DockerClient) -> set[str]:
    """The cache names on devpictl's containers and volumes."""
    names = {c.labels[LABEL_INSTANCE] for c in engine.containers.list(all=True, filters={"label": LABEL_INSTANCE})}
    return names | {v.attrs["Labels"][LABEL_INSTANCE] for v in engine.volumes.list(filters={"label": LABEL_INSTANCE})}


def create_offline_helper(engine: DockerClient, image: str, instance: Instance) -> Container:
    """A one-off container of ``image`` with the cache's volume at /data and no network, idle until removed."""
    return engine.containers.create(
        image,
        entrypoint=["sleep", "3600"],
        detach=True,
        labels=instance.labels(),
        volumes={instance.volume: {"bind": layout.DATA_DIR, "mode": "rw"}},
        network_mode="none",
    )


def find_container(engine: DockerClient, instance: Instance):
    import docker.errors

    try:
        container = engine.containers.get(instance.container)
    except docker.errors.NotFound:
        return None
    if container.labels.get(LABEL_MANAGED) != "1" or container.labels.get(LABEL_INSTANCE) != instance.name:
        raise EngineError(
            f"container {instance.container!r} exists but was not made by devpictl: remove or rename it, or pick another --name"
        )
    return container


def image_labels(engine: DockerClient, tag: str) -> dict[str, str] | None:
    """The labels of the image ``tag`` names, or None when the engine has no such image."""
    import docker.errors

    try:
        image = engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(image.labels or {})


def image_exists(engine: DockerClient, tag: str) -> bool:
    return image_labels(engine, tag) is not None


def ensure_volume(engine: DockerClient, instance: Instance) -> bool:
    """Create the cache's data volume if missing; True when this call created it."""
    if volume_exists(engine, instance):
        return False
    engine.volumes.create(instance.volume, labels=instance.labels())
    return True


def image_label(container: Container) -> str:
    """The container's image as people know it: the tag it was created from while that tag still names it, else its first tag, else its short id."""
    image = container.image
    if image is None:  # removed under the container: the name it was created from
        return str(container.attrs.get("Config", {}).get("Image", "unknown"))
    if len(image.tags) > 1:  # one image can carry several tags: the one it was made from, if it is still among them
        created_from = container.attrs.get("Config", {}).get("Image")
        if created_from in image.tags:
            return str(created_from)
    return (image.tags or [image.short_id])[0]


def runs_image(engine: DockerClient, container: Container, tag: str) -> bool:
    """True when ``container`` runs the image ``tag`` names now (False also when ``tag`` is missing)."""
    import docker.errors

    try:
        return container.image is not None and engine.images.get(tag).id == container.image.id
    except docker.errors.ImageNotFound:
        return False


def run_once(engine: DockerClient, image: str, command: list[str], volume: str | None = None) -> str:
    """Run ``command`` in a throwaway container of ``image`` (the volume at /data) and return its output."""
    volumes = {volume: {"bind": layout.DATA_DIR, "mode": "ro"}} if volume else {}
    container = engine.containers.create(image, entrypoint=command, network_mode="none", volumes=volumes, labels={LABEL_MANAGED: "1"})
    try:
        container.start()
        code = container.wait(timeout=120)["StatusCode"]
        output = container.logs(stdout=True, stderr=True).decode(errors="replace").strip()
    finally:
        # v=True: without a named volume, the image's VOLUME /data made an anonymous one.
        container.remove(v=True, force=True)
    if code != 0:
        raise EngineError(f"{' '.join(command[:2])} failed in {image}: {output.splitlines()[-1] if output else code}")
    return output


def volume_exists(engine: DockerClient, instance: Instance) -> bool:
    import docker.errors

    try:
        engine.volumes.get(instance.volume)
    except docker.errors.NotFound:
        return False
    return True


def check_no_cache_on_port(engine: DockerClient, port: int) -> None:
    """Fail, naming it, when another devpictl cache publishes ``port`` (running or not)."""
    for container in engine.containers.list(all=True, filters={"label": LABEL_INSTANCE}):
        if published_address(container)[1] == port:
            name = container.labels[LABEL_INSTANCE]
            option = "" if name == "default" else f" --name {name}"
            raise PortInUse(f"port {port} belongs to devpictl cache {name!r}: pick another with --port, or `devpictl down{option}` first")


def check_volume_is_ours(engine: DockerClient, instance: Instance) -> None:
    """Refuse to delete a volume that has the cache's name but was not made by devpictl."""
    labels = engine.volumes.get(instance.volume).attrs.get("Labels") or {}
    if labels.get(LABEL_MANAGED) != "1" or labels.get(LABEL_INSTANCE) != instance.name:
        raise EngineError(
            f"volume {instance.volume!r} was not made by devpictl, so `down --volumes` leaves it: remove it with `docker volume rm` if you mean to"
        )


def check_network(engine: DockerClient, name: str) -> None:
    import docker.errors

    try:
        engine.networks.get(name)
    except docker.errors.NotFound:
        raise BadInput(f"there is no Docker network {name!r}: create it with `docker network create {name}`, or drop --network") from None


@dataclass(frozen=True)
class ContainerSpec:
    instance: Instance
    image: str
    host: str
    port: int
    network: str | None = None
    front: bool = True
    offline: bool = False  # devpi's --offline-mode: serve only what is cached
    memory: int = 0  # bytes; the engine kills the biggest process beyond it, the restart policy brings it back
    pids_limit: int = 0
    max_bytes: int = 0  # the entrypoint prunes mirrored files beyond it; 0: never
    primary_url: str | None = None  # run as a replica of this devpi (no credentials in it: they travel as a file)
    tls: str | None = None  # HTTPS; plain HTTP on the port is "redirect"-ed or "refuse"-d (devpictl/tls.py)
    read_auth: bool = False  # reading needs a login


def create_container(engine: DockerClient, spec: ContainerSpec):
    import docker.errors
    import docker.types

    try:
        return engine.containers.create(
            spec.image,
            name=spec.instance.container,
            detach=True,
            labels=spec.instance.labels(),
            ports={f"{layout.CONTAINER_PORT}/tcp": (spec.host, spec.port)},
            volumes={spec.instance.volume: {"bind": layout.DATA_DIR, "mode": "rw"}},
            restart_policy={"Name": "unless-stopped"},  # type: ignore[arg-type]  # types-docker lacks this valid policy
            network=spec.network,
            # Switches, not secrets: the entrypoint reads them, `status` shows them.
            environment={
                layout.ENV_FRONT: "1" if spec.front else "0",
                layout.ENV_OFFLINE: "1" if spec.offline else "0",
                layout.ENV_MAX_BYTES: str(spec.max_bytes),
                **({layout.ENV_PRIMARY_URL: spec.primary_url} if spec.primary_url else {}),
                **({layout.ENV_TLS: spec.tls} if spec.tls else {}),
                **({layout.ENV_READ_AUTH: "1"} if spec.read_auth else {}),
            },
            # tini as PID 1: signals reach devpi and zombies are reaped.
            init=True,
            # The front server logs every request: keep the engine's copy bounded.
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "20m", "max-file": "5"}),
            mem_limit=spec.memory,
            memswap_limit=spec.memory,  # no swap on top: the limit is the limit
            pids_limit=spec.pids_limit,
        )
    except docker.errors.NotFound as exc:
        raise EngineError(f"cannot create the cache container: {exc.explanation}; check --network and --image") from None
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create the cache container: {exc.explanation or exc}") from None


def hand_in_files(container: Container, files: Mapping[str, bytes]) -> None:
    """Copy files into the run dir (layout.RUN_DIR) of a created container, where the entrypoint reads them.

    They travel in a tar through the engine's archive API, so they show in no
    `docker inspect`, environment or process list.
    """
    if not files:
        return
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            # The engine extracts as root; 0444 inside a 0700 dir owned by devpi.
            add_bytes(tar, name, data, mode=0o444)
    if not container.put_archive(layout.RUN_DIR, buf.getvalue()):
        raise EngineError(f"could not copy files into {container.name}: check the engine's logs")


def start(container: Container) -> None:
    import docker.errors

    try:
        container.start()
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc)
        if "address already in use" in text or "port is already allocated" in text:
            raise PortInUse(
                f"the engine could not publish the cache's port ({text.split(':')[-1].strip()}): pick another with --port"
            ) from None
        raise EngineError(f"cannot start {container.name}: {text}") from None


def published_address(container: Container) -> tuple[str, int]:
    bindings = container.attrs["HostConfig"]["PortBindings"].get(f"{layout.CONTAINER_PORT}/tcp") or [{}]
    host = bindings[0].get("HostIp") or "0.0.0.0"
    return host, int(bindings[0].get("HostPort") or layout.CONTAINER_PORT)


def local_base_url(container: Container) -> str:
    host, port = published_address(container)
    # 127.0.0.1 reaches a cache published on all interfaces; "localhost" may resolve to ::1 first.
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if switch(container, layout.ENV_TLS) else 'http'}://{host}:{port}"


def limits(container: Container) -> tuple[int, int]:
    """(memory in bytes, pids) the container runs with; 0 for no limit."""
    host = container.attrs.get("HostConfig", {})
    return int(host.get("Memory") or 0), int(host.get("PidsLimit") or 0)


def health(container: Container) -> str:
    return container.attrs.get("State", {}).get("Health", {}).get("Status", "none")


def is_health_check(line: str) -> bool:
    """A log line of the health check's request: the front server's (frontlog.health_check_line), or devpi's bare GET /+api."""
    return frontlog.health_check_line(line) or line.rstrip().endswith("] GET /+api")


def log_lines(
    container, *, tail: int | str = "all", follow: bool = False, health_checks: bool = False, since: datetime.datetime | None = None
) -> Iterator[str]:
    """The container's log (devpi's and the front server's), line by line; ``follow`` waits for more."""
    window = {"tail": tail, **({"since": since} if since is not None else {})}
    chunks = container.logs(stream=True, follow=True, **window) if follow else [container.logs(**window)]
    pending = ""
    for chunk in chunks:
        pending += chunk.decode(errors="replace")
        *complete, pending = pending.split("\n")
        for line in complete:
            if health_checks or not is_health_check(line):
                yield line + "\n"
    if pending and (health_checks or not is_health_check(pending)):
        yield pending


def logs_tail(container: Container, lines: int = 40) -> str:
    import docker.errors

    try:
        return container.logs(tail=lines).decode(errors="replace")
    except docker.errors.APIError:
        return ""


def restart_count(container: Container) -> int:
    return int(container.attrs.get("RestartCount") or 0)


def failed_since(container: Container, restarts: int) -> bool:
    """True when the container stopped, or its restart policy restarted it, since it had ``restarts`` restarts."""
    container.reload()
    return container.status in ("exited", "dead", "restarting") or restart_count(container) > restarts


def volume_initialised(engine: DockerClient, image: str, instance: Instance) -> bool:
    """Whether the cache's volume holds a server dir devpi-init finished (an interrupted `up` may leave it empty)."""
    answer = run_once(engine, image, ["sh", "-c", f"test -e {layout.SERVER_DIR}/.nodeinfo && echo yes || echo no"], volume=instance.volume)
    return answer.splitlines()[-1:] == ["yes"]


def remove(container: Container, timeout: int = 20) -> None:
    import docker.errors

    try:
        container.stop(timeout=timeout)
    except docker.errors.APIError:
        pass
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def remove_volume(engine: DockerClient, instance: Instance) -> None:
    import docker.errors

    for attempt in range(10):
        try:
            engine.volumes.get(instance.volume).remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            # The engine may still hold the volume for a container being removed.
            if attempt == 9:
                raise
            time.sleep(0.5)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def switch(container: Container, name: str) -> str | None:
    """The value of the environment switch ``name`` (layout.ENV_*) the container runs with; None when unset."""
    for item in container.attrs.get("Config", {}).get("Env") or []:
        key, _, value = item.partition("=")
        if key == name:
            return value
    return None


def front_enabled(container: Container) -> bool:
    return switch(container, layout.ENV_FRONT) != "0"


def max_bytes(container: Container) -> int:
    """The size the container keeps its mirrored files under (`up --max-size`); 0 for none."""
    value = switch(container, layout.ENV_MAX_BYTES) or ""
    return int(value) if value.isdigit() else 0


def offline_enabled(container: Container) -> bool:
    """Whether the container runs devpi with --offline-mode (made by `up --offline`)."""
    return switch(container, layout.ENV_OFFLINE) == "1"
