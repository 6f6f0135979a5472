"""One cache's container for one command: its facts, read once; the one `docker exec`; its devpi client.

A ``Cache`` is what the commands hold instead of a docker-py container. Its facts
(address, switches, limits, health) are read from the container when it is made;
what it learns by asking the container (the official index's URL, whether devpi
serves core metadata) is asked once and remembered for the command's life. Every
command that runs something inside a cache's container does it through ``exec``
here, so an engine failure becomes a devpictl error in one place.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpictl import container as ctr
from devpictl import coremetadata, layout, tls
from devpictl import image as img
from devpictl.devpi import DevpiClient
from devpictl.errors import CacheNotFound, DevpiError, EngineError, ExecFailed
from devpictl.settings import LABEL_INSTANCE, Instance, read_root_password

if TYPE_CHECKING:
    import ssl

    import httpx
    from docker import DockerClient
    from docker.models.containers import Container


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container ended with: its exit code and its output (stdout and stderr, as text)."""

    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def last_line(self) -> str:
        return ctr.last_line(self.output)


def exec_in(container: Container, cmd: list[str], environment: Mapping[str, str] | None = None, user: str = "") -> ExecResult:
    """Run ``cmd`` in ``container``; the engine failing to run it (a container gone, a stopped one) is ExecFailed."""
    import docker.errors

    try:
        result = container.exec_run(cmd, environment=dict(environment or {}), demux=False, user=user)
    except docker.errors.APIError as exc:
        reason = str(exc.explanation or exc)
        raise ExecFailed(f"cannot run {cmd[0]} in {container.name}: {reason}; see `devpictl status`", reason) from None
    output = result.output if isinstance(result.output, bytes) else b""  # not streamed: bytes, or None
    return ExecResult(-1 if result.exit_code is None else result.exit_code, output.decode(errors="replace"))


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

SERVER_CONF = f"{layout.FAILOVER_DIR}/server.conf"
CHAIN_FILE = f"{layout.FAILOVER_DIR}/chain.json"
REFUSED = 65  # the install script's exit code when nginx refuses the new server block
OFFICIAL_URL_SCRIPT = "from devpi_server.main import _pypi_ixconfig_default as d; print(d['mirror_url'])"


