"""The cache's metrics, in Prometheus' text format (runs inside the container, beside nginx and devpi).

    metrics.py --port {{ metrics_port }}

nginx sends each request line (log_format devpictl) here as a syslog datagram to
127.0.0.1:PORT/udp; this process reads it the way `devpictl stats` does
(frontlog.py, copied beside this script; page_policy.py, in devpi's site-packages,
tells the policy's refusals) and counts it. Every two minutes it
counts the volume's size and the stored files of each index (a walk over a
large cache takes a while; nobody needs it to the second). It answers on
127.0.0.1:PORT/tcp, behind the front server:

    /metrics      the counters and sizes, for Prometheus (/+devpictl/metrics outside)
    /stats.json   the size and hit ratio for the page at / (/+devpictl/stats.json)

Counters start at zero when the container starts, as Prometheus expects of a
counter (its rate() and increase() see the reset).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import frontlog
import page_policy

DATA = "{{ data_dir }}"
FILES = "{{ files_dir }}"
SIZE_EVERY = 120  # seconds between two counts of the volume
HOURS_KEPT = 48  # hours of hit counts for the page's picture


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.time()
        self.requests = {(kind, result): 0 for kind in frontlog.KINDS for result in frontlog.RESULTS}
        self.served = dict.fromkeys(frontlog.KINDS, 0)
        self.fetched_bytes = 0
        self.held_back_pages = 0  # page answers the page policy left young files off
        self.held_back_files = 0  # the files they left off, summed over the answers
        self.refused = 0  # requests for the files of projects the policy refuses (deny, allow-only): 403
        self.hourly: dict[str, list[int]] = {}  # "YYYY-MM-DDTHH" -> [local, fetched] of pages, files and metadata
        self.volume_bytes: int | None = None
        self.index_bytes: dict[str, int] = {}
        self.counted_at: float | None = None

    def add(self, request: frontlog.Request) -> None:
        with self.lock:
            self.requests[request.kind, request.result] += 1
            self.served[request.kind] += request.sent
            if request.kind == "file" and request.result == "fetched":
                self.fetched_bytes += request.sent
            if request.held_back:
                self.held_back_pages += 1
                self.held_back_files += request.held_back
            if page_policy.refused_project(request.path, request.status) is not None:
                self.refused += 1
            if request.kind != "other" and request.result in ("local", "fetched"):
                hour = self.hourly.setdefault(request.time[:13], [0, 0])
                hour[request.result == "fetched"] += 1
                for old in sorted(self.hourly)[:-HOURS_KEPT]:
                    del self.hourly[old]

    def sizes(self, volume: int, indexes: dict[str, int]) -> None:
        with self.lock:
            self.volume_bytes, self.index_bytes, self.counted_at = volume, indexes, time.time()

    def prometheus(self) -> str:
        with self.lock:
            lines = [
                "# HELP devpictl_requests_total Requests the front server answered, health checks and scrapes left out.",
                "# TYPE devpictl_requests_total counter",
                *(sample("devpictl_requests_total", n, kind=k, result=r) for (k, r), n in self.requests.items()),
                "# HELP devpictl_served_bytes_total Body bytes sent to clients.",
                "# TYPE devpictl_served_bytes_total counter",
                *(sample("devpictl_served_bytes_total", n, kind=k) for k, n in self.served.items()),
                "# HELP devpictl_fetched_bytes_total Bytes of files fetched from the upstream (on their first request).",
                "# TYPE devpictl_fetched_bytes_total counter",
                f"devpictl_fetched_bytes_total {self.fetched_bytes}",
                "# HELP devpictl_held_back_pages_total Pages served with files the page policy left off for their age.",
                "# TYPE devpictl_held_back_pages_total counter",
                f"devpictl_held_back_pages_total {self.held_back_pages}",
                "# HELP devpictl_held_back_files_total Files the page policy left off the pages served, summed over them.",
                "# TYPE devpictl_held_back_files_total counter",
                f"devpictl_held_back_files_total {self.held_back_files}",
                "# HELP devpictl_refused_requests_total Requests for files of projects the page policy refuses (deny, allow-only): 403.",
                "# TYPE devpictl_refused_requests_total counter",
                f"devpictl_refused_requests_total {self.refused}",
                "# HELP devpictl_start_time_seconds When the counters started (the container's start).",
                "# TYPE devpictl_start_time_seconds gauge",
                f"devpictl_start_time_seconds {self.started:.3f}",
            ]
            if self.counted_at is not None:
                lines += [
                    "# HELP devpictl_volume_bytes Bytes of the files on the cache's volume, counted every two minutes.",
                    "# TYPE devpictl_volume_bytes gauge",
                    f"devpictl_volume_bytes {self.volume_bytes}",
                    "# HELP devpictl_index_bytes Bytes of the stored files of each index, counted every two minutes.",
                    "# TYPE devpictl_index_bytes gauge",
                    *(sample("devpictl_index_bytes", n, index=i) for i, n in sorted(self.index_bytes.items())),
                    "# HELP devpictl_sizes_counted_time_seconds When the sizes were counted.",
                    "# TYPE devpictl_sizes_counted_time_seconds gauge",
                    f"devpictl_sizes_counted_time_seconds {self.counted_at:.3f}",
                ]
        return "\n".join(lines) + "\n"

    def page(self) -> dict:
        with self.lock:
            local = sum(n for (k, r), n in self.requests.items() if k != "other" and r == "local")
            fetched = sum(n for (k, r), n in self.requests.items() if k != "other" and r == "fetched")
            return {
                "cache_bytes": self.volume_bytes,
                "counted_at": self.counted_at,
                "since": self.started,
                "local": local,
                "fetched": fetched,
                "hourly": {hour: {"local": n[0], "fetched": n[1]} for hour, n in sorted(self.hourly.items())},
            }


def label(value: str) -> str:
    """A label value in Prometheus' text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample(name: str, value: int, **labels: str) -> str:
    """One line of Prometheus' text format: ``name{label="value",...} value``."""
    return name + "{" + ",".join(f'{key}="{label(text)}"' for key, text in labels.items()) + "} " + str(value)


