"""The error family: every expected failure has an exit code, and README's table documents each one."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from devpictl import errors

README = Path(__file__).resolve().parents[2] / "README.md"
FAMILY = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.DevpictlError)]


def documented_codes() -> set[int]:
    text = README.read_text()
    table = text[text.index("| code | meaning |") :]
    table = table[: table.index("\n\n")]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)}


@pytest.mark.parametrize("cls", FAMILY, ids=lambda cls: cls.__name__)
def test_every_error_exits_with_a_documented_code(cls):
    assert cls.exit_code in documented_codes()
    assert cls.exit_code != 0


def test_every_exit_code_constant_is_documented():
    constants = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert constants <= documented_codes()
    assert errors.EXIT_TERMINATED in documented_codes()


@pytest.mark.parametrize(
    "cls, code",
    [
        (errors.BadInput, 2),
        (errors.UnknownMirror, 2),
        (errors.MalformedURL, 2),
        (errors.EngineUnavailable, 3),
        (errors.EngineError, 3),
        (errors.PortInUse, 4),
        (errors.Conflict, 4),
        (errors.UpstreamUnreachable, 5),
        (errors.WarmIncomplete, 5),
        (errors.DevpiError, 6),
        (errors.LoginRefused, 6),
        (errors.CacheUnreachable, 6),
        (errors.PasswordUnconfirmed, 6),
        (errors.ReadinessTimeout, 7),
        (errors.CacheNotFound, 8),
        (errors.Interrupted, 130),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_the_code_of_each_kind_of_failure(cls, code):
    assert cls.exit_code == code


def test_sigterm_takes_the_path_of_ctrl_c():
    # Every `except KeyboardInterrupt` clean-up runs for SIGTERM too.
    assert issubclass(errors.Terminated, KeyboardInterrupt)
    assert not issubclass(errors.Terminated, errors.DevpictlError)
