"""devpictl stats: the front server's request lines counted, and the command that shows them."""

from __future__ import annotations

import datetime
import json

from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import layout
from devpictl import stats as core
from devpictl.cli import app
from tests.unit.fakes import LOG, POLICY_LOG, FakeEngine, T


def test_counts_what_was_served_locally_and_what_was_fetched():
    stats = core.count(LOG.splitlines())
    data = stats.as_dict()
    assert data["since"] == T.format(0)
    assert data["requests"] == 6  # the health check and devpi's own lines are left out
    assert data["pages"] == {"local": 1, "fetched": 1, "hit_ratio": 0.5}
    assert data["files"] == {"local": 1, "fetched": 1, "hit_ratio": 0.5}
    assert data["metadata"] == {"local": 1, "fetched": 0, "hit_ratio": 1.0}
    assert (data["bytes_served"], data["bytes_fetched"]) == (800 + 800 + 11000 + 11000 + 900 + 50, 11000)
    assert data["top_projects"][0] == {"project": "six", "requests": 4}
    assert {"project": "django", "requests": 1} in data["top_projects"]
    assert data["hourly_requests"] == {"2026-11-25T10": 6}


def test_only_lines_since_count():
    since = datetime.datetime.fromisoformat(T.format(3))
    assert core.count(LOG.splitlines(), since).requests == 3


def test_the_command(monkeypatch):
    engine = FakeEngine()
    container = engine.add("default")
    container.cache.usages[f"{layout.FILES_DIR}/*/*"] = {"/data/server/+files/root/pypi": 123456, "/data/server/+files/root/dev": 2048}
    container.logs = lambda **kw: LOG.encode()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    text = CliRunner().invoke(app, ["stats", "--since", "100w"])
    assert text.exit_code == 0, text.output
    assert "  simple pages: 50% from the cache (1 of 2)" in text.stdout
    assert "          size: root/dev 3 kB, root/pypi 124 kB" in text.stdout
    data = json.loads(CliRunner().invoke(app, ["stats", "--since", "100w", "--json"]).stdout)
    assert data["index_bytes"] == {"root/pypi": 123456, "root/dev": 2048}


def test_a_bad_since_is_one_line():
    result = CliRunner().invoke(app, ["stats", "--since", "forever"])
    assert result.exit_code == 2
    assert "--since 'forever' is not a duration" in result.stderr


def test_hours_with_their_hit_ratio_quiet_hours_too():
    lines = [
        '2026-11-25T08:10:00+00:00 front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=MISS disk=- 0.2 s "pip/24.0"',
        '2026-11-25T10:10:00+00:00 front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=HIT disk=- 0.0 s "pip/24.0"',
        '2026-11-25T10:20:00+00:00 front 172.17.0.1 "GET /root/pypi/+f/ab/cd/six-1.16.0-py2.py3-none-any.whl HTTP/1.1" 200 9 cache=- disk=disk 0.0 s "pip/24.0"',
        '2026-11-25T10:30:00+00:00 front 172.17.0.1 "GET /root/pypi/+simple/six/ HTTP/1.1" 200 800 cache=MISS disk=- 0.0 s "pip/24.0"',
        '2026-11-25T10:40:00+00:00 front 172.17.0.1 "GET /+api HTTP/1.1" 200 300 cache=- disk=- 0.0 s "curl/8"',
    ]
    stats = core.count(lines)
    hours = [(h.hour, h.requests, h.hit_ratio) for h in core.timeline(stats)]
    assert hours == [("2026-11-25T08", 1, 0.0), ("2026-11-25T09", 0, None), ("2026-11-25T10", 4, 2 / 3)]
    assert stats.as_dict()["hourly_hit_ratio"] == {"2026-11-25T08": 0.0, "2026-11-25T10": 2 / 3}
    assert [h.hour for h in core.timeline(stats, hours=2)] == ["2026-11-25T09", "2026-11-25T10"]


def test_the_command_draws_traffic_and_hit_ratio_per_hour(monkeypatch):
    engine = FakeEngine()
    container = engine.add("default")
    late = LOG.replace("10:06:00", "12:06:00").replace("10:04:00", "12:04:00")  # a 404 and a metadata HIT two hours on
    container.logs = lambda **kw: late.encode()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    text = CliRunner().invoke(app, ["stats", "--since", "100w"])
    assert text.exit_code == 0, text.output
    assert "      per hour: █▁▄  requests (peak 4)" in text.stdout
    # 10h: 2 of 4 from the cache; 11h: nothing; 12h: the metadata HIT (the 404 is no hit or miss)
    assert "     hit ratio: ▅ █  per hour" in text.stdout
    assert "         hours: 2026-11-25T10h to 2026-11-25T12h UTC" in text.stdout


def test_what_the_page_policy_held_back_and_refused_old_lines_too():
    stats = core.count(POLICY_LOG.splitlines())
    assert stats.requests == 6  # the line without held= (an older image's) is read like the others
    assert (stats.pages.local, stats.pages.fetched, stats.files.local) == (2, 2, 1)
    data = stats.as_dict()
    assert data["held_back"] == {"pages": 2, "files": 4, "projects": [{"project": "dpctl-aged", "pages": 2}]}
    assert data["refused"] == {"requests": 1, "projects": [{"project": "dpctl-evil", "requests": 1}]}


def test_the_command_shows_what_the_policy_held_back(monkeypatch):
    engine = FakeEngine()
    container = engine.add("default")  # its FakeCache: no index sizes
    container.logs = lambda **kw: POLICY_LOG.encode()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    text = CliRunner().invoke(app, ["stats", "--since", "100w"])
    assert text.exit_code == 0, text.output
    assert "     held back: 4 young files left off 2 pages served: dpctl-aged (2)" in text.stdout
    assert "       refused: 1 requests for files of refused projects: dpctl-evil (1)" in text.stdout


def test_the_front_servers_log_format_is_what_frontlog_reads():
    """nginx.conf's log_format, its variables given values as nginx would, reads back: held= included."""
    import re

    from devpictl import frontlog
    from devpictl import image as img

    conf = img.render_nginx_conf()
    body = re.search(r"log_format devpictl (.*?);", conf, re.S)[1]  # type: ignore[index]
    template = "".join(re.findall(r"'([^']*)'", body))
    values = {
        "time_iso8601": T.format(20),
        "remote_addr": "172.17.0.1",
        "request": "GET /root/pypi/+simple/dpctl-aged/ HTTP/1.1",
        "status": "200",
        "body_bytes_sent": "700",
        "upstream_cache_status": "HIT",
        "sent_http_x_devpictl_served_from": "-",
        "sent_http_x_devpictl_held_back": "3",
        "request_time": "0.001",
        "client_name": "uv/0.9",
    }
    line = re.sub(r"\$(\w+)", lambda m: values[m[1]], template)
    request = frontlog.read(line)
    assert request is not None and (request.kind, request.result, request.held_back) == ("page", "local", 3)
