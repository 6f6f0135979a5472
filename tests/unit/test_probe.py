"""Asking an upstream from inside the cache container: the check's verdict, and its deadline (templates/upstream_check.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from devpictl import probe
from devpictl.errors import UpstreamUnreachable
from tests.unit.fakes import EMPTY_PAGE, FILES_PAGE, TUNA, FakeCache, FakeEngine, page_answer
from tests.unit.upstream_check import run_check


def exec_answering(code: int, output: str | bytes) -> FakeCache:
    """A cache whose upstream check (templates/upstream_check.py) ends with ``code`` and prints ``output``."""
    cache = FakeEngine().add("default").cache
    cache.scripts[probe.CHECK_SCRIPT] = (code, output.decode() if isinstance(output, bytes) else output)
    return cache


class TestInsideTheContainer:
    def test_check_upstream_passes_when_links_are_listed(self):
        cache = exec_answering(0, page_answer(f"{TUNA.url}/pip/", FILES_PAGE))
        probe.check_upstream(cache, TUNA.url, "pip")
        script, _, env = cache.ran[0]
        assert script == "upstream_check.py"
        assert env["DEVPICTL_CHECK_URL"] == f"{TUNA.url}/pip/"

    def test_check_upstream_refuses_a_page_without_links(self):
        with pytest.raises(UpstreamUnreachable, match="lists no files"):
            probe.check_upstream(exec_answering(0, page_answer(f"{TUNA.url}/pip/", EMPTY_PAGE)), TUNA.url, "pip")

    def test_check_upstream_refuses_an_unreadable_answer(self):
        with pytest.raises(UpstreamUnreachable, match="unreadable answer"):
            probe.check_upstream(exec_answering(0, b"12\n"), TUNA.url, "pip")

    def test_check_upstream_refuses_an_unreachable_upstream(self):
        with pytest.raises(UpstreamUnreachable, match="URLError: timed out") as info:
            probe.check_upstream(exec_answering(1, b"URLError: timed out\n"), TUNA.url, "pip")
        # Another mirror first; switching anyway comes last.
        message = str(info.value)
        assert "`devpictl mirrors test`" in message and "pick another" in message
        assert message.index("devpictl mirrors test") < message.index("--no-check")

    def test_an_untrusted_certificate_names_ca_bundle(self):
        answer = b"URLError: <urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed>\n"
        with pytest.raises(UpstreamUnreachable, match="does not trust its TLS certificate: pass --ca-bundle"):
            probe.check_upstream(exec_answering(1, answer), TUNA.url, "pip")


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
