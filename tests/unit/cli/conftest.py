"""Every CLI test starts without a Docker engine: connect() records the call and fails as with none."""

from __future__ import annotations

import pytest

from devpictl import container as ctr
from devpictl.errors import EngineUnavailable
from tests.unit.clihelp import ENGINE_DOWN


@pytest.fixture(autouse=True)
def engine_calls(monkeypatch) -> list[str]:
    """No test here reaches Docker: connect() records the call and fails as with no engine."""
    calls: list[str] = []

    def connect():
        calls.append("connect")
        raise EngineUnavailable(ENGINE_DOWN)

    monkeypatch.setattr(ctr, "connect", connect)
    return calls
