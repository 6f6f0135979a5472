"""The cache commands through CliRunner (devpictl/cli/cache.py): logs, and habits people bring from compose."""

from __future__ import annotations

import pytest

from devpictl import container as ctr
from tests.unit.clihelp import invoke
from tests.unit.fakes import FakeEngine


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
        from devpictl import lifecycle

        seen = {}
        monkeypatch.setattr(ctr, "connect", lambda: object())
        monkeypatch.setattr(lifecycle, "down", lambda engine, instance, volumes: seen.setdefault("volumes", volumes) and [])
        result = invoke("down", "-v", "--yes")
        assert result.exit_code == 0, result.output
        assert seen == {"volumes": True}

    def test_shell_completion_is_offered(self):
        shown = invoke("--help").output
        assert "--install-completion" in shown and "--show-completion" in shown