class Cache:
    """One cache's container during one command; a context manager that closes its devpi client."""

    def __init__(self, container: Container, *, timeout: float = 30.0) -> None:
        self.container = container
        self.timeout = timeout  # of the devpi client's requests
        self._client: DevpiClient | None = None
        self._official_url: str | None = None
        self._serves_core_metadata: bool | None = None
        self._read_facts()

    def _read_facts(self) -> None:
        container = self.container
        self.name: str = container.name or ""
        self.instance = Instance(container.labels.get(LABEL_INSTANCE, self.name.removeprefix("devpictl-")))
        self.status: str = container.status
        self.host, self.port = ctr.published_address(container)
        self.local_base_url = ctr.local_base_url(container)
        self._image: tuple[str, str | None] | None = None  # asked of the engine when first wanted
        self.front = ctr.front_enabled(container)
        self.offline = ctr.offline_enabled(container)
        self.max_bytes = ctr.max_bytes(container)
        self.primary_url = ctr.switch(container, layout.ENV_PRIMARY_URL) or None
        # HTTPS (devpictl/tls.py): what plain HTTP on its port gets (redirect, refuse); None: plain HTTP.
        self.tls: str | None = ctr.switch(container, layout.ENV_TLS) or None
        self.read_auth = ctr.switch(container, layout.ENV_READ_AUTH) == "1"  # reading needs a login
        self.memory, self.pids_limit = ctr.limits(container)
        self.health = ctr.health(container)
        self.restart_count = ctr.restart_count(container)

    @property
    def image_label(self) -> str:
        """The container's image as people know it (container.image_label)."""
        return self._image_facts()[0]

    @property
    def image_id(self) -> str | None:
        return self._image_facts()[1]

    def _image_facts(self) -> tuple[str, str | None]:
        if self._image is None:  # one more engine request: only the commands that show or compare the image make it
            image = self.container.image
            self._image = (ctr.image_label(self.container), image.id if image is not None else None)
        return self._image

    # -- where a Cache comes from ---------------------------------------------------------------

    @staticmethod
    def of(container: Container, *, timeout: float = 30.0) -> Cache:
        """The handle of ``container``: every Cache is made here (the unit tests' seam)."""
        return Cache(container, timeout=timeout)

    @classmethod
    def find(cls, engine: DockerClient, instance: Instance, *, timeout: float = 30.0) -> Cache | None:
        """The cache ``instance`` names, running or not; None when it has no container."""
        container = ctr.find_container(engine, instance)
        return None if container is None else cls.of(container, timeout=timeout)

    @classmethod
    def running(cls, engine: DockerClient, instance: Instance, *, timeout: float = 30.0) -> Cache:
        """The running cache ``instance`` names; CacheNotFound, saying how to start it, otherwise."""
        cache = cls.find(engine, instance, timeout=timeout)
        if cache is None or cache.status != "running":
            state = "no cache" if cache is None else f"cache is {cache.status}"
            raise CacheNotFound(f"{state} named {instance.name!r}: start it with `devpictl up --name {instance.name}`")
        return cache

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> DevpiClient:
        """The devpi client for this cache's published address, opened on first use.

        Over HTTPS it trusts exactly the certificate devpictl handed the cache; on a
        --read-auth cache it is logged in as root, since it could read nothing otherwise.
        """
        if self._client is None:
            client = self.open_client()
            if self.read_auth:
                from devpictl.password import login_root

                try:
                    login_root(client, self.instance)
                except BaseException:
                    client.close()
                    raise
            self._client = client
        return self._client

    def open_client(self) -> DevpiClient:
        """A new client, trusting the cache as ``client`` does but logged in as nobody; the caller closes it.

        What waits for devpi's API to answer uses it: no login can work before.
        """
        return DevpiClient(self.local_base_url, timeout=self.timeout, verify=self.verify())

    def verify(self) -> ssl.SSLContext | bool:
        """How a client trusts the cache: the pinned certificate over HTTPS (tls.local_context), else as usual."""
        return tls.local_context(self.instance) if self.tls else True

    def read_login(self) -> tuple[str, str] | None:
        """(user, password) that reads a --read-auth cache (root's, as ``client`` logs in); None when reading needs none."""
        password = read_root_password(self.instance) if self.read_auth else None
        return ("root", password) if password else None

    def http_access(self) -> tuple[ssl.SSLContext | bool, httpx.Auth | None]:
        """(how to trust, the login) for an httpx client of the cache's pages and files: `warm`'s."""
        import httpx

        login = self.read_login()
        return self.verify(), (httpx.BasicAuth(*login) if login else None)

    # -- the container's life -------------------------------------------------------------------

    def start(self) -> None:
        ctr.start(self.container)
        self.refresh()

    def restart(self) -> None:
        """Stop and start the container (its entrypoint runs again: what a new certificate needs)."""
        import docker.errors

        try:
            self.container.restart(timeout=20)
        except docker.errors.APIError as exc:
            raise EngineError(f"could not restart {self.name} ({exc.explanation or exc}): see `devpictl status`") from None
        self.refresh()

    def refresh(self) -> None:
        """Read the facts again (after a start: the state, and a port the engine picked)."""
        self.container.reload()
        self._read_facts()

    def remove(self) -> None:
        ctr.remove(self.container)

    def runs_image(self, engine: DockerClient, tag: str) -> bool:
        """True when the container runs the image ``tag`` names now (False also when ``tag`` is missing)."""
        return ctr.runs_image(engine, self.container, tag)

    def failed_since(self, restarts: int) -> bool:
        """True when the container stopped, or its restart policy restarted it, since it had ``restarts`` restarts."""
        return ctr.failed_since(self.container, restarts)

    def hand_in_files(self, files: Mapping[str, bytes]) -> None:
        ctr.hand_in_files(self.container, files)

    def log_lines(self, **kwargs) -> Iterator[str]:
        return ctr.log_lines(self.container, **kwargs)

    def logs_tail(self, lines: int = 40) -> str:
        return ctr.logs_tail(self.container, lines)

    def log_since(self, since: datetime.datetime | None) -> str:
        """The last lines of the container's log, those since ``since`` where given."""
        import docker.errors

        try:
            return self.container.logs(tail=100, since=since).decode(errors="replace")
        except docker.errors.APIError:
            return ""

    def get_archive(self, path: str) -> Iterator[bytes]:
        """The tar stream of ``path`` in the container."""
        chunks, _stat = self.container.get_archive(path)
        return iter(chunks)

    # -- running things inside ------------------------------------------------------------------

    def exec(self, cmd: list[str], environment: Mapping[str, str] | None = None, user: str = "") -> ExecResult:
        return exec_in(self.container, cmd, environment, user)

    def run_python(self, script: str, args: tuple[str, ...] = (), environment: Mapping[str, str] | None = None) -> ExecResult:
        """Run the template ``script`` (templates/, rendered) with the image's Python."""
        return self.exec([layout.PYTHON, "-c", img.render_template(script), *args], environment)

    def read_text(self, path: str) -> str | None:
        """The text of the file ``path`` in the container; None when it cannot be read."""
        result = self.exec(["cat", path])
        return result.output if result.ok else None

    def remove_path(self, path: str) -> None:
        self.exec(["rm", "-rf", path])

    def disk_usage(self, path: str) -> int | None:
        """Bytes under ``path``, as du counts them; None when du could not."""
        result = self.exec(["du", "-sb", path])
        words = result.output.split()
        return int(words[0]) if result.ok and words and words[0].isdigit() else None

    def disk_usages(self, pattern: str) -> dict[str, int]:
        """{path: bytes} of each path the shell pattern ``pattern`` matches; empty when none does."""
        result = self.exec(["sh", "-c", f"du -sb {pattern} 2>/dev/null || true"])
        sizes = {}
        for line in result.output.splitlines():
            size, _, path = line.partition("\t")
            if size.isdigit() and path:
                sizes[path] = int(size)
        return sizes

    def devpi_server_version(self) -> str | None:
        """The version `devpi-server --version` prints; None when it fails."""
        result = self.exec(["devpi-server", "--version"])
        return result.last_line if result.ok else None

    def devpi_export(self, workdir: str, *, include_files: bool) -> None:
        command = ["devpi-export", "--serverdir", layout.SERVER_DIR, *(["--include-mirrored-files"] if include_files else []), workdir]
        result = self.exec(command)
        if not result.ok:
            raise DevpiError(f"devpi-export failed ({result.last_line}): see `devpictl logs`")

    # -- what it learned ------------------------------------------------------------------------

    def official_url(self) -> str:
        """The official index's URL as devpi itself knows it (the mirror_url devpi-init gives root/pypi).

        devpictl names no index host of its own; dropping mirror_url instead makes
        devpi 6.20 fail every fetch (KeyError), so the default is read from devpi, once.
        """
        if self._official_url is None:
            result = self.exec([layout.PYTHON, "-c", OFFICIAL_URL_SCRIPT])
            url = result.last_line
            if not result.ok or not url.startswith(("http://", "https://")):
                raise DevpiError(
                    f"cannot read devpi's default upstream from {self.name} ({url}): give the official index's URL instead of 'pypi'"
                )
            self._official_url = url.rstrip("/")
        return self._official_url

    def serves_core_metadata(self) -> bool:
        """Whether the container's devpi-server runs with enable-core-metadata (images devpictl built for devpi >= 6.20)."""
        if self._serves_core_metadata is None:
            config = self.read_text(layout.SERVER_CONFIG)
            self._serves_core_metadata = config is not None and f"  {coremetadata.SERVER_OPTION}: true" in config.splitlines()
        return self._serves_core_metadata

    # -- the front server -----------------------------------------------------------------------

    def flush_front(self) -> None:
        """Make the front server's cached pages misses (templates/flush-cache.sh)."""
        result = self.exec([layout.FLUSH_CACHE])
        if not result.ok:
            raise EngineError(f"could not empty the front server's page cache ({result.last_line}): run `devpictl down` and `devpictl up`")

    def failover_supported(self) -> bool:
        """Whether the front server includes the volume's failover server (images of this devpictl)."""
        result = self.exec(["grep", "-c", f"include {layout.FAILOVER_DIR}/", layout.NGINX_CONF])
        return result.ok and result.output.strip() not in ("", "0")

    def failover_chain(self) -> str | None:
        """The text of the volume's chain.json; None without one."""
        return self.read_text(CHAIN_FILE)

    def install_failover(self, conf: str, document: str, digest: str, marker_url: str) -> ExecResult:
        """Write the failover server block ``conf`` and ``document`` (chain.json) into the volume and make nginx load it.

        nginx checks the new server block in a copy of its configuration first: one it
        refuses (exit code REFUSED) changes nothing.
        """
        nginx = f"nginx -e stderr -c {layout.NGINX_CONF}"
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
        return self.exec(
            ["sh", "-c", script],
            {
                "DEVPICTL_CONF": conf,
                "DEVPICTL_CHAIN": document,
                "DEVPICTL_WAIT": WAIT_FOR_RELOAD,
                "DEVPICTL_DIGEST": digest,
                "DEVPICTL_MARKER_URL": marker_url,
            },
        )

    def remove_failover(self) -> None:
        """Drop the failover server from the volume and make nginx forget it."""
        self.exec(["sh", "-c", f"rm -rf {layout.FAILOVER_DIR} && nginx -e stderr -c {layout.NGINX_CONF} -s reload"])


class Helper:
    """A one-off container of an image with a cache's volume and no network (what `restore` imports in)."""

    def __init__(self, engine: DockerClient, image: str, instance: Instance) -> None:
        self.container = ctr.create_offline_helper(engine, image, instance)

    def start(self) -> None:
        self.container.start()

    def run(self, command: list[str], what: str, user: str = "") -> None:
        """Run ``command``; a DevpiError naming ``what`` when it fails."""
        result = exec_in(self.container, command, user=user)
        if not result.ok:
            raise DevpiError(f"{what} failed in the restore container ({result.last_line})")

    def put_archive(self, path: str, data) -> bool:
        return bool(self.container.put_archive(path, data))

    def hand_in_files(self, files: Mapping[str, bytes]) -> None:
        ctr.hand_in_files(self.container, files)

    def remove(self) -> None:
        self.container.remove(force=True)
