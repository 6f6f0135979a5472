"""The fakes unit tests put in through devpictl's seams: a Docker engine that records what is asked of it
(``container.connect`` returns it); a ``FakeCache`` for each of its containers (``Cache.of`` hands it out,
see conftest.py), whose container runs nothing; and a devpi-server (``DevpiClient`` takes its httpx
``MockTransport``); with the pages, containers and options tests build from them.
"""

from __future__ import annotations

import base64
import json
import sys
import types
from types import SimpleNamespace

import docker.errors
import httpx

from devpictl import image as img
from devpictl import layout, precedence
from devpictl.cache import Cache, ExecResult
from devpictl.devpi import DevpiClient
from devpictl.mirrors import CATALOG, Upstream
from devpictl.replica import PAGES_GENERATION
from devpictl.settings import Instance

# Engine calls that create, change or remove something; and what a FakeCache records of the same kind
# (run_python only when no answer was set up for the script: a run nobody expected).
MUTATING = {"create", "run", "start", "stop", "kill", "restart", "remove", "put_archive", "build", "exec_run"}
MUTATING |= {"run_python", "flush_front", "install_failover", "remove_failover", "devpi_export", "remove_path"}


class FakeContainer:
    """A cache container as devpictl reads it (labels, port, env) that records every call."""

    def __init__(
        self,
        engine: FakeEngine,
        name: str = "default",
        *,
        port: int = 3141,
        host: str = "127.0.0.1",
        status: str = "running",
        env: tuple[str, ...] = ("DEVPICTL_FRONT=1", "DEVPICTL_OFFLINE=0"),
        exec_answers=None,
    ):
        self.engine = engine
        self.name = f"devpictl-{name}"
        self.status = status
        self.labels = {"devpictl.managed": "1", "devpictl.instance": name}
        self.attrs = {
            "HostConfig": {"PortBindings": {"3141/tcp": [{"HostIp": host, "HostPort": str(port)}]}},
            "Config": {"Env": list(env)},
            "State": {"Health": {"Status": "healthy"}},
        }
        self.image = SimpleNamespace(tags=["devpictl/devpi-server:6.20.3"], short_id="sha256:1234", id="sha256:1234")
        # exec_answers(cmd, environment) -> (exit code, output bytes); None: every exec fails. Only the
        # Cache's own tests and restore's helper container run commands: the commands use a FakeCache.
        self.exec_answers = exec_answers
        self.execs: list[tuple[list[str], dict]] = []
        self._cache: FakeCache | None = None

    @property
    def cache(self) -> FakeCache:
        """The FakeCache devpictl gets for this container (made on first use, from the container as it is then)."""
        if self._cache is None:
            self._cache = FakeCache(self)
        return self._cache

    def _record(self, what: str) -> None:
        self.engine.calls.append(f"container.{what}")

    def reload(self) -> None:
        pass

    def start(self) -> None:
        self._record("start")

    def stop(self, **kwargs) -> None:
        self._record("stop")

    def kill(self, **kwargs) -> None:
        self._record("kill")

    def remove(self, **kwargs) -> None:
        self._record("remove")

    def restart(self, **kwargs) -> None:
        self._record("restart")

    def put_archive(self, path, data) -> bool:
        self._record("put_archive")
        return True

    def logs(self, **kwargs) -> bytes:
        return b""

    def exec_run(self, cmd, environment=None, demux=False, user=""):
        self.execs.append((list(cmd), dict(environment or {})))
        if self.exec_answers is None:
            self._record("exec_run")
            return SimpleNamespace(exit_code=1, output=b"exec not expected in this test\n")
        code, output = self.exec_answers(list(cmd), dict(environment or {}))
        return SimpleNamespace(exit_code=code, output=output)


def exec_answering(code: int, output: bytes) -> FakeContainer:
    """A running cache container whose every exec ends with ``code`` and prints ``output`` (the Cache's own tests)."""
    return FakeEngine().add("default", exec_answers=lambda cmd, env: (code, output))


Answer = tuple[int, str] | ExecResult


