"""The command line through CliRunner: help, mirrors, build --print, and how errors reach the user."""

from __future__ import annotations

import json
from types import SimpleNamespace

import docker.errors
import pytest
import typer
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl.cli import app
from devpictl.container import connect as real_connect
from devpictl.errors import EngineUnavailable, UnknownMirror
from devpictl.mirrors import CATALOG, RETIRED
from tests.unit.clihelp import undocumented_parameters

ENGINE_DOWN = "cannot reach the Docker engine (test): start Docker, or set DOCKER_HOST to a running engine"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

runner = CliRunner()
COMMAND = typer.main.get_command(app)


@pytest.fixture(autouse=True)
def engine_calls(monkeypatch) -> list[str]:
    """No test here reaches Docker: connect() records the call and fails as with no engine."""
    calls: list[str] = []

    def connect():
        calls.append("connect")
        raise EngineUnavailable(ENGINE_DOWN)

    monkeypatch.setattr(ctr, "connect", connect)
    return calls


def invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env)


def assert_one_line_error(result, exit_code: int, *fragments: str) -> str:
    """The failure is one 'error:' line on stderr, with the class's exit code and no traceback."""
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.strip() == lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


class TestHelp:
    def test_app_has_help(self):
        result = invoke("--help")
        assert result.exit_code == 0
        assert "Stand up a devpi-server PyPI cache in Docker" in result.output
        assert COMMAND.help

    def test_version(self):
        from importlib.metadata import version

        result = invoke("--version")
        assert result.exit_code == 0, result.output
        assert result.output == f"devpictl {version('devpictl')}\n"

    def test_top_level_options_have_help(self):
        assert undocumented_parameters(COMMAND) == []

    def test_expected_commands_exist(self):
        assert set(COMMAND.commands) == {"build", "up", "status", "logs", "down", "set-upstream", "mirrors", "pip-config", "backup", "restore", "password", "ls", "ps", "warm", "prune", "stats", "export"}

    @pytest.mark.parametrize("name", sorted(COMMAND.commands))
    def test_every_command_has_help(self, name):
        command = COMMAND.commands[name]
        assert command.help and command.help.strip()
        result = invoke(name, "--help")
        assert result.exit_code == 0, result.output
        assert command.help.strip().splitlines()[0] in result.output
        assert "Example: devpictl" in result.output

    @pytest.mark.parametrize("name", sorted(COMMAND.commands))
    def test_every_option_has_help(self, name):
        assert undocumented_parameters(COMMAND.commands[name], name) == []

    def test_help_does_not_need_the_engine(self, engine_calls):
        invoke("up", "--help")
        assert engine_calls == []


