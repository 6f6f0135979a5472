"""The progress interface the core reports to: the quiet one shows nothing, and the CLI's implements all of it."""

from __future__ import annotations

import inspect

import pytest

from devpictl.cli.ui import RichReporter
from devpictl.reporter import QuietReporter, Reporter

METHODS = [name for name, _ in inspect.getmembers(Reporter, inspect.isfunction) if not name.startswith("_")]


def test_the_interface_is_what_the_core_calls():
    assert sorted(METHODS) == ["counting", "log", "step", "transfer", "waiting"]


@pytest.mark.parametrize("cls", [QuietReporter, RichReporter])
def test_every_reporter_has_every_method_with_its_parameters(cls):
    for name in METHODS:
        assert list(inspect.signature(getattr(cls, name)).parameters) == list(inspect.signature(getattr(Reporter, name)).parameters)


def drive(reporter) -> None:
    """Everything the core may do with a reporter."""
    reporter.step("creating the container")
    reporter.log("Step 1/9 : FROM debian")
    with reporter.waiting("waiting for devpi"):
        pass
    with reporter.transfer("backing up") as advance:
        advance(1024)
    with reporter.counting("refreshing pages", 3) as done:
        done(3)


def test_the_quiet_reporter_says_nothing(capsys):
    drive(QuietReporter())
    assert capsys.readouterr() == ("", "")