class FakeCache(Cache):
    """A Cache whose container runs nothing: what it holds and answers are plain attributes tests set.

    Its facts (address, switches, status) are the real Cache's reading of its FakeContainer.
    """

    def __init__(self, container: FakeContainer, *, timeout: float = 30.0) -> None:
        super().__init__(container, timeout=timeout)
        self.files: dict[str, str] = {}  # path: text, what read_text (and so chain.json, devpi-server.yml) finds
        self.reads: list[str] = []  # the paths read_text was asked for, in order
        self.sizes: dict[str, int] = {}  # path: bytes, what disk_usage counts; others: None
        self.usages: dict[str, dict[str, int]] = {}  # shell pattern: {path: bytes}, what disk_usages counts
        self.official: str | Exception = OFFICIAL_URL  # official_url() answers (or raises) it
        self.scripts: dict[str, object] = {}  # template name: (code, output), or f(args, env) -> that; others fail
        self.ran: list[tuple[str, list[str], dict[str, str]]] = []  # (script, args, environment) run_python ran
        self.handed: dict[str, bytes] = {}  # files handed into the run dir (read_text finds them there too)
        self.flushes = 0  # times the front server's page cache was emptied
        self.failover_supported_answer = True
        self.install_answer: Answer = (0, "")  # install_failover's result
        self.installed: list[tuple[str, str]] = []  # (server block, chain.json) install_failover got
        self.failover_removals = 0
        self.export_error: Exception | None = None  # devpi_export raises it
        self.exported: list[tuple[str, bool]] = []  # (workdir, include_files)
        self.version: str | None = "6.20.3"  # devpi-server --version
        self.removed_paths: list[str] = []
        self.unreachable: Exception | None = None  # every run in the container raises it (a container that stopped meanwhile)

    def exec(self, cmd, environment=None, user=""):
        raise AssertionError(f"a FakeCache runs no shell ({cmd[0]}): give the Cache a typed operation and the fake an attribute")

    def _reach(self) -> None:
        if self.unreachable is not None:
            raise self.unreachable

    def _record(self, what: str) -> None:
        """What changes something in the container lands in the engine's calls (FakeEngine.mutations)."""
        self.container.engine.calls.append(f"cache.{what}")

    def read_text(self, path: str) -> str | None:
        self._reach()
        self.reads.append(path)
        return self.files.get(path)

    def remove_path(self, path: str) -> None:
        self._record("remove_path")
        self.removed_paths.append(path)

    def disk_usage(self, path: str) -> int | None:
        self._reach()
        return self.sizes.get(path)

    def disk_usages(self, pattern: str) -> dict[str, int]:
        self._reach()
        return dict(self.usages.get(pattern, {}))

    def run_python(self, script, args=(), environment=None) -> ExecResult:
        self._reach()
        self.ran.append((script, list(args), dict(environment or {})))
        if script not in self.scripts:
            self._record("run_python")
        answer = self.scripts.get(script, (1, f"no script {script} in this fake\n"))
        if callable(answer):
            answer = answer(list(args), dict(environment or {}))
        return answer if isinstance(answer, ExecResult) else ExecResult(*answer)

    def official_url(self) -> str:
        if isinstance(self.official, Exception):
            raise self.official
        return self.official

    def hand_in_files(self, files) -> None:
        self.handed.update(files)
        self.files.update({f"{layout.RUN_DIR}/{name}": data.decode(errors="replace") for name, data in files.items()})
        super().hand_in_files(files)  # through the engine's archive API, as the real one

    def flush_front(self) -> None:
        self._record("flush_front")
        self.flushes += 1

    def failover_supported(self) -> bool:
        return self.failover_supported_answer

    def install_failover(self, conf, document, digest, marker_url) -> ExecResult:
        self._record("install_failover")
        self.installed.append((conf, document))
        answer = self.install_answer
        result = answer if isinstance(answer, ExecResult) else ExecResult(*answer)
        if result.ok:
            self.files[layout.FAILOVER_DIR + "/chain.json"] = document
        return result

    def remove_failover(self) -> None:
        self._record("remove_failover")
        self.failover_removals += 1
        self.files.pop(layout.FAILOVER_DIR + "/chain.json", None)

    def devpi_export(self, workdir: str, *, include_files: bool) -> None:
        self._record("devpi_export")
        self.exported.append((workdir, include_files))
        if self.export_error is not None:
            raise self.export_error

    def devpi_server_version(self) -> str | None:
        return self.version


