"""The upstream check (templates/upstream_check.py) run here, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devpictl import image as img
from devpictl import layout, probe

# (status, body, extra headers) for a GET of a path with these request headers.
Answer = Callable[[str, dict[str, str]], tuple[int, bytes, dict[str, str]]]


@contextlib.contextmanager
def local_server(answer: Answer) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every GET with ``answer``; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            status, body, headers = answer(self.path, dict(self.headers))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_check(
    url: str, *, digest: bool = False, auth: dict | None = None, run_dir: Path | None = None, timeout: float = 10
) -> subprocess.CompletedProcess:
    """The check for ``url``; with ``auth``, the upstream-auth.json it reads from ``run_dir``."""
    script = img.render_template(probe.CHECK_SCRIPT)
    if run_dir is not None:
        run_dir.mkdir(exist_ok=True)
        if auth is not None:
            (run_dir / "upstream-auth.json").write_text(json.dumps(auth))
        script = script.replace(layout.RUN_DIR, str(run_dir))
    env = {k: v for k, v in os.environ.items() if k.lower() != "http_proxy"}
    env.update(DEVPICTL_CHECK_URL=url, DEVPICTL_CHECK_TIMEOUT=f"{timeout:g}", NO_PROXY="127.0.0.1")
    if digest:
        env["DEVPICTL_CHECK_WHAT"] = "digest"
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
