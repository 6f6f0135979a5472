"""A real PEP 503 index on 127.0.0.1 that answers the way a test says (fast, slow, failing, silent, redirecting)."""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WHEEL = os.urandom(300_000)
NEWEST = "pip-24.0-py3-none-any.whl"
# Relative links as real mirrors write them; the newest wheel is neither first
# nor last, and a newer but yanked wheel must be passed over.
PAGE = f"""<!DOCTYPE html>
<html><body>
<a href="../../packages/pip-23.3.2-py3-none-any.whl#sha256=00">pip-23.3.2-py3-none-any.whl</a><br>
<a href="../../packages/{NEWEST}#sha256=00" data-requires-python="&gt;=3.7">{NEWEST}</a><br>
<a href="../../packages/pip-24.0.tar.gz#sha256=00">pip-24.0.tar.gz</a><br>
<a href="../../packages/pip-25.0-py3-none-any.whl#sha256=00" data-yanked="broken">pip-25.0-py3-none-any.whl</a><br>
<a href="../../packages/pip-9.0.3-py2.py3-none-any.whl#sha256=00">pip-9.0.3-py2.py3-none-any.whl</a><br>
</body></html>
"""


@dataclass
class Behaviour:
    """How a LocalIndex answers."""

    page_status: int = 200
    location: str | None = None
    page: str = PAGE
    first_byte_delay: float = 0.0  # before the simple page's status line
    chunk: int = len(WHEEL)
    chunk_delay: float = 0.0  # between chunks of the wheel
    stall_after_first_chunk: bool = False
    wheel_status: int = 200
    paths: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        b: Behaviour = self.server.behaviour
        b.paths.append(self.path)
        if self.path.startswith("/simple/"):
            self.server.stop.wait(b.first_byte_delay)
            if b.location:
                self._send(b.page_status, b"", {"Location": b.location})
            elif b.page_status != 200:
                self._send(b.page_status, b"upstream broke\n")
            else:
                self._send(200, b.page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        elif self.path.startswith("/packages/") and b.wheel_status != 200:
            self._send(b.wheel_status, b"gone\n")
        elif self.path.startswith("/packages/") and self.path.endswith(".whl"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(WHEEL)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            for start in range(0, len(WHEEL), b.chunk):
                self.wfile.write(WHEEL[start : start + b.chunk])
                self.wfile.flush()
                if b.stall_after_first_chunk:
                    self.server.stop.wait(30)
                    return
                self.server.stop.wait(b.chunk_delay)
        else:
            self._send(404, b"not found\n")

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up mid-wheel is expected here


class LocalIndex:
    """A PEP 503 index on 127.0.0.1 serving one project, ``pip``, the way ``behaviour`` says."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.behaviour = self.behaviour
        self.server.stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def __enter__(self) -> LocalIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop.set()
        self.server.shutdown()
        self.server.server_close()


class SilentPort:
    """A port that accepts connections (the kernel does) but never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/simple"

    def __enter__(self) -> SilentPort:
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()


def closed_port_url() -> str:
    """A URL whose port refuses connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/simple"
