"""Running the CLI in a test, and checking that a command documents every parameter, in its metadata and in the help it prints."""

from __future__ import annotations

from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from devpictl.cli import app

ENGINE_DOWN = "cannot reach the Docker engine (test): start Docker, or set DOCKER_HOST to a running engine"


def invoke(*args: str, env: dict[str, str] | None = None):
    """`devpictl ARGS...` in this process; the result has exit_code, stdout and stderr."""
    return CliRunner().invoke(app, list(args), env=env)


def undocumented_parameters(command, *path: str) -> list[str]:
    """The parameters of `devpictl PATH...` without help text, or whose help `--help` does not show.

    Every parameter of a Typer command is a TyperOption or TyperArgument; a check that
    finds none checks nothing, so that fails too.
    """
    params = [p for p in command.params if isinstance(p, (TyperOption, TyperArgument))]
    assert params, f"devpictl {' '.join(path)}: no Typer parameters found, so none would be checked"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    # Compared without whitespace: the help wraps, and breaks lines after hyphens.
    shown = "".join(result.output.split())
    return [p.name for p in params if not (p.help or "").strip() or "".join(p.help.split()) not in shown]


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
