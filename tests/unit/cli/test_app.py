"""The app as a whole through CliRunner (devpictl/cli/__init__.py): help, bad input, and how errors reach the user."""

from __future__ import annotations

import docker.errors
import pytest
import typer
from typer.core import TyperGroup

from devpictl.cli import app
from devpictl.container import connect as real_connect
from devpictl.errors import EngineUnavailable, Terminated, UnknownMirror
from tests.unit.clihelp import ENGINE_DOWN, assert_one_line_error, invoke, undocumented_parameters

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

COMMAND = typer.main.get_command(app)
# Groups whose commands are all subcommands (`index create`, `user ls`): each subcommand is checked as a command.
GROUPS = {name: command for name, command in COMMAND.commands.items() if isinstance(command, TyperGroup) and not command.params}
COMMAND_PATHS = sorted(
    [(name,) for name in COMMAND.commands if name not in GROUPS] + [(name, sub) for name, group in GROUPS.items() for sub in group.commands]
)


def command_at(path: tuple[str, ...]):
    command = COMMAND.commands[path[0]]
    return command.commands[path[1]] if len(path) > 1 else command


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
        assert set(COMMAND.commands) == {
            "build",
            "up",
            "status",
            "logs",
            "down",
            "set-upstream",
            "mirrors",
            "pip-config",
            "backup",
            "restore",
            "password",
            "ls",
            "ps",
            "warm",
            "prune",
            "stats",
            "export",
            "index",
            "user",
            "upload-config",
            "set-policy",
        }

    @pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
    def test_every_command_has_help(self, path):
        command = command_at(path)
        assert command.help and command.help.strip()
        result = invoke(*path, "--help")
        assert result.exit_code == 0, result.output
        assert " ".join(command.help.strip().splitlines()[0].split()) in " ".join(result.output.split())
        assert "Example: devpictl" in result.output

    @pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
    def test_every_option_has_help(self, path):
        assert undocumented_parameters(command_at(path), *path) == []

    @pytest.mark.parametrize("name", sorted(GROUPS))
    def test_every_command_group_has_help(self, name):
        result = invoke(name, "--help")
        assert result.exit_code == 0, result.output
        assert " ".join(COMMAND.commands[name].help.split()) in " ".join(result.output.split())

    def test_help_does_not_need_the_engine(self, engine_calls):
        invoke("up", "--help")
        assert engine_calls == []


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


class TestInterrupted:
    """A signal where no command says more still gives the one error line README promises."""

    @pytest.mark.parametrize(("signal_class", "code", "name"), [(KeyboardInterrupt, 130, "Ctrl-C"), (Terminated, 143, "SIGTERM")])
    def test_one_line_and_the_signals_exit_code(self, monkeypatch, signal_class, code, name):
        from devpictl import container as ctr

        def connect():
            raise signal_class()

        monkeypatch.setattr(ctr, "connect", connect)
        assert_one_line_error(invoke("status"), code, f"stopped by {name} before `devpictl status` finished", "run it again")