def fake_cache_of(container, *, timeout: float = 30.0) -> FakeCache:
    """Cache.of in unit tests: the FakeCache of the (fake) container, its facts read anew as each command does."""
    cache = container.cache
    cache.timeout = timeout
    cache._read_facts()
    cache._client = cache._serves_core_metadata = None  # what an earlier command opened or learned
    return cache


class FakeEngine:
    """The parts of docker-py's client devpictl uses; ``calls`` lists every create, start and remove."""

    def __init__(self, *, images: tuple[str, ...] = (), volumes: tuple[str, ...] = (), networks: tuple[str, ...] = ()):
        self.calls: list[str] = []
        self.by_name: dict[str, FakeContainer] = {}
        self.image_tags = set(images)
        self.image_labels: dict[str, dict[str, str]] = {}  # labels of an image in image_tags; default none
        self.volume_names = set(volumes)
        self.foreign_volumes: set[str] = set()  # named like a cache's, but without devpictl's labels
        self.network_names = set(networks)
        self.volume_sizes: dict[str, int] = {}  # what df() reports for a volume; others: not counted
        self.containers = SimpleNamespace(
            get=self._get_container,
            create=self._mutation("containers.create"),
            run=self._mutation("containers.run"),
            list=lambda **kw: list(self.by_name.values()),
        )
        self.volumes = SimpleNamespace(get=self._get_volume, create=self._mutation("volumes.create"), list=self._list_volumes)
        self.images = SimpleNamespace(get=self._get_image, remove=self._mutation("images.remove"))
        self.networks = SimpleNamespace(get=self._get_network)
        self.api = SimpleNamespace(build=self._mutation("api.build"))

    def add(self, name: str = "default", **kwargs) -> FakeContainer:
        container = FakeContainer(self, name, **kwargs)
        self.by_name[container.name] = container
        self.volume_names.add(f"devpictl-{name}-data")
        return container

    def mutations(self) -> list[str]:
        return [call for call in self.calls if call.rsplit(".", 1)[-1] in MUTATING]

    def _mutation(self, what: str):
        def record(*args, **kwargs):
            self.calls.append(what)
            raise AssertionError(f"this test must not reach {what}")

        return record

    def _get_container(self, name):
        try:
            return self.by_name[name]
        except KeyError:
            raise docker.errors.NotFound(f"No such container: {name}") from None

    def _get_volume(self, name):
        if name not in self.volume_names:
            raise docker.errors.NotFound(f"No such volume: {name}")
        instance = name.removeprefix("devpictl-").removesuffix("-data")
        labels = {} if name in self.foreign_volumes else {"devpictl.managed": "1", "devpictl.instance": instance}
        return SimpleNamespace(name=name, attrs={"Labels": labels}, remove=self._mutation("volume.remove"))

    def _volume_labels(self, name: str) -> dict[str, str]:
        """devpictl's labels for its volumes (devpictl-NAME-data); none for any other."""
        if name.startswith("devpictl-") and name.endswith("-data"):
            return {"devpictl.managed": "1", "devpictl.instance": name[len("devpictl-") : -len("-data")]}
        return {}

    def _list_volumes(self, filters=None):
        wanted = (filters or {}).get("label")
        return [
            SimpleNamespace(name=name, attrs={"Name": name, "Labels": self._volume_labels(name)})
            for name in sorted(self.volume_names)
            if wanted is None or wanted in self._volume_labels(name)
        ]

    def df(self) -> dict:
        return {
            "Volumes": [
                {"Name": name, "Labels": self._volume_labels(name), "UsageData": {"Size": self.volume_sizes.get(name, -1)}}
                for name in sorted(self.volume_names)
            ]
        }

    def _get_image(self, tag):
        if tag not in self.image_tags:
            raise docker.errors.ImageNotFound(f"No such image: {tag}")
        return SimpleNamespace(id="sha256:1234", tags=[tag], labels=self.image_labels.get(tag, {}))

    def _get_network(self, name):
        if name not in self.network_names:
            raise docker.errors.NotFound(f"No such network: {name}")
        return SimpleNamespace(name=name)