def count_sizes(data: str = DATA, files: str = FILES) -> tuple[int, dict[str, int]]:
    """Bytes of every file under ``data``, and of the stored files of each index (files/USER/INDEX)."""
    total = 0
    indexes: dict[str, int] = {}
    for folder, _, names in os.walk(data):
        inside = os.path.relpath(folder, files).split(os.sep)
        index = "/".join(inside[:2]) if len(inside) >= 2 and inside[0] != ".." else None
        for name in names:
            try:
                size = os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # removed meanwhile
                continue
            total += size
            if index:
                indexes[index] = indexes.get(index, 0) + size
    return total, indexes


def keep_counting_sizes(counters: Counters) -> None:
    while True:
        counters.sizes(*count_sizes())
        time.sleep(SIZE_EVERY)


def receive(counters: Counters, sock: socket.socket) -> None:
    """Count the request lines nginx sends (syslog: "<PRI>TIME devpictl: LINE")."""
    while True:
        datagram = sock.recv(65536).decode("utf-8", "replace")
        request = frontlog.read(datagram.partition(" devpictl: ")[2])
        if request is not None:
            counters.add(request)


def server(counters: Counters, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                body, kind = counters.prometheus().encode(), "text/plain; version=0.0.4; charset=utf-8"
            elif self.path == "/stats.json":
                body, kind = json.dumps(counters.page()).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # the front server logs the requests
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    counters = Counters()
    # Both sockets are bound before anything runs: once /metrics answers, nginx's lines arrive.
    lines = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Room for a burst of lines while this process is busy (the kernel caps it at rmem_max).
    lines.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    lines.bind(("127.0.0.1", args.port))
    http = server(counters, args.port)
    threading.Thread(target=receive, args=(counters, lines), daemon=True).start()
    threading.Thread(target=keep_counting_sizes, args=(counters,), daemon=True).start()
    http.serve_forever()


if __name__ == "__main__":
    main()
