"""up --offline (devpi's --offline-mode), status's upstream reachability, and the bind-all warning."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import image as img
from devpictl import lifecycle, password, precedence, probe, reporter, switching
from devpictl import status as cache_status
from devpictl.cli import app
from devpictl.coremetadata import MetadataCheck
from devpictl.devpi import DevpiClient
from devpictl.errors import Conflict
from devpictl.mirrors import CATALOG, OFFICIAL
from devpictl.settings import Instance, ensure_root_password, load_remembered, save_remembered
from tests.unit.fakes import FakeContainer, FakeEngine
from tests.unit.test_cache import EMPTY_PAGE, FILES_PAGE, OFFICIAL_URL, ROOT_PASSWORD, FakeDevpi, configured, page_answer
from tests.unit.upstream_check import run_check

runner = CliRunner()
ENTRYPOINT = img.template_dir() / "entrypoint.sh"
TUNA = CATALOG["tuna"]
# What the upstream check in the container prints for a page that lists files, and for one that lists none.
LISTED = (0, page_answer(f"{TUNA.url}/pip/", FILES_PAGE))
EMPTY = (0, page_answer(f"{TUNA.url}/pip/", EMPTY_PAGE))


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


# --- the entrypoint -------------------------------------------------------------------------


@pytest.fixture
def entrypoint(tmp_path):
    """The real entrypoint.sh, its /data and /run paths moved under tmp_path, devpi and nginx stubbed.

    Each stub writes its argv to tmp_path/NAME.args, so a test sees how devpi-server is started.
    """
    root = tmp_path / "root"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in ("data/server", "run/devpictl", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "data/server/.nodeinfo").write_text("{}")  # an initialised volume
    (root / "data/secret").write_text("x" * 32)
    for stub in ("devpi-server", "nginx", "devpi-init", "devpi-gen-secret"):
        path = bin_dir / stub
        # nginx outlives devpi: the entrypoint stops both when the first exits, and
        # devpi's stub must have written its argv by then.
        linger = "sleep 2\n" if stub == "nginx" else ""
        path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/{stub}.args"\n{linger}')
        path.chmod(0o755)
    text = ENTRYPOINT.read_text()
    for real in ("/data", "/run/devpictl", "/tmp/nginx"):
        text = text.replace(real, f"{root}{real}")
    script = tmp_path / "entrypoint.sh"
    script.write_text(text)

    def run(**env: str) -> list[str]:
        environ = {"PATH": f"{bin_dir}:/usr/bin:/bin", **env}
        done = subprocess.run(["bash", str(script)], env=environ, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return (tmp_path / "devpi-server.args").read_text().split()

    return run


class TestEntrypoint:
    @pytest.mark.parametrize("front", ["0", "1"])
    def test_offline_appends_offline_mode(self, entrypoint, front):
        args = entrypoint(DEVPICTL_FRONT=front, DEVPICTL_OFFLINE="1")
        assert args[-1] == "--offline-mode"
        assert args[:2] == ["-c", "/etc/devpi/devpi-server.yml"]

    @pytest.mark.parametrize("env", [{"DEVPICTL_OFFLINE": "0"}, {}])
    def test_online_by_default(self, entrypoint, env):
        assert "--offline-mode" not in entrypoint(DEVPICTL_FRONT="0", **env)

    def test_the_image_carries_this_entrypoint(self):
        import tarfile

        with tarfile.open(fileobj=img.build_context(img.BuildOptions())) as tar:
            shipped = tar.extractfile("entrypoint.sh").read()
        assert shipped == ENTRYPOINT.read_bytes()
        assert b"--offline-mode" in shipped


# --- the container and what up remembers ------------------------------------------------------


class RecordingEngine:
    def __init__(self):
        self.created: dict = {}
        self.containers = self

    def create(self, image, **kwargs):
        self.created = kwargs
        return object()


@pytest.mark.parametrize("offline, value", [(True, "1"), (False, "0")])
def test_container_environment_says_offline(offline, value):
    engine = RecordingEngine()
    ctr.create_container(engine, ctr.ContainerSpec(Instance("x"), "img", "127.0.0.1", 3141, offline=offline))
    assert engine.created["environment"]["DEVPICTL_OFFLINE"] == value


def test_container_gets_memory_and_pids_limits():
    engine = RecordingEngine()
    ctr.create_container(engine, ctr.ContainerSpec(Instance("x"), "img", "127.0.0.1", 3141, memory=2 * 1024**3, pids_limit=512))
    assert engine.created["mem_limit"] == engine.created["memswap_limit"] == 2 * 1024**3
    assert engine.created["pids_limit"] == 512


class TestResourceLimits:
    def test_defaults(self):
        full = precedence.with_remembered(up_options())[1]
        assert (full.memory, full.pids_limit) == ("2g", 512)

    def test_remembered_then_flag(self):
        save_remembered(Instance("default"), {"memory": "3g", "pids_limit": 300})
        assert precedence.with_remembered(up_options())[1].memory == "3g"
        assert precedence.with_remembered(up_options(memory="1g", pids_limit=100))[1].pids_limit == 100

    @pytest.mark.parametrize("asked", [{"memory": "1g"}, {"pids_limit": 100}])
    def test_other_limits_on_a_running_cache_need_down(self, asked):
        container = FakeContainer(FakeEngine())
        container.attrs["HostConfig"].update(Memory=2 * 1024**3, PidsLimit=512)
        with pytest.raises(Conflict, match="other resource limits: run `devpictl down --name default` first"):
            lifecycle.check_unchanged(container, up_options(**asked))
        lifecycle.check_unchanged(container, up_options(memory="2048m", pids_limit=512))

    @pytest.mark.parametrize("value, size", [("2g", 2 * 1024**3), ("1536m", 1536 * 1024**2), ("300M", 300 * 1024**2), ("1G", 1024**3),
                                             ("256m", 256 * 1024**2), ("262144k", 256 * 1024**2)])
    def test_memory_notation(self, value, size):
        from devpictl.settings import memory_bytes

        assert memory_bytes(value) == size

    def test_just_under_the_floor_is_refused(self):
        from devpictl.errors import BadInput
        from devpictl.settings import memory_bytes

        with pytest.raises(BadInput, match="too little"):
            memory_bytes(f"{256 * 1024 - 1}k")

    @pytest.mark.parametrize("port", [1, 65535])
    def test_remembered_port_bounds(self, port):
        save_remembered(Instance("default"), {"port": port})
        assert load_remembered(Instance("default"))["port"] == port

    def test_remembered_port_just_beyond(self):
        from devpictl.errors import BadInput

        save_remembered(Instance("default"), {"port": 65536})
        with pytest.raises(BadInput, match="port = 65536"):
            load_remembered(Instance("default"))

    def test_pids_limit_floor(self):
        from devpictl.errors import BadInput
        from devpictl.settings import check_pids_limit

        assert check_pids_limit(64) == 64
        with pytest.raises(BadInput):
            check_pids_limit(63)


def up_options(**kwargs) -> precedence.UpOptions:
    values = dict(instance=Instance("default"), upstream=None, host=None, port=None, image=None, build=img.BuildOptions())
    values.update(kwargs)
    return precedence.UpOptions(**values)


class TestRemembered:
    def test_offline_defaults_to_off(self):
        given, full = precedence.with_remembered(up_options())
        assert given.offline is None and full.offline is False

    def test_remembered_offline_comes_back(self):
        save_remembered(Instance("default"), {"offline": True, "port": 3200})
        given, full = precedence.with_remembered(up_options())
        assert given.offline is True and full.offline is True

    def test_flag_wins(self):
        save_remembered(Instance("default"), {"offline": True})
        assert precedence.with_remembered(up_options(offline=False))[1].offline is False

    def test_remembered_host_is_what_up_binds(self):
        save_remembered(Instance("default"), {"host": "0.0.0.0"})
        assert precedence.with_remembered(up_options())[1].host == "0.0.0.0"


class TestChangingOfflineNeedsDown:
    @pytest.mark.parametrize("running_offline, asked", [(True, False), (False, True)])
    def test_conflict(self, running_offline, asked):
        container = FakeContainer(FakeEngine(), env=(f"DEVPICTL_OFFLINE={int(running_offline)}",))
        with pytest.raises(Conflict, match=r"offline mode: run `devpictl down --name default` first"):
            lifecycle.check_unchanged(container, up_options(offline=asked))

    @pytest.mark.parametrize("running_offline", [True, False])
    def test_same_or_unsaid_is_fine(self, running_offline):
        container = FakeContainer(FakeEngine(), env=(f"DEVPICTL_OFFLINE={int(running_offline)}",))
        lifecycle.check_unchanged(container, up_options(offline=running_offline))
        lifecycle.check_unchanged(container, up_options(offline=None))

    def test_offline_enabled_reads_the_environment(self):
        assert ctr.offline_enabled(FakeContainer(FakeEngine(), env=("DEVPICTL_OFFLINE=1",)))
        assert not ctr.offline_enabled(FakeContainer(FakeEngine(), env=("DEVPICTL_OFFLINE=0",)))
        assert not ctr.offline_enabled(FakeContainer(FakeEngine(), env=()))  # made before offline mode existed


# --- up on an existing cache, offline and online -----------------------------------------------


@pytest.fixture
def running_cache(monkeypatch):
    """lifecycle.up against a running container and a fake devpi; records readiness waits and upstream checks."""
    ensure_root_password(Instance("default"))
    engine = FakeEngine()
    seen: dict[str, list] = {"ready": [], "checked": [], "server": []}

    def make(offline: bool, ixconfig: dict, core_metadata: bool = False):
        # The container's devpi-server.yml: with enable-core-metadata, or as an older image wrote it.
        config = img.render_server_config(img.BuildOptions(devpi_server_version="6.20.3" if core_metadata else "6.19.1"))
        container = engine.add(
            "default", env=("DEVPICTL_FRONT=1", f"DEVPICTL_OFFLINE={int(offline)}"),
            exec_answers=lambda cmd, env: (0, config.encode()) if cmd == ["cat", probe.SERVER_CONFIG] else (1, b"unexpected exec"),
        )
        server = FakeDevpi(ixconfig)
        seen["server"].append(server)
        for module in (lifecycle, switching, cache_status):
            monkeypatch.setattr(module, "DevpiClient", lambda base_url, **kw: server.client())
        return container

    monkeypatch.setattr(switching, "official_url", lambda container: OFFICIAL_URL)
    monkeypatch.setattr(lifecycle, "wait_for_api", lambda *a, **kw: None)
    monkeypatch.setattr(lifecycle, "wait_until_ready", lambda client, project, *a: seen["ready"].append(project))
    monkeypatch.setattr(probe, "check_upstream", lambda container, url, project, *a: seen["checked"].append(url))
    monkeypatch.setattr(switching, "flush_front_cache", lambda container: None)
    monkeypatch.setattr(password, "login_root", lambda client, instance: client.login("root", ROOT_PASSWORD))

    def measure(container, url, project, timeout=20.0):
        seen["measured"].append((url, project))
        return seen["metadata"]

    seen["measured"] = []
    seen["metadata"] = MetadataCheck(True, "pip-24.0-py3-none-any.whl.metadata answers")
    monkeypatch.setattr(probe, "measure_core_metadata", measure)
    return engine, make, seen


class TestUpOffline:
    def test_offline_waits_for_the_api_only(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(TUNA))
        result = lifecycle.up(engine, up_options(offline=True), reporter.QuietReporter())
        assert result.offline is True
        assert seen["ready"] == [] and seen["checked"] == []
        assert load_remembered(Instance("default"))["offline"] is True
        assert engine.mutations() == []

    def test_online_waits_until_the_probe_lists_files(self, running_cache):
        engine, make, seen = running_cache
        make(False, configured(TUNA))
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert result.offline is False
        assert seen["ready"] == ["pip"]
        assert load_remembered(Instance("default"))["offline"] is False

    def test_offline_refuses_to_switch_the_upstream_and_asks_nobody(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(OFFICIAL))
        with pytest.raises(Conflict, match="offline mode and asks no upstream"):
            lifecycle.up(engine, up_options(offline=True, upstream=TUNA), reporter.QuietReporter())
        assert seen["checked"] == []
        assert seen["server"][0].patches() == []

    def test_offline_keeps_its_upstream(self, running_cache):
        engine, make, seen = running_cache
        make(True, configured(TUNA))
        result = lifecycle.up(engine, up_options(offline=True, upstream=TUNA), reporter.QuietReporter())
        assert result.upstream is TUNA and result.actions == []

    def test_offline_announces_the_metadata_of_stored_wheels_without_asking(self, running_cache):
        # Offline, devpi lists only stored wheels and reads their METADATA out of them.
        engine, make, seen = running_cache
        make(True, configured(TUNA), core_metadata=True)
        result = lifecycle.up(engine, up_options(offline=True), reporter.QuietReporter())
        assert seen["server"][0].patches() == [["mirror_provides_core_metadata=true"]]
        assert result.core_metadata is True
        assert seen["measured"] == []

    def test_online_up_follows_the_measurement(self, running_cache):
        engine, make, seen = running_cache
        make(False, {**configured(TUNA), "mirror_provides_core_metadata": True}, core_metadata=True)
        seen["metadata"] = MetadataCheck(False, "pip-24.0-py3-none-any.whl.metadata answers HTTP 404")
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert seen["measured"] == [(TUNA.url, "pip")]
        assert seen["server"][0].patches() == [["mirror_provides_core_metadata=false"]]
        assert result.core_metadata is False
        assert result.actions == ["stopped announcing core metadata: pip-24.0-py3-none-any.whl.metadata answers HTTP 404"]

    def test_a_second_up_with_the_same_measurement_changes_nothing(self, running_cache):
        engine, make, seen = running_cache
        make(False, {**configured(TUNA), "mirror_provides_core_metadata": True}, core_metadata=True)
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert result.actions == [] and result.core_metadata is True
        assert seen["server"][0].patches() == []

    def test_an_image_without_core_metadata_is_neither_measured_nor_changed(self, running_cache):
        # devpi-server < 6.20 refuses the index option: it must never be sent.
        engine, make, seen = running_cache
        make(False, configured(TUNA), core_metadata=False)
        result = lifecycle.up(engine, up_options(), reporter.QuietReporter())
        assert seen["measured"] == [] and seen["server"][0].patches() == []
        assert result.core_metadata is False

    def test_set_upstream_to_the_upstream_it_has_asks_no_network(self, running_cache, monkeypatch):
        engine, make, seen = running_cache
        make(False, configured(TUNA))
        monkeypatch.setattr(switching, "check_not_itself", lambda *a: None)
        monkeypatch.setattr(switching, "keep_credentials", lambda *a: None)
        monkeypatch.setattr(switching, "core_metadata_measurement", lambda *a, **k: None)
        monkeypatch.setattr(switching, "core_metadata_state", lambda *a: False)
        result = switching.set_upstream(engine, Instance("default"), TUNA, check=True, probe_project=None, reporter=reporter.QuietReporter())
        assert seen["checked"] == [] and result.actions == []

    def test_set_upstream_on_an_offline_cache_is_a_conflict(self, running_cache):
        engine, make, _ = running_cache
        make(True, configured(OFFICIAL))
        with pytest.raises(Conflict, match="--online"):
            switching.set_upstream(engine, Instance("default"), TUNA, check=True, probe_project=None, reporter=reporter.QuietReporter())


# --- status: does the upstream answer? ------------------------------------------------------


def scripted_container(engine: FakeEngine, *, check: tuple[int, bytes], offline: bool = False, status: str = "running"):
    """A container whose execs answer like the real one: devpi's default URL, the upstream check, du."""

    def answer(cmd, env):
        if "DEVPICTL_CHECK_URL" in env:
            return check
        if cmd[0] == "du":
            return 0, b"123456\t/data\n"
        return 0, (OFFICIAL_URL + "/\n").encode()  # official_url()

    return engine.add("default", status=status, env=("DEVPICTL_FRONT=1", f"DEVPICTL_OFFLINE={int(offline)}"), exec_answers=answer)