# What the fake devpi answers with, and what tests compare against.
OFFICIAL_URL = "https://official.index.example/simple"  # devpi's default upstream, as official_url() reads it
ROOT_PASSWORD = "root-pw-for-tests"
TUNA = CATALOG["tuna"]
FILES_PAGE = '<html><body><a href="../../+f/1/2/pip-24.0-py3-none-any.whl#sha256=00">pip-24.0-py3-none-any.whl</a><br/></body></html>'
EMPTY_PAGE = "<html><body><h1>root/pypi: links for pip</h1></body></html>"


class FakeDevpi:
    """A tiny stateful devpi-server: login, root's password, root/pypi's ixconfig, its cached projects, refresh, expiry, pages.

    POST /+login takes root with ``password`` and hands out a token; PATCH /root (the password),
    PATCH /root/pypi and refreshes need one. ``version`` set: GET /+status answers with it.
    """

    def __init__(
        self, ixconfig: dict | None = None, projects: tuple[str, ...] = (), *, password: str = ROOT_PASSWORD, version: str | None = None
    ):
        # devpi-init's root/pypi: the official index, with a trailing slash.
        self.ixconfig = {"type": "mirror", "volatile": False, "mirror_url": OFFICIAL_URL + "/", "title": "PyPI"}
        self.ixconfig.update(ixconfig or {})
        self.projects = list(projects)
        self.password = password
        self.version = version
        self.tokens: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.simple_pages: list[httpx.Response] = []  # answers to the next simple-page GETs, in order
        self.not_upstream: set[str] = set()  # projects the new upstream lacks: their refresh fails
        self.expire_route = True  # devpictl's plugin answers POST /root/pypi/+devpictl/expire-pages (False: an older image)
        self.expired: list[str] = []  # the projects whose pages it marked stale
        self.stored: set[str] = set()  # projects with stored files: their marked pages are kept as the fallback
        self.keeps_pages = True  # False: an image whose plugin forgot the pages (it answers no "kept")
        self.page_counts: dict | None = None  # what GET /root/pypi/+devpictl/pages answers (None: 404, an older image)
        self.refuse_expire: httpx.Response | None = None  # answer the expiry with this instead
        self.refuse_patch: httpx.Response | None = None  # answer PATCH /root with this instead
        self.drop_patch = False  # PATCH /root: apply, then drop the connection
        self.lose_patch = False  # PATCH /root: drop the connection before devpi applies it
        self.down_after_patch = False  # with drop_patch: nothing answers afterwards

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> DevpiClient:
        return DevpiClient("http://127.0.0.1:3141", transport=self.transport())

    def serve(self, monkeypatch) -> None:
        """Every DevpiClient a Cache opens talks to this devpi."""
        from devpictl import cache

        monkeypatch.setattr(cache, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=self.transport()))

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def patches(self) -> list[list[str]]:
        """The bodies of the PATCHes of root/pypi's settings, in order, without the announcements to replicas (announcements(), shared_policies())."""
        return [
            json.loads(r.content)
            for r in self.requests
            if (r.method, r.url.path) == ("PATCH", "/root/pypi") and not self.announces(r) and not self.shares_policy(r)
        ]

    def shared_policies(self) -> list[dict]:
        """The page policies root/pypi's setting was given for the replicas (policy.share), in order."""
        return [
            json.loads(json.loads(r.content)[0].partition("=")[2])
            for r in self.requests
            if (r.method, r.url.path) == ("PATCH", "/root/pypi") and self.shares_policy(r)
        ]

    @staticmethod
    def shares_policy(request: httpx.Request) -> bool:
        from devpictl.policy import SETTING

        return json.loads(request.content)[0].startswith(SETTING + "=")

    def announcements(self) -> list[int]:
        """Where, among all requests, the pages generation replicas watch was set (replica.announce_new_pages)."""
        return [i for i, r in enumerate(self.requests) if r.method == "PATCH" and self.announces(r)]

    @staticmethod
    def announces(request: httpx.Request) -> bool:
        return json.loads(request.content)[0].startswith(PAGES_GENERATION + "=")

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        if self.down_after_patch and any((r.method, r.url.path) == ("PATCH", "/root") for r in self.requests[:-1]):
            raise httpx.ConnectError("connection refused", request=request)
        if (method, path) == ("POST", "/+login"):
            if json.loads(request.content) != {"user": "root", "password": self.password}:
                return httpx.Response(401, json={"type": "error", "message": "could not authenticate"})
            return httpx.Response(200, json={"type": "proxyauth", "result": {"password": self.new_token(), "expiration": 36000}})
        if (method, path) == ("GET", "/+status") and self.version is not None:
            return httpx.Response(200, json={"result": {"versioninfo": {"devpi-server": self.version}}})
        if (method, path) == ("PATCH", "/root"):
            return self.change_password(request)
        if (method, path) == ("GET", "/root/pypi"):
            result = dict(self.ixconfig)
            if "no_projects" not in request.url.params:
                result["projects"] = list(self.projects)
            return httpx.Response(200, json={"type": "indexconfig", "result": result})
        if (method, path) == ("PATCH", "/root/pypi"):
            if not self.authorised(request):
                return httpx.Response(403, json={"type": "error", "message": "forbidden"})
            for item in json.loads(request.content):
                key, _, value = item.partition("=")
                self.ixconfig[key] = {"true": True, "false": False}.get(value, value)
            return httpx.Response(200, json={"type": "indexconfig", "result": self.ixconfig})
        if method == "POST" and path.startswith("/root/pypi/+simple/") and path.endswith("/refresh"):
            if not self.authorised(request):
                return httpx.Response(403, json={"type": "error", "message": "forbidden"})
            if path.split("/")[4] in self.not_upstream:
                # devpi 6.20 answers 500 when the upstream has no such project.
                return httpx.Response(500, text="<html>Internal Server Error</html>")
            return httpx.Response(302, headers={"location": path.removesuffix("refresh")})
        if (method, path) == ("POST", "/root/pypi/+devpictl/expire-pages") and self.expire_route:
            if not self.authorised(request):
                return httpx.Response(403, json={"type": "error", "message": "forbidden"})
            if self.refuse_expire is not None:
                return self.refuse_expire
            self.expired.extend(self.projects)
            result = {"expired": len(self.projects)}
            if self.keeps_pages:
                result["kept"] = len(self.stored & set(self.projects))
            return httpx.Response(200, json={"type": "expired-pages", "result": result})
        if (method, path) == ("GET", "/root/pypi/+devpictl/pages") and self.page_counts is not None:
            return httpx.Response(200, json={"type": "pages", "result": self.page_counts})
        if method == "GET" and path.startswith("/root/pypi/+simple/"):
            if self.simple_pages:
                return self.simple_pages.pop(0)
            return httpx.Response(200, text=EMPTY_PAGE)
        return httpx.Response(404, json={"type": "error", "message": f"no {path}"})

    def change_password(self, request: httpx.Request) -> httpx.Response:
        """PATCH /root: root only, logged in; the failure knobs cut it where a test says."""
        if not self.authorised(request):
            return httpx.Response(403, json={"type": "error", "message": "no permission to change password for user root"})
        if self.refuse_patch is not None:
            return self.refuse_patch
        if self.lose_patch:
            raise httpx.ReadError("connection reset", request=request)
        self.password = json.loads(request.content)["password"]
        if self.drop_patch:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(
            200,
            json={
                "type": "userpassword",
                "message": "user updated, new proxy auth",
                "result": {"password": self.new_token(), "expiration": 36000},
            },
        )

    def new_token(self) -> str:
        token = f"token-{len(self.requests)}"
        self.tokens.add(token)
        return token

    def authorised(self, request: httpx.Request) -> bool:
        """Whether the request carries a token this devpi handed to root."""
        header = request.headers.get("x-devpi-auth")
        if not header:
            return False
        user, _, token = base64.b64decode(header).decode().partition(":")
        return user == "root" and token in self.tokens


