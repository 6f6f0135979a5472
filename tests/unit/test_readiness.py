"""Waiting for a started cache: until devpi answers, until its mirror lists files; a failure that shows ends the wait at once."""

from __future__ import annotations

import datetime

import httpx
import pytest

from devpictl import cache as cache_module
from devpictl import readiness, reporter
from devpictl.cache import Cache
from devpictl.devpi import DevpiClient
from devpictl.errors import ReadinessTimeout
from tests.unit.fakes import EMPTY_PAGE, FILES_PAGE, FakeDevpi, FakeEngine


class FakeClock:
    """Stands in for the time module in devpictl.readiness: sleeping advances the clock at once."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(readiness, "time", fake)
    return fake


class TestWaitUntilReady:
    def test_returns_the_files_once_the_page_lists_some(self, clock):
        server = FakeDevpi()
        server.simple_pages = [
            httpx.Response(200, text=EMPTY_PAGE),  # still loading its mirror
            httpx.Response(502, text="Bad Gateway"),
            httpx.Response(200, text=FILES_PAGE),
        ]
        with server.client() as client:
            files = readiness.wait_until_ready(client, "pip", 60, reporter.QuietReporter())
        assert files == ["pip-24.0-py3-none-any.whl"]
        assert len(clock.sleeps) == 2
        assert server.calls() == [("GET", "/root/pypi/+simple/pip/")] * 3

    def test_a_captive_portal_is_not_ready(self, clock):
        server = FakeDevpi()
        portal = '<html><body><a href="/login">Sign in</a><a href="https://portal.example/">Wi-Fi terms</a></body></html>'
        server.simple_pages = [httpx.Response(200, text=portal)] * 20
        with server.client() as client, pytest.raises(ReadinessTimeout, match="listed no files"):
            readiness.wait_until_ready(client, "pip", 5, reporter.QuietReporter())

    def test_times_out_when_no_files_appear(self, clock):
        server = FakeDevpi()
        with server.client() as client, pytest.raises(ReadinessTimeout) as info:
            readiness.wait_until_ready(client, "pip", 5, reporter.QuietReporter())
        message = str(info.value)
        assert "'pip'" in message
        assert "within 5 s" in message
        assert "listed no files" in message
        assert clock.now >= 1005
        assert 5 <= len(server.requests) <= 7

    def test_timeout_names_the_last_upstream_problem(self, clock):
        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        with server.client() as client, pytest.raises(ReadinessTimeout, match="HTTP 502"):
            readiness.wait_until_ready(client, "pip", 2, reporter.QuietReporter())

    def test_unreachable_cache_times_out(self, clock):
        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        with DevpiClient("http://127.0.0.1:1", transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(ReadinessTimeout, match="cannot reach devpi"):
                readiness.wait_until_ready(client, "pip", 3, reporter.QuietReporter())

    def test_a_tls_failure_in_devpis_log_says_so_at_once_and_names_ca_bundle(self, clock):
        from devpictl.errors import UpstreamUnreachable

        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        container = FakeEngine().add("default")
        log = (
            "2026-01-01 12:00:00,000 ERROR [req1] error fetching https://mirror.example/simple/pip/: "
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)\n"
        )
        asked = []
        container.logs = lambda **kw: (asked.append(kw), log.encode())[1]
        since = datetime.datetime.now(datetime.UTC)
        with server.client() as client, pytest.raises(UpstreamUnreachable) as info:
            readiness.wait_until_ready(client, "pip", 180, reporter.QuietReporter(), Cache.of(container), since)
        assert asked[0]["since"] == since  # only what devpi logged during this `up`
        message = str(info.value)
        assert "TLS certificate (CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate" in message
        assert "--ca-bundle" in message
        assert clock.now < 1010  # not after the whole timeout

    def test_a_log_without_tls_failures_keeps_waiting(self, clock):
        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        container = FakeEngine().add("default")
        container.logs = lambda **kw: b"ERROR error fetching https://mirror.example/simple/pip/: ConnectTimeout\n"
        with server.client() as client, pytest.raises(ReadinessTimeout, match="HTTP 502"):
            readiness.wait_until_ready(client, "pip", 2, reporter.QuietReporter(), Cache.of(container))


class TestWaitForApi:
    """A container that stops or restarts during start-up fails `up` at once, not after the whole timeout."""

    @pytest.mark.parametrize(
        "states",
        [["running", "restarting"], ["running", "exited"], ["running", "running+1"]],
        ids=["restarting", "exited", "restarted-between-polls"],
    )
    def test_a_failing_container_is_a_failure(self, clock, states, monkeypatch):
        container = FakeEngine().add("default")
        container.attrs["RestartCount"] = 2  # restarts from before this `up` do not count
        polls = iter(states)

        def reload():
            state = next(polls, states[-1])
            container.status = state.removesuffix("+1")
            if state.endswith("+1"):
                container.attrs["RestartCount"] = 3

        container.reload = reload

        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        monkeypatch.setattr(
            cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=httpx.MockTransport(refuse))
        )
        with Cache.of(container) as cache, pytest.raises(ReadinessTimeout, match="exited during start-up"):
            readiness.wait_for_api(cache, 3600, reporter.QuietReporter())
        assert len(clock.sleeps) == 1

    def test_restarts_from_before_do_not_count(self, clock, monkeypatch):
        container = FakeEngine().add("default")
        container.attrs["RestartCount"] = 5
        answers = iter([httpx.ConnectError, None])

        def handle(request):
            error = next(answers)
            if error is not None:
                raise error("refused", request=request)
            return httpx.Response(200, json={"result": {}})

        monkeypatch.setattr(
            cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=httpx.MockTransport(handle))
        )
        with Cache.of(container) as cache:
            readiness.wait_for_api(cache, 60, reporter.QuietReporter())
