"""The cache's metrics (templates/metrics.py): nginx's syslog lines counted, Prometheus' text format, sizes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devpictl import frontlog, page_policy
from devpictl import image as img
from tests.unit.fakes import LOG, POLICY_LOG, rendered_module


def load_script():
    """templates/metrics.py as the image runs it: frontlog.py beside it."""
    sys.modules.setdefault("frontlog", frontlog)
    sys.modules.setdefault("page_policy", page_policy)  # in devpi's site-packages, whose python runs the script
    return rendered_module("metrics.py", "devpictl_metrics_script")


metrics = load_script()


def syslog(line: str) -> str:
    """A line as nginx's access_log syslog:...,tag=devpictl,nohostname sends it."""
    return f"<190>Nov 25 10:00:00 devpictl: {line}"


def samples(text: str) -> dict:
    """{(name, labels as a sorted tuple): value} from Prometheus' text format, read by its own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_lines_are_counted_by_kind_and_result_and_parse_as_prometheus_text():
    counters = metrics.Counters()
    for line in LOG.splitlines():
        request = frontlog.read(syslog(line).partition(" devpictl: ")[2])
        if request:
            counters.add(request)
    counters.sizes(5000, {"root/pypi": 4000, 'odd"user/dev': 10})
    found = samples(counters.prometheus())

    def requests(kind, result):
        return found["devpictl_requests_total", (("kind", kind), ("result", result))]

    assert (requests("page", "local"), requests("page", "fetched"), requests("page", "failed")) == (1, 1, 1)
    assert (requests("file", "local"), requests("file", "fetched")) == (1, 1)
    assert (requests("metadata", "local"), requests("metadata", "fetched")) == (1, 0)
    assert sum(v for (name, _), v in found.items() if name == "devpictl_requests_total") == 6  # no health check
    assert found["devpictl_fetched_bytes_total", ()] == 11000
    assert found["devpictl_served_bytes_total", (("kind", "file"),)] == 22000
    assert found["devpictl_index_bytes", (("index", "root/pypi"),)] == 4000
    assert found["devpictl_index_bytes", (("index", 'odd"user/dev'),)] == 10
    assert found["devpictl_volume_bytes", ()] == 5000
    page = counters.page()
    assert (page["local"], page["fetched"], page["cache_bytes"]) == (3, 2, 5000)
    assert page["hourly"] == {"2026-11-25T10": {"local": 3, "fetched": 2}}


def test_what_the_page_policy_held_back_is_counted():
    counters = metrics.Counters()
    for line in POLICY_LOG.splitlines():
        request = frontlog.read(syslog(line).partition(" devpictl: ")[2])
        if request:
            counters.add(request)
    found = samples(counters.prometheus())
    assert (found["devpictl_held_back_pages_total", ()], found["devpictl_held_back_files_total", ()]) == (2, 4)
    assert found["devpictl_refused_requests_total", ()] == 1  # dpctl-evil's file: 403
    assert samples(metrics.Counters().prometheus())["devpictl_refused_requests_total", ()] == 0


def test_sizes_are_counted_per_index(tmp_path):
    data = tmp_path / "data"
    stored = data / "server" / "+files" / "root" / "pypi" / "+f" / "ab" / "cd"
    stored.mkdir(parents=True)
    (stored / "six.whl").write_bytes(b"x" * 300)
    private = data / "server" / "+files" / "team" / "dev" / "+f" / "ef"
    private.mkdir(parents=True)
    (private / "mine.whl").write_bytes(b"y" * 20)
    (data / "server" / ".sqlite").write_bytes(b"z" * 5)
    total, indexes = metrics.count_sizes(str(data), str(data / "server" / "+files"))
    assert (total, indexes) == (325, {"root/pypi": 300, "team/dev": 20})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_script_counts_what_nginx_sends_and_answers_prometheus(tmp_path):
    """The script as the entrypoint runs it: lines in by udp, /metrics out by tcp."""
    for module in ("frontlog.py", "page_policy.py"):  # beside it, and in the site-packages of the python that runs it
        (tmp_path / module).write_bytes((img.template_dir().parent / "devpictl" / module).read_bytes())
    (tmp_path / "metrics.py").write_text(img.render_template("metrics.py"))
    port = free_port()
    process = subprocess.Popen([sys.executable, str(tmp_path / "metrics.py"), "--port", str(port)])
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in LOG.splitlines():
                sock.sendto(syslog(line).encode(), ("127.0.0.1", port))
        for _ in range(100):  # the datagrams are read by another thread: wait until all six count
            found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text)
            if sum(v for (name, _), v in found.items() if name == "devpictl_requests_total") == 6:
                break
            time.sleep(0.1)
        assert sum(v for (name, _), v in found.items() if name == "devpictl_requests_total") == 6
        assert found["devpictl_requests_total", (("kind", "file"), ("result", "fetched"))] == 1
        page = httpx.get(f"http://127.0.0.1:{port}/stats.json", trust_env=False)
        assert page.headers["content-type"] == "application/json"
        assert json.loads(page.text)["local"] == 3
        assert httpx.get(f"http://127.0.0.1:{port}/other", trust_env=False).status_code == 404
    finally:
        process.terminate()
        process.wait()