def configured(upstream: Upstream) -> dict:
    """An ixconfig that already has everything devpictl sets for ``upstream``."""
    return {
        "mirror_url": upstream.url or OFFICIAL_URL + "/",
        "mirror_ignore_serial_header": not upstream.sends_serial_header,
        "mirror_no_project_list": True,
    }


def page_answer(url: str, text: str) -> str:
    """What the upstream check in the container (templates/upstream_check.py) prints for a page."""
    return json.dumps({"url": url, "text": text}) + "\n"


def checked_cache(engine: FakeEngine, *, check: tuple[int, str], offline: bool = False, status: str = "running") -> FakeCache:
    """A cache whose upstream check (templates/upstream_check.py) answers ``check``; its data is 123456 bytes."""
    cache = engine.add("default", status=status, env=("DEVPICTL_FRONT=1", f"DEVPICTL_OFFLINE={int(offline)}")).cache
    cache.scripts["upstream_check.py"] = check
    cache.sizes[layout.DATA_DIR] = 123456
    return cache


def up_options(**kwargs) -> precedence.CacheSettings:
    """What `up` is asked for cache 'default' when nothing but ``kwargs`` is given."""
    return precedence.ask(Instance("default"), **kwargs)


def backup_archive(path, *, dataindex: object = None, extra: tuple = (), cut: int | None = None):
    """A gzipped backup archive like `devpictl backup` writes, plus ``extra`` members (TarInfo, bytes | None).

    ``dataindex`` replaces devpi-export's dataindex.json; ``cut`` keeps only that many bytes (a truncated archive).
    """
    import io
    import tarfile

    from devpictl import backup as bkp

    if dataindex is None:
        dataindex = {"dumpversion": "2", "pythonversion": [3, 11], "devpi_server": "6.20.3", "users": {"root": {}}, "indexes": {}}
    members = [
        (bkp.MANIFEST, json.dumps({"format": bkp.FORMAT, "cache": "other", "created": "2026-01-01T00:00:00"}).encode()),
        (f"{bkp.EXPORT_DIR}/dataindex.json", json.dumps(dataindex).encode()),
        (f"{bkp.EXPORT_DIR}/root/dev/six-1.16.0-py2.py3-none-any.whl", b"wheel bytes " * 100),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        directory = tarfile.TarInfo(bkp.EXPORT_DIR)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4755 if name.endswith(".whl") else 0o644  # a setuid bit the restore must drop
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    path.write_bytes(raw[:cut] if cut is not None else raw)
    return path


class CreatingEngine(FakeEngine):
    """An engine on which `up` can create a cache: volumes and containers come into being and are recorded.

    ``handed`` keeps the files handed into each container, ``created`` the keyword arguments it was made with.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.handed: dict[str, dict[str, bytes]] = {}
        self.created: dict[str, dict] = {}
        self.containers.create = self._create_container
        self.volumes.create = self._create_volume

    def _create_volume(self, name, **kwargs):
        self.calls.append("volumes.create")
        self.volume_names.add(name)

    def _create_container(self, image, name=None, **kwargs):
        self.calls.append("containers.create")
        host, port = kwargs["ports"]["3141/tcp"]
        container = FakeContainer(
            self, name.removeprefix("devpictl-"), host=host, port=port, env=tuple(f"{k}={v}" for k, v in kwargs["environment"].items())
        )
        container.attrs["HostConfig"].update(Memory=kwargs.get("mem_limit"), PidsLimit=kwargs.get("pids_limit"))
        engine = self

        def put_archive(path, data):
            import io
            import tarfile

            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                engine.handed.setdefault(container.name, {}).update({m.name: tar.extractfile(m).read() for m in tar})
            return True

        def remove(**kw):
            engine.calls.append("container.remove")
            engine.by_name.pop(container.name, None)

        container.put_archive = put_archive
        container.remove = remove
        self.by_name[container.name] = container
        self.created[container.name] = kwargs
        return container

    def _get_volume(self, name):
        volume = super()._get_volume(name)
        volume.remove = lambda: (self.calls.append("volume.remove"), self.volume_names.discard(name))
        return volume


# The front server's log lines (and one of devpi's) for a known sequence of requests: stats and metrics count them.
T = "2026-11-25T10:{:02d}:00+00:00"
LOG = "\n".join(
    [
        "2026-11-25 10:00:00,000 INFO  [req0] GET /root/pypi/+simple/six/",  # devpi's own line: not counted
        f'{T.format(0)} front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=MISS disk=- 0.2 s "pip/24.0"',
        f'{T.format(1)} front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=HIT disk=- 0.0 s "pip/24.0"',
        f'{T.format(2)} front 172.17.0.1 "GET /root/pypi/%2Bf/ab/cd/six-1.16.0-py2.py3-none-any.whl HTTP/1.1" 200 11000 cache=MISS disk=- 0.5 s "pip/24.0"',
        f'{T.format(3)} front 172.17.0.1 "GET /root/pypi/+f/ab/cd/six-1.16.0-py2.py3-none-any.whl HTTP/1.1" 200 11000 cache=- disk=disk 0.0 s "uv/0.9"',
        f'{T.format(4)} front 172.17.0.1 "GET /root/pypi/+f/ab/cd/Django-5.0-py3-none-any.whl.metadata HTTP/1.1" 200 900 cache=HIT disk=- 0.0 s "uv/0.9"',
        f'{T.format(5)} front 127.0.0.1 "GET /+api HTTP/1.1" 200 300 cache=- disk=- 0.0 s "devpictl-healthcheck"',
        f'{T.format(6)} front 172.17.0.1 "GET /root/pypi/+simple/nosuch/ HTTP/1.1" 404 50 cache=MISS disk=- 0.1 s "pip/24.0"',
    ]
)
# Lines of a cache with a page policy (held=, X-Devpictl-Held-Back), after one line of an older image without it.
POLICY_LOG = "\n".join(
    [
        f'{T.format(10)} front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=MISS disk=- 0.2 s "pip/24.0"',
        f'{T.format(11)} front 172.17.0.1 "GET /root/pypi/+simple/dpctl-aged/ HTTP/1.1" 200 700 cache=MISS disk=- held=2 0.1 s "uv/0.9"',
        f'{T.format(12)} front 172.17.0.1 "GET /root/pypi/+simple/dpctl-aged/ HTTP/1.1" 200 700 cache=HIT disk=- held=2 0.0 s "pip/24.0"',
        f'{T.format(13)} front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=HIT disk=- held=- 0.0 s "pip/24.0"',
        f'{T.format(14)} front 172.17.0.1 "GET /+devpictl/denied/dpctl-evil/dpctl_evil-1.0-py3-none-any.whl HTTP/1.1" 403 90 cache=- disk=- held=- 0.0 s "pip/24.0"',
        f'{T.format(15)} front 172.17.0.1 "GET /root/pypi/+f/ab/cd/six-1.16.0-py2.py3-none-any.whl HTTP/1.1" 200 11000 cache=- disk=disk held=- 0.0 s "uv/0.9"',
    ]
)


def rendered_module(template: str, name: str) -> types.ModuleType:
    """A Python file of templates/, rendered as the image build renders it, loaded as module ``name``."""
    module = types.ModuleType(name)
    module.__file__ = template
    exec(compile(img.render_template(template), template, "exec"), module.__dict__)
    return module


def devpi_pages():
    """The plugin's page policy part (templates/devpictl_pages.py), loaded anew, as the plugin imports it."""
    from devpictl import page_policy

    sys.modules.setdefault("page_policy", page_policy)  # the image puts it beside the plugin
    sys.modules["devpictl_pages"] = module = rendered_module("devpictl_pages.py", "devpictl_pages")
    return module


def devpi_plugin():
    """devpictl's devpi plugin (templates/devpictl_mirror_auth.py), loaded as devpi loads it."""
    devpi_pages()
    return rendered_module("devpictl_mirror_auth.py", "devpictl_mirror_auth")
