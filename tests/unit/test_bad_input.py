"""Bad input, one table: each case gets one `error:` line, a non-zero exit, no traceback, and changes nothing.

"Nothing" is checked byte for byte: devpictl's config dir, its data dir (root password,
remembered settings) and the home directory (pip's files) are snapshotted before and
after, and the fake engine records any create, start, exec or remove.
"""

from __future__ import annotations

import os
import socket
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl.cli import app
from devpictl.errors import EngineUnavailable
from devpictl.image import DEFAULT_IMAGE
from devpictl.precedence import save_remembered
from devpictl.settings import Instance, config_file, ensure_root_password, save_config
from tests.unit.fakes import FakeEngine, backup_archive

runner = CliRunner()
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
HAVE_BACKUP = "backup" in {c.name for c in app.registered_commands}


@dataclass
class World:
    """What a case may set up before it runs: paths, a busy port, the engine."""

    tmp: Path
    engine: FakeEngine
    env: dict[str, str] = field(default_factory=dict)
    busy: socket.socket | None = None

    def busy_port(self) -> str:
        self.busy = socket.socket()
        self.busy.bind(("127.0.0.1", 0))
        self.busy.listen()
        return str(self.busy.getsockname()[1])


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file and directory under ``roots``: kind, mode and bytes."""
    seen: dict[str, tuple] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                st = path.lstat()
                try:
                    content = path.read_bytes() if path.is_file() else None
                except PermissionError:
                    content = "unreadable"
                seen[str(path)] = (oct(st.st_mode), content)
    return seen


def corrupt_archive(world: World) -> str:
    path = world.tmp / "corrupt.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00 not really gzip, cut short")
    return str(path)


def valid_archive(world: World) -> str:
    """A well-formed backup archive (manifest + export data), for the restore-into-non-empty case."""
    return str(backup_archive(world.tmp / "backup.tar.gz"))


def link_member(kind: bytes, name: str, target: str) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def hostile_archive(**kwargs) -> Callable[[World], str]:
    """An archive that must be refused whole, before the engine is asked anything."""

    def make(world: World) -> str:
        return str(backup_archive(world.tmp / "hostile.tar.gz", **kwargs))

    return make


def regular_member(name: str) -> tuple:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info, b"data"


def truncated_archive(world: World) -> str:
    whole = backup_archive(world.tmp / "whole.tar.gz").read_bytes()
    return str(backup_archive(world.tmp / "truncated.tar.gz", cut=len(whole) // 2))


def cache_with_data(world: World, monkeypatch) -> None:
    """The running cache 'default' holds a user index besides root/pypi."""
    import httpx

    from devpictl import cache as cache_module
    from devpictl.devpi import DevpiClient

    def handle(request):
        if request.url.path == "/":
            return httpx.Response(200, json={"result": {"root": {"indexes": {"pypi": {}, "dev": {}}}}})
        return httpx.Response(200, json={"result": {"projects": ["six"]}})

    monkeypatch.setattr(cache_module, "DevpiClient", lambda url, **kw: DevpiClient(url, transport=httpx.MockTransport(handle)))


def engine_down(world: World, monkeypatch) -> None:
    def connect():
        raise EngineUnavailable("cannot reach the Docker engine (test): start Docker, or set DOCKER_HOST to a running engine")

    monkeypatch.setattr(ctr, "connect", connect)


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[World], list[str]] | list[str]
    exit_code: int
    fragment: str
    setup: Callable[..., None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    marks: tuple = ()


def config_is_a_directory(world: World, monkeypatch) -> None:
    config_file().unlink()
    config_file().mkdir()


def config_is_not_toml(world: World, monkeypatch) -> None:
    config_file().write_text("[mirrors.corp\nurl = 'https://pypi.corp.example/simple'\n")


def config_not_utf8(world: World, monkeypatch) -> None:
    # (a mode-000 file would be the other unreadable case, but root, who runs CI, reads it anyway)
    config_file().write_bytes(b"\xff\xfe[mirrors]\x00")


def remembered_is_not_toml(world: World, monkeypatch) -> None:
    Instance("default").settings_file.write_text("port = [3141\n")


def remembered(text: str) -> Callable[..., None]:
    def setup(world: World, monkeypatch) -> None:
        Instance("default").settings_file.write_text(text)

    return setup


def password_file_is_a_directory(world: World, monkeypatch) -> None:
    Instance("default").password_file.unlink()
    Instance("default").password_file.mkdir()


def password_file_not_utf8(world: World, monkeypatch) -> None:
    Instance("default").password_file.write_bytes(b"\xff\xfe\x00pw\n")


def a_replica(world: World, monkeypatch) -> None:
    """A running cache 'rep' that is a replica of another cache."""
    world.engine.add("rep", port=3142, env=("DEVPICTL_FRONT=1", "DEVPICTL_OFFLINE=0", "DEVPICTL_PRIMARY_URL=http://cache-a:3141"))


def secret_file(text: str) -> Callable[[World], str]:
    def make(world: World) -> str:
        path = world.tmp / "primary.secret"
        path.write_text(text)
        return str(path)

    return make


def nothing_resolves(world: World, monkeypatch) -> None:
    """Host names fail to resolve without asking any DNS server."""

    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def write_file(name: str, text: str) -> Callable[[World], str]:
    def make(world: World) -> str:
        path = world.tmp / name
        path.write_text(text)
        return str(path)

    return make


NOT_PEM = write_file("ca.txt", "this is not a certificate\n")
A_LOCK = write_file("uv.lock", "version = 1\n")


def symlinked_secrets(world: World) -> str:
    """An output directory whose secrets/ points elsewhere (as `secrets -> /etc` would)."""
    (world.tmp / "elsewhere").mkdir()
    (world.tmp / "out").mkdir()
    (world.tmp / "out" / "secrets").symlink_to(world.tmp / "elsewhere")
    return str(world.tmp / "out")


def image_without_web(world: World, monkeypatch) -> None:
    world.engine.image_tags.add("team/devpi:1")
    world.engine.image_labels["team/devpi:1"] = {"devpictl.devpi-web": "", "devpictl.front": "nginx"}


CASES = [
    Case("apt-mirror-not-debian", ["build", "--apt-mirror", "https://apt.example/ubuntu"], 2, "is not a Debian archive"),
    Case("apt-mirror-unknown", ["up", "--apt-mirror", "nosuch"], 2, "unknown apt mirror 'nosuch'"),
    Case(
        "image-lacks-web",
        ["up", "--web", "--image", "team/devpi:1"],
        4,
        "image team/devpi:1 has no devpi-web (--web)",
        setup=image_without_web,
    ),
    Case("max-size-bad", ["up", "--max-size", "lots"], 2, "--max-size 'lots' is not a size"),
    Case("prune-nothing-to-do", ["prune"], 2, "say what to remove"),
    Case("prune-bad-duration", ["prune", "--unused-for", "soon"], 2, "--unused-for 'soon' is not a duration"),
    Case("stats-bad-since", ["stats", "--since", "forever"], 2, "--since 'forever' is not a duration"),
    Case("stats-since-overflows", ["stats", "--since", "999999999999999d"], 2, "--since '999999999999999d' is longer than a century"),
    Case("prune-unused-for-overflows", ["prune", "--unused-for", "9" * 400 + "w"], 2, "is longer than a century"),
    Case("warm-no-such-file", ["warm", "/nonexistent/uv.lock"], 2, "/nonexistent/uv.lock is not a file"),
    Case("warm-bad-python", lambda world: ["warm", A_LOCK(world), "--python", "3"], 2, "--python '3' is not a Python version"),
    Case("status-bad-name", ["status", "--name", "a/b"], 2, "cache name 'a/b' is not allowed"),
    Case("unknown-mirror", ["up", "--mirror", "nosuch"], 2, "unknown mirror 'nosuch'"),
    Case("retired-mirror", ["up", "--mirror", "ustc"], 2, "'ustc' is not offered"),
    Case("url-without-host", ["up", "--mirror", "http://"], 2, "is not an index URL"),
    Case("url-other-scheme", ["set-upstream", "ftp://mirror.example/simple"], 2, "is not an index URL"),
    Case("url-bad-port", ["up", "--mirror", "http://mirror.example:99999/simple"], 2, "invalid port"),
    Case("url-with-space", ["mirrors", "add", "corp2", "https://mirror.example/py pi/simple"], 2, "is not an index URL"),
    # A URL reaches nginx's configuration (the failover server): no variable, quote, ; or brace there.
    Case("url-nginx-variable", ["set-upstream", "tuna", "--fallback", "http://$http_x_target:8080/simple"], 2, "which no index URL needs"),
    Case("url-nginx-quote", ["set-upstream", "tuna", "--fallback", "http://host:8080/a';x/simple"], 2, "has ' ; in it"),
    Case("url-nginx-brace", ["up", "--mirror", "https://mirror.example/{x}/simple"], 2, "has { } in it"),
    Case("port-0", ["up", "--port", "0"], 2, "port 0 is out of range"),
    Case("port-70000", ["up", "--port", "70000"], 2, "port 70000 is out of range"),
    Case("port-in-use", lambda w: ["up", "--name", "fresh", "--port", w.busy_port()], 4, "already in use"),
    Case("name-bad-characters", ["status", "--name", "Bad Name!"], 2, "cache name 'Bad Name!' is not allowed"),
    Case("name-too-long", ["up", "--name", "a" * 41], 2, "is not allowed"),
    Case("name-trailing-newline", ["down", "--name", "default\n"], 2, "cache name 'default\\n' is not allowed"),
    Case("engine-missing", ["status"], 3, "cannot reach the Docker engine", setup=engine_down),
    Case("config-is-a-directory", ["up", "--mirror", "corp"], 2, "cannot read", setup=config_is_a_directory),
    Case("config-not-toml", ["mirrors"], 2, "is not valid TOML", setup=config_is_not_toml),
    Case("config-not-utf8", ["mirrors"], 2, "is not valid TOML", setup=config_not_utf8),
    Case("remembered-not-toml", ["up"], 2, "is not valid TOML", setup=remembered_is_not_toml),
    Case("bad-labels", ["up"], 2, "DEVPICTL_LABELS item 'oops' is not KEY=VALUE", env={"DEVPICTL_LABELS": "oops"}),
    Case("ca-bundle-missing", lambda w: ["up", "--ca-bundle", str(w.tmp / "missing.pem")], 2, "cannot read CA bundle"),
    Case("ca-bundle-not-pem", lambda w: ["up", "--ca-bundle", NOT_PEM(w)], 2, "holds no PEM certificate"),
    Case("wheelhouse-missing", lambda w: ["build", "--wheelhouse", str(w.tmp / "nowheels")], 2, "is not a directory"),
    Case("down-volumes-unconfirmed", ["down", "--volumes"], 2, "add --yes to confirm"),
    Case("password-no-action", ["password"], 2, "--show to print it, or --rotate"),
    Case("up-replica-of-not-a-url", ["up", "--replica-of", "cache-a:3141"], 2, "is not a cache's URL"),
    Case("up-replica-of-credentials", ["up", "--replica-of", "http://root:pw@cache-a:3141"], 2, "carries a user or password"),
    Case("up-replica-of-index-url", ["up", "--replica-of", "http://cache-a:3141/root/pypi/+simple/"], 2, "has a path"),
    Case(
        "up-replica-with-mirror",
        ["up", "--replica-of", "http://cache-a:3141", "--mirror", "tuna"],
        2,
        "a replica fetches through its primary",
    ),
    Case("up-replica-offline", ["up", "--replica-of", "http://cache-a:3141", "--offline"], 2, "a replica cannot run in offline mode"),
    Case("up-replica-secret-alone", lambda w: ["up", "--replica-secret", secret_file("x" * 44)(w)], 2, "goes with --replica-of"),
    Case(
        "up-replica-secret-short",
        lambda w: ["up", "--name", "rep2", "--replica-of", "http://cache-a:3141", "--replica-secret", secret_file("short")(w)],
        2,
        "holds no devpi secret",
    ),
    Case(
        "up-replica-read-auth-without-a-login",
        lambda w: [
            "up",
            "--name",
            "rep2",
            "--replica-of",
            "http://cache-a:3141",
            "--replica-secret",
            secret_file("x" * 44)(w),
            "--read-auth",
        ],
        2,
        "needs the primary's root password",
    ),
    Case(
        "up-replica-of-on-a-primary",
        lambda w: ["up", "--replica-of", "http://cache-a:3141", "--replica-secret", secret_file("x" * 44)(w)],
        4,
        "is a primary: run `devpictl down",
    ),
    Case("export-unknown-target", lambda w: ["export", "helm", "-o", str(w.tmp / "out")], 2, "give compose or k8s"),
    Case(
        "export-option-of-the-other",
        lambda w: ["export", "compose", "--storage", "5Gi", "-o", str(w.tmp / "out")],
        2,
        "--storage do not apply to `export compose`",
    ),
    Case("export-no-replicas", lambda w: ["export", "k8s", "--replicas", "0", "-o", str(w.tmp / "out")], 2, "--replicas 0 is out of range"),
    Case(
        "export-upstream-credentials",
        lambda w: ["export", "k8s", "--mirror", "https://me:pw@pypi.corp.example/simple", "-o", str(w.tmp / "out")],
        2,
        "carries a user or password",
    ),
    Case("export-bad-k8s-name", lambda w: ["export", "k8s", "--name", "Devpi_1", "-o", str(w.tmp / "out")], 2, "is not a Kubernetes name"),
    Case(
        "export-storage-injects-yaml",
        lambda w: ["export", "k8s", "--storage", "1Gi\n  evil: x", "-o", str(w.tmp / "out")],
        2,
        "is not a Kubernetes quantity",
    ),
    Case(
        "export-storage-nan", lambda w: ["export", "k8s", "--storage", "nan", "-o", str(w.tmp / "out")], 2, "is not a Kubernetes quantity"
    ),
    Case(
        "export-image-injects-yaml",
        lambda w: ["export", "compose", "--image", "devpi:1\n    privileged: true", "-o", str(w.tmp / "out")],
        2,
        "is not an image reference",
    ),
    Case(
        "export-network-with-space",
        lambda w: ["export", "compose", "--network", "a b", "-o", str(w.tmp / "out")],
        2,
        "--network 'a b' is not a Docker network's name",
    ),
    Case("export-port-0", lambda w: ["export", "compose", "--port", "0", "-o", str(w.tmp / "out")], 2, "port 0 is out of range"),
    Case("export-symlinked-secrets", lambda w: ["export", "k8s", "-o", symlinked_secrets(w)], 4, "is a symlink"),
    Case(
        "set-upstream-on-a-replica",
        ["set-upstream", "tuna", "--name", "rep"],
        4,
        "run `devpictl set-upstream` on the primary",
        setup=a_replica,
    ),
    Case(
        "rotate-on-a-replica",
        ["password", "--rotate", "--name", "rep"],
        4,
        "run `devpictl password --rotate` on the primary",
        setup=a_replica,
    ),
    Case(
        "replica-secret-of-a-replica",
        lambda w: ["password", "--replica-secret", str(w.tmp / "out.secret"), "--name", "rep"],
        4,
        "on the primary",
        setup=a_replica,
    ),
    Case("password-two-actions", ["password", "--show", "--rotate"], 2, "do not go together"),
    Case("pip-config-bad-url", ["pip-config", "--url", "cache.lan:3141/simple", "--write"], 2, "is not an index URL"),
    Case("pip-config-unknown-tool", ["pip-config", "--tool", "pipx", "--write"], 2, "unknown tool 'pipx'"),
    Case("remove-builtin-mirror", ["mirrors", "remove", "tuna"], 2, "'tuna' is a built-in mirror"),
    Case("no-such-cache", ["set-upstream", "tuna", "--name", "ghost"], 8, "no cache named 'ghost'"),
    Case("host-not-an-address", ["up", "--host", "not an ip"], 2, "'not an ip' is not an IP address or host name"),
    Case("host-with-port", ["up", "--host", "127.0.0.1:80"], 2, "carries a port: give the address alone and the port with --port 80"),
    Case("host-bracketed-with-port", ["up", "--host", "[::1]:80"], 2, "carries a port"),
    Case("host-unresolvable", ["up", "--host", "cache.example.invalid"], 2, "does not resolve", setup=nothing_resolves),
    Case(
        "memory-not-an-amount",
        ["up", "--memory", "lots"],
        2,
        "--memory 'lots' is not a size: give a number with K, M, G or T, e.g. 2g or 1536m",
    ),
    Case("memory-too-little", ["up", "--memory", "10m"], 2, "--memory '10m' is too little"),
    Case("pids-limit-too-low", ["up", "--pids-limit", "5"], 2, "--pids-limit 5 is too low"),
    Case("remembered-memory-bad", ["up"], 2, "cache.toml: memory = 'x' is not a size", setup=remembered('memory = "x"\n')),
    Case(
        "remembered-pids-limit-string", ["up"], 2, "cache.toml: pids_limit = 'many' is too low", setup=remembered('pids_limit = "many"\n')
    ),
    Case("timeout-nan", ["up", "--timeout", "nan"], 2, "--timeout nan is not a time limit"),
    Case("timeout-inf", ["up", "--timeout", "inf"], 2, "--timeout inf is not a time limit"),
    Case("timeout-zero", ["up", "--timeout", "0"], 2, "--timeout 0 is not a time limit"),
    Case("mirrors-test-timeout-inf", ["mirrors", "test", "tuna", "--timeout", "inf"], 2, "--timeout inf is not a time limit"),
    Case("remembered-port-string", ["up"], 2, "cache.toml: port = 'abc' is not a port number", setup=remembered('port = "abc"\n')),
    Case("remembered-port-negative", ["up"], 2, "cache.toml: port = -5 is not a port number", setup=remembered("port = -5\n")),
    Case("remembered-port-too-big", ["up"], 2, "cache.toml: port = 99999 is not a port number", setup=remembered("port = 99999\n")),
    Case("remembered-host-number", ["up"], 2, "cache.toml: host = 123 is not a non-empty string", setup=remembered("host = 123\n")),
    Case(
        "remembered-host-not-an-address",
        ["up"],
        2,
        "cache.toml: host 'not an ip' is not an IP address",
        setup=remembered('host = "not an ip"\n'),
    ),
    Case("remembered-image-empty", ["up"], 2, "cache.toml: image = '' is not a non-empty string", setup=remembered('image = ""\n')),
    Case("remembered-offline-string", ["up"], 2, "cache.toml: offline = 'no' is not true or false", setup=remembered('offline = "no"\n')),
    Case("password-file-is-a-directory", ["password", "--show"], 2, "root-password (Is a directory)", setup=password_file_is_a_directory),
    Case("password-file-not-utf8", ["password", "--rotate"], 2, "root-password is not UTF-8 text", setup=password_file_not_utf8),
    Case(
        "unknown-network",
        lambda w: ["up", "--name", "fresh", "--port", free_port(), "--network", "nosuchnet"],
        2,
        "no Docker network 'nosuchnet'",
    ),
    Case("fallback-fastest", ["up", "--fallback", "tuna,fastest"], 2, "--fallback takes mirror names or URLs, not 'fastest'"),
    Case("fallback-unknown", ["set-upstream", "nju", "--fallback", "nosuch"], 2, "unknown mirror 'nosuch'"),
    Case("fallback-retired", ["set-upstream", "nju", "--fallback", "douban"], 2, "'douban' is not offered"),
    Case("fallback-is-the-primary", ["set-upstream", "tuna", "--fallback", "bfsu,tuna"], 2, "is in the chain twice"),
    Case("fallback-not-simple", ["up", "--mirror", "nju", "--fallback", "https://m.example/pypi/index"], 2, "does not end in /simple"),
    Case("fallback-with-credentials", ["set-upstream", "nju", "--fallback", "https://u:pw@m.example/simple"], 2, "needs credentials"),
    Case("max-lag-without-fastest", ["up", "--mirror", "nju", "--max-lag", "6h"], 2, "use it with --mirror fastest"),
    Case("max-lag-bad", ["set-upstream", "fastest", "--max-lag", "soon"], 2, "--max-lag 'soon' is not a duration"),
    Case("lag-projects-empty", ["mirrors", "test", "tuna", "--lag-projects", ","], 2, "--lag-projects names no project"),
    Case(
        "remembered-fallback-string",
        ["up"],
        2,
        "cache.toml: fallback = 'tuna' is not a list of mirror names or URLs",
        setup=remembered('fallback = "tuna"\n'),
    ),
]
if HAVE_BACKUP:
    CASES += [
        Case("restore-corrupt-archive", lambda w: ["restore", corrupt_archive(w)], 2, "is not a usable devpictl backup"),
        Case("restore-missing-archive", lambda w: ["restore", str(w.tmp / "none.tar.gz")], 2, "does not exist"),
        Case("restore-into-non-empty", lambda w: ["restore", valid_archive(w)], 4, "is not empty", setup=cache_with_data),
        Case("restore-truncated-archive", lambda w: ["restore", "--force", truncated_archive(w)], 2, "is not a usable devpictl backup"),
        Case(
            "restore-symlink-member",
            lambda w: ["restore", "--force", hostile_archive(extra=(link_member(tarfile.SYMTYPE, "devpi-export/x", "/data"),))(w)],
            2,
            "member 'devpi-export/x' is a symlink",
        ),
        Case(
            "restore-hardlink-member",
            lambda w: [
                "restore",
                "--force",
                hostile_archive(extra=(link_member(tarfile.LNKTYPE, "devpi-export/pw", "/run/devpictl/root-password"),))(w),
            ],
            2,
            "is a hardlink",
        ),
        Case(
            "restore-device-member",
            lambda w: ["restore", "--force", hostile_archive(extra=(link_member(tarfile.CHRTYPE, "devpi-export/null", ""),))(w)],
            2,
            "is a device or special file",
        ),
        Case(
            "restore-absolute-member",
            lambda w: ["restore", "--force", hostile_archive(extra=(regular_member("/data/secret"),))(w)],
            2,
            "unsafe member name '/data/secret'",
        ),
        Case(
            "restore-dotdot-member",
            lambda w: ["restore", "--force", hostile_archive(extra=(regular_member("devpi-export/../secret"),))(w)],
            2,
            "unsafe member name",
        ),
        Case(
            "restore-member-outside-export",
            lambda w: ["restore", "--force", hostile_archive(extra=(regular_member("elsewhere/x"),))(w)],
            2,
            "nor under devpi-export/",
        ),
        Case(
            "restore-foreign-export",
            lambda w: ["restore", "--force", hostile_archive(dataindex={"hello": "world"})(w)],
            2,
            "is not a devpi export of dump version",
        ),
        Case(
            "restore-unknown-dumpversion",
            lambda w: ["restore", "--force", hostile_archive(dataindex={"dumpversion": "9", "users": {}, "indexes": {}})(w)],
            2,
            "not a devpi export",
        ),
    ]


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A cache 'default' that exists (password, remembered settings, running container) and a user mirror."""
    ensure_root_password(Instance("default"))
    save_remembered(Instance("default"), {"port": 3141, "probe_project": "pip", "front": True})
    save_config({"mirrors": {"corp": {"url": "https://pypi.corp.example/simple", "note": "office"}}})
    engine = FakeEngine(images=(DEFAULT_IMAGE,))
    engine.add("default")
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    w = World(inputs, engine)
    yield w
    if w.busy is not None:
        w.busy.close()
    if config_file().exists():
        config_file().chmod(0o600)


def test_at_least_fifteen_cases():
    assert len(CASES) >= 15
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, world, monkeypatch, tmp_path, isolation):
    if case.setup is not None:
        case.setup(world, monkeypatch)
    args = case.args(world) if callable(case.args) else case.args
    roots = (tmp_path / "devpictl-config", tmp_path / "devpictl-data", isolation)
    before = snapshot(*roots)

    result = runner.invoke(app, args, env=case.env)

    assert result.exit_code == case.exit_code, result.output
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert case.fragment in lines[0], lines[0]
    assert snapshot(*roots) == before
    assert world.engine.mutations() == []