@pytest.fixture
def status_devpi(monkeypatch):
    server = FakeDevpi(configured(TUNA))

    def handle(request):
        if request.url.path == "/+status":
            return httpx.Response(200, json={"result": {"versioninfo": {"devpi-server": "6.20.3"}}})
        return server.handle(request)

    for module in (lifecycle, switching, cache_status):

        monkeypatch.setattr(module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=httpx.MockTransport(handle)))
    return server


class TestReachability:
    @pytest.mark.parametrize(
        "check, offline, expected",
        [
            (LISTED, False, (True, None)),
            (EMPTY, False, (True, None)),  # answers, lists nothing: still answering
            ((1, b"URLError: [Errno -2] Name or service not known\n"), False, (False, "URLError: [Errno -2] Name or service not known")),
            ((1, b"URLError: no answer within 4 s\n"), False, (False, "URLError: no answer within 4 s")),
            (LISTED, True, (None, None)),
        ],
    )
    def test_mapping(self, check, offline, expected):
        container = scripted_container(FakeEngine(), check=check)
        assert cache_status.upstream_reachability(container, TUNA.url, "pip", offline=offline) == expected

    def test_unknown_upstream_is_not_asked(self):
        container = scripted_container(FakeEngine(), check=LISTED)
        assert cache_status.upstream_reachability(container, None, "pip", offline=False) == (None, None)
        assert container.execs == []

    def test_short_deadline_and_remembered_probe_project(self, status_devpi):
        save_remembered(Instance("default"), {"probe_project": "six"})
        container = scripted_container(FakeEngine(), check=LISTED)
        cache_status.status(container.engine, Instance("default"))
        (cmd, env), = [(c, e) for c, e in container.execs if "DEVPICTL_CHECK_URL" in e]
        assert env["DEVPICTL_CHECK_URL"] == f"{TUNA.url}/six/"
        assert env["DEVPICTL_CHECK_TIMEOUT"] == str(cache_status.STATUS_UPSTREAM_TIMEOUT)
        assert cache_status.STATUS_UPSTREAM_TIMEOUT <= 5

    def test_broken_cache_toml_does_not_break_status(self, status_devpi):
        Instance("default").state_dir.mkdir(parents=True)
        Instance("default").settings_file.write_text("not = [toml")
        container = scripted_container(FakeEngine(), check=LISTED)
        assert cache_status.status(container.engine, Instance("default")).upstream_reachable is True