class TestMirrors:
    def test_lists_every_name_and_url(self):
        result = invoke("mirrors")
        assert result.exit_code == 0, result.output
        for upstream in CATALOG.values():
            assert upstream.name in result.output
            if upstream.url:
                assert upstream.url in result.output
        for retired in RETIRED:
            assert f"not offered: {retired}" in result.output

    def test_json(self):
        result = invoke("mirrors", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert [m["name"] for m in data] == list(CATALOG)
        assert {m["name"]: m["url"] for m in data} == {u.name: u.url for u in CATALOG.values()}
        assert data[0] == {"name": "pypi", "url": None, "note": CATALOG["pypi"].note}


class TestBuildPrint:
    def test_prints_the_dockerfile_without_the_engine(self, engine_calls):
        result = invoke("build", "--print", "--base-image", "registry.local/python:3.11")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("# Rendered by devpictl")
        lines = result.stdout.splitlines()
        assert "FROM registry.local/python:3.11 AS install" in lines
        assert "FROM registry.local/python:3.11" in lines
        assert engine_calls == []

    def test_pip_mirror_and_web(self):
        result = invoke("build", "--print", "--pip-mirror", "tuna", "--web")
        assert result.exit_code == 0, result.output
        assert "--index-url https://pypi.tuna.tsinghua.edu.cn/simple" in result.stdout
        assert "'devpi-web==5.1.1'" in result.stdout

    def test_base_image_from_the_environment(self):
        result = invoke("build", "--print", env={"DEVPICTL_BASE_IMAGE": "envbase:1"})
        assert "FROM envbase:1 AS install" in result.stdout

    def test_labels_from_the_environment_are_checked(self):
        result = invoke("build", "--print", env={"DEVPICTL_LABELS": "team=ci"})
        assert result.exit_code == 0, result.output
        result = invoke("build", "--print", env={"DEVPICTL_LABELS": "teamci"})
        assert result.exit_code == 2, result.output

    def test_wheelhouse_and_ca_bundle(self, tmp_path):
        wheels = tmp_path / "wheels"
        wheels.mkdir()
        (wheels / "devpi_server-6.20.3-py3-none-any.whl").write_bytes(b"x")
        ca = tmp_path / "ca.pem"
        ca.write_text(PEM)
        result = invoke("build", "--print", "--wheelhouse", str(wheels), "--ca-bundle", str(ca))
        assert result.exit_code == 0, result.output
        assert "--no-index --find-links /tmp/devpictl/wheelhouse" in result.stdout
        assert "ENV PIP_CERT=/tmp/devpictl/ca-bundle.pem" in result.stdout


class TestBadInput:
    """Each is refused before devpictl asks the engine anything."""

    @pytest.mark.parametrize(
        "args, fragments",
        [
            (["up", "--mirror", "douban"], ["'douban' is not offered", "'tuna'"]),
            (["up", "--mirror", "ustc"], ["'ustc' is not offered", "'bfsu'"]),
            (["up", "--mirror", "nosuch"], ["unknown mirror 'nosuch'", "tuna"]),
            (["up", "--mirror", "http://"], ["'http://' is not an index URL"]),
            (["up", "--mirror", "http://host:99999/simple"], ["invalid port"]),
            (["up", "--port", "0"], ["port 0 is out of range"]),
            (["up", "--port", "70000"], ["port 70000 is out of range"]),
            (["up", "--name", "Bad Name!"], ["cache name 'Bad Name!' is not allowed"]),
            (["up", "--pip-mirror", "douban"], ["'douban' is not offered"]),
            (["set-upstream", "nosuch"], ["unknown mirror 'nosuch'"]),
            (["set-upstream", "tuna", "--name", "UPPER"], ["cache name 'UPPER' is not allowed"]),
            (["down", "--name", "-x"], ["cache name '-x' is not allowed"]),
            (["logs", "--name", "Bad Name!"], ["is not allowed"]),
            (["pip-config", "--name", "Bad Name!"], ["is not allowed"]),
            (["build", "--wheelhouse", "/nonexistent"], ["wheelhouse /nonexistent is not a directory"]),
            (["build", "--print", "--devpi-server-version", "6.10.0"], ["needs devpi-server 6.17.0 or newer, not 6.10.0"]),
            (["up", "--devpi-server-version", "6.x"], ["'6.x' is not a release number"]),
            (["backup", "/nonexistent/dir/cache.tar.gz"], ["directory /nonexistent/dir does not exist"]),
        ],
    )
    def test_one_line_usage_error(self, args, fragments, engine_calls):
        assert_one_line_error(invoke(*args), 2, *fragments)
        assert engine_calls == []

    def test_backup_never_overwrites_a_file(self, tmp_path, engine_calls):
        existing = tmp_path / "cache.tar.gz"
        existing.write_bytes(b"keep me")
        assert_one_line_error(invoke("backup", str(existing)), 4, "already exists")
        assert existing.read_bytes() == b"keep me"
        assert engine_calls == []

    def test_status_checks_the_name_before_the_engine(self, engine_calls):
        assert_one_line_error(invoke("status", "--name", "a/b"), 2, "cache name 'a/b' is not allowed")
        assert engine_calls == []

    def test_build_with_non_pem_ca_bundle(self, tmp_path, engine_calls):
        path = tmp_path / "ca.der"
        path.write_bytes(b"\x30\x82 not a pem file")
        assert_one_line_error(invoke("build", "--ca-bundle", str(path)), 2, "holds no PEM certificate")
        assert engine_calls == []

    def test_build_with_missing_ca_bundle(self, tmp_path, engine_calls):
        assert_one_line_error(invoke("build", "--ca-bundle", str(tmp_path / "missing.pem")), 2, "cannot read CA bundle")
        assert engine_calls == []

    def test_up_with_non_pem_ca_bundle(self, tmp_path, engine_calls):
        path = tmp_path / "ca.txt"
        path.write_text("not a certificate\n")
        assert_one_line_error(invoke("up", "--ca-bundle", str(path)), 2, "holds no PEM certificate")
        assert engine_calls == []

    def test_bad_labels(self, engine_calls):
        result = invoke("up", env={"DEVPICTL_LABELS": "bad"})
        assert_one_line_error(result, 2, "DEVPICTL_LABELS item 'bad' is not KEY=VALUE")
        assert engine_calls == []

    def test_mirror_from_the_environment(self, engine_calls):
        assert_one_line_error(invoke("up", env={"DEVPICTL_MIRROR": "douban"}), 2, "'douban' is not offered")
        assert engine_calls == []

    def test_port_from_the_environment(self, engine_calls):
        assert_one_line_error(invoke("up", env={"DEVPICTL_PORT": "0"}), 2, "port 0 is out of range")
        assert engine_calls == []

    def test_up_with_missing_wheelhouse(self, engine_calls):
        assert_one_line_error(invoke("up", "--wheelhouse", "/nonexistent"), 2, "wheelhouse /nonexistent is not a directory")
        assert engine_calls == []


class TestEngineUnavailable:
    @pytest.mark.parametrize(
        "args",
        [
            ["up"],
            ["up", "--mirror", "tuna", "--port", "3142", "--name", "ci-1"],
            ["status"],
            ["logs"],
            ["down"],
            ["set-upstream", "tuna"],
            ["pip-config"],
            ["build"],
        ],
    )
    def test_exit_code_3_with_the_fix(self, args, engine_calls):
        assert_one_line_error(invoke(*args), 3, "cannot reach the Docker engine", "start Docker")
        assert engine_calls == ["connect"]

    @pytest.mark.parametrize(
        ("docker_says", "message"),
        [
            (
                "Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))",
                "cannot reach the Docker engine (no engine socket): start Docker, or set DOCKER_HOST to a running engine",
            ),
            (
                "Error while fetching server API version: ('Connection aborted.', PermissionError(13, 'Permission denied'))",
                "cannot reach the Docker engine (permission denied on the engine's socket): add your user to the docker group and log in again, or run as root",
            ),
            (
                "Error while fetching server API version: HTTPConnectionPool(host='127.0.0.1', port=2375): Max retries exceeded"
                " (Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))",
                "cannot reach the Docker engine (connection refused): start Docker, or set DOCKER_HOST to a running engine",
            ),
            (
                "Error while fetching server API version: Not supported URL scheme http+docker",
                "cannot reach the Docker engine (Error while fetching server API version: Not supported URL scheme http+docker):"
                " start Docker, or set DOCKER_HOST to a running engine",
            ),
        ],
    )
    def test_real_connect_failure_is_translated(self, monkeypatch, docker_says, message):
        """connect() itself turns docker-py's exception into EngineUnavailable, keeping the reason."""
        def from_env(**kwargs):
            raise docker.errors.DockerException(docker_says)

        monkeypatch.setattr(docker, "from_env", from_env)
        with pytest.raises(EngineUnavailable) as raised:
            real_connect()
        assert str(raised.value) == message


class TestDebug:
    def test_debug_flag_propagates_the_error(self):
        result = invoke("--debug", "up", "--mirror", "douban")
        assert isinstance(result.exception, UnknownMirror)
        assert "douban" in str(result.exception)
        assert "error:" not in result.output

    def test_debug_from_the_environment(self):
        result = invoke("up", "--mirror", "douban", env={"DEVPICTL_DEBUG": "1"})
        assert isinstance(result.exception, UnknownMirror)

    def test_debug_propagates_engine_errors(self):
        result = invoke("--debug", "status")
        assert isinstance(result.exception, EngineUnavailable)
        assert str(result.exception) == ENGINE_DOWN

    def test_without_debug_the_exception_is_not_raised(self):
        result = invoke("up", "--mirror", "douban")
        assert isinstance(result.exception, SystemExit)


class FakeContainer:
    """A running cache container, as find_container and local_base_url read it."""

    def __init__(self, name: str = "default", port: int = 3141):
        self.name = f"devpictl-{name}"
        self.status = "running"
        self.labels = {"devpictl.managed": "1", "devpictl.instance": name}
        self.attrs = {"HostConfig": {"PortBindings": {"3141/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}}


class FakeEngine:
    def __init__(self, *containers: FakeContainer):
        self.containers = SimpleNamespace(get=self.get)
        self.by_name = {c.name: c for c in containers}

    def get(self, name):
        try:
            return self.by_name[name]
        except KeyError:
            raise docker.errors.NotFound(f"No such container: {name}") from None


class TestPipConfig:
    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine(FakeContainer("default", 3141), FakeContainer("ci", 3150))
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    def test_shows_the_settings(self, engine):
        result = invoke("pip-config")
        assert result.exit_code == 0, result.output
        assert result.stdout == "[global]\nindex-url = http://127.0.0.1:3141/root/pypi/+simple/\ntrusted-host = 127.0.0.1\n"

    def test_write_sets_the_user_file(self, engine, isolation):
        path = isolation / ".config" / "pip" / "pip.conf"
        path.parent.mkdir(parents=True)
        path.write_text("[global]\ntimeout = 60\n")
        result = invoke("pip-config", "--write", "--name", "ci", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["index_url"] == "http://127.0.0.1:3150/root/pypi/+simple/"
        assert data["written"] is True
        pip = data["tools"]["pip"]
        assert pip["file"] == str(path)
        assert open(pip["backup"]).read() == "[global]\ntimeout = 60\n"  # the original, kept in devpictl's data dir
        assert path.read_text() == (
            "[global]\ntimeout = 60\nindex-url = http://127.0.0.1:3150/root/pypi/+simple/\ntrusted-host = 127.0.0.1\n"
        )

    def test_missing_cache(self, engine):
        assert_one_line_error(invoke("pip-config", "--name", "nosuch"), 8, "no cache named 'nosuch'", "devpictl up --name nosuch")


class TestLogs:
    LOG = (
        "2026-11-25 10:55:16,670 INFO  [req0] GET /+api\n"
        '2026-11-25T10:55:16+00:00 front 127.0.0.1 "GET /+api HTTP/1.1" 200 310 cache=- disk=- 0.004 s "devpictl-healthcheck"\n'
        "2026-11-25 10:55:19,570 INFO  [req9] GET /root/pypi/+simple/six/\n"
        '2026-11-25T10:55:19+00:00 front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 801 cache=MISS disk=- 0.213 s "pip/24.1"\n'
        '2026-11-25T10:55:20+00:00 front 172.17.0.1 "GET /+api HTTP/1.1" 200 310 cache=- disk=- 0.003 s "devpi-client/7.3.0"'
    )

    @pytest.fixture
    def cache_log(self, monkeypatch):
        from tests.unit.fakes import FakeEngine

        engine = FakeEngine()
        container = engine.add("default")
        # devpi's and nginx's output arrive in chunks that split lines anywhere.
        data = self.LOG.encode()
        container.logs = lambda stream=False, **kw: iter([data[:50], data[50:200], data[200:]]) if stream else data
        monkeypatch.setattr(ctr, "connect", lambda: engine)

    def test_health_checks_are_left_out(self, cache_log):
        result = invoke("logs")
        assert result.exit_code == 0, result.output
        lines = self.LOG.splitlines()
        assert result.stdout.splitlines() == [lines[2], lines[3], lines[4]]

    def test_all_shows_everything_and_follow_joins_chunks(self, cache_log):
        assert invoke("logs", "--all").stdout == self.LOG
        assert invoke("logs", "--all", "--follow").stdout == self.LOG


class TestCompose:
    """Habits people bring from other tools."""

    def test_down_v_is_down_volumes(self, monkeypatch):
        from devpictl import cache as core

        seen = {}
        monkeypatch.setattr(ctr, "connect", lambda: object())
        monkeypatch.setattr(core, "down", lambda engine, instance, volumes: seen.setdefault("volumes", volumes) and [])
        result = invoke("down", "-v", "--yes")
        assert result.exit_code == 0, result.output
        assert seen == {"volumes": True}

    def test_shell_completion_is_offered(self):
        shown = invoke("--help").output
        assert "--install-completion" in shown and "--show-completion" in shown