class TestStatusCommand:
    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine()
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    def test_not_answering(self, engine, status_devpi):
        scripted_container(engine, check=(1, b"URLError: timed out\n"))
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert f"upstream: tuna {TUNA.url} (not answering: URLError: timed out)" in result.stdout
        assert "offline mode: off" in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["upstream_reachable"] is False
        assert data["upstream_problem"] == "URLError: timed out"
        assert data["offline"] is False

    def test_answering(self, engine, status_devpi):
        scripted_container(engine, check=LISTED)
        result = invoke("status")
        assert f"upstream: tuna {TUNA.url} (answering)" in result.stdout
        assert json.loads(invoke("status", "--json").stdout)["upstream_reachable"] is True

    def test_offline_is_not_asked(self, engine, status_devpi):
        container = scripted_container(engine, check=LISTED, offline=True)
        result = invoke("status")
        assert f"upstream: tuna {TUNA.url} (not asked: offline mode)" in result.stdout
        assert "offline mode: on" in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["upstream_reachable"] is None and data["offline"] is True
        assert not any("DEVPICTL_CHECK_URL" in env for _, env in container.execs)

    def test_stopped_cache_is_not_asked(self, engine, status_devpi):
        scripted_container(engine, check=LISTED, status="exited")
        data = json.loads(invoke("status", "--json").stdout)
        assert data["state"] == "exited" and data["upstream_reachable"] is None


class TestUpstreamCheckDeadline:
    """The check script stops at its deadline even when the upstream keeps trickling bytes."""

    def test_trickling_upstream(self):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        stop = threading.Event()

        def trickle():
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(0.2):
                    try:
                        conn.sendall(b"<")
                    except OSError:
                        return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        started = time.monotonic()
        try:
            done = run_check(f"http://127.0.0.1:{port}/pip/", timeout=1)
        finally:
            stop.set()
            server.close()
        assert time.monotonic() - started < 5
        assert done.returncode == 1
        assert "no answer within 1 s" in done.stdout


# --- the bind-all warning --------------------------------------------------------------------


@pytest.fixture
def published(running_cache, monkeypatch):
    """The real up (CLI and core) on a running cache whose container is published on the address a test names."""
    engine, make, _ = running_cache
    monkeypatch.setattr(ctr, "connect", lambda: engine)

    def publish(host: str) -> None:
        container = make(False, configured(OFFICIAL))
        container.attrs["HostConfig"]["PortBindings"]["3141/tcp"][0]["HostIp"] = host

    return publish


class TestBindAllWarning:
    """The warning follows the address the container is published on, whatever chose it."""

    @pytest.mark.parametrize(
        "args, env, remembered, host",
        [
            (["--host", "0.0.0.0"], {}, None, "0.0.0.0"),
            ([], {"DEVPICTL_HOST": "0.0.0.0"}, None, "0.0.0.0"),
            ([], {}, "0.0.0.0", "0.0.0.0"),
            (["--host", "::"], {}, None, "::"),
            ([], {}, None, "0.0.0.0"),  # nothing asked for it: the container's published address decides
            (["--host", "192.0.2.10"], {}, None, "192.0.2.10"),  # one address, but not loopback
        ],
        ids=["flag", "environment", "remembered", "ipv6", "published-only", "lan-address"],
    )
    @pytest.mark.parametrize("json_output", [False, True])
    def test_warned_on_stderr_whatever_chose_the_host(self, published, args, env, remembered, host, json_output):
        published(host)
        if remembered:
            save_remembered(Instance("default"), {"host": remembered})
        result = invoke("up", *args, *(["--json"] if json_output else []), env=env)
        assert result.exit_code == 0, result.output
        warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warning) == 1, result.stderr
        assert f"published on {host}:3141" in warning[0]
        assert "anyone who can reach it can read the cache" in warning[0]
        assert "with the root password, write to it" in warning[0]
        assert "warning" not in result.stdout
        if json_output:
            json.loads(result.stdout)  # stdout stays pure JSON

    @pytest.mark.parametrize("host", ["127.0.0.1", "::1", "127.0.0.2"])
    def test_loopback_is_not_warned_about(self, published, host):
        published(host)
        result = invoke("up")
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
