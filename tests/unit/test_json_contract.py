"""The shape of every `--json` answer a script may read, pinned: a key that goes or changes fails here.

The same thing has the same key everywhere: `name` for the cache, `index_url` for its URL.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import layout, replica
from devpictl import status as cache_status
from devpictl.cli import app
from devpictl.mirrors import CATALOG
from devpictl.settings import Instance, store_root_password
from tests.unit.fakes import OFFICIAL_URL, FakeEngine

URL = "http://cache.example:3141/root/pypi/+simple/"


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    monkeypatch.setattr(
        cache_status,
        "serving",
        lambda container, timeout=10: cache_status.Serving(CATALOG["nju"], CATALOG["nju"].url, "6.20.3", {}, OFFICIAL_URL, []),
    )
    monkeypatch.setattr(cache_status, "upstream_reachability", lambda *a, **k: (True, None))
    monkeypatch.setattr(cache_status, "describe_core_metadata", lambda *a: (False, "not measured"))
    state = replica.Replication(replica.REPLICA, "http://primary.example:3141", 12, 14, 2, 0)
    monkeypatch.setattr(replica, "replication_state", lambda container: state)
    return engine


def answer(*args: str):
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status(engine):
    engine.add("default").cache.sizes[layout.DATA_DIR] = 12345
    assert sorted(answer("status", "--name", "default")) == [
        "cache_bytes",
        "cached_pages",
        "certificate_expires",
        "core_metadata",
        "core_metadata_note",
        "devpi_version",
        "fallbacks",
        "front_server",
        "health",
        "https",
        "image",
        "index_url",
        "name",
        "next_step",
        "offline",
        "pages_from_previous_upstream",
        "password_file",
        "policy",
        "policy_settings",
        "read_auth",
        "replication",
        "state",
        "upstream",
        "upstream_name",
        "upstream_problem",
        "upstream_reachable",
        "volume",
    ]
    assert sorted(answer("status", "--name", "default")["replication"]) == [
        "files_waiting",
        "lag",
        "primary_serial",
        "primary_url",
        "replicas",
        "role",
        "serial",
    ]


def test_ls(engine):
    engine.add("default")
    [entry] = answer("ls")
    assert sorted(entry) == ["cache_bytes", "health", "index_url", "name", "next_step", "state", "upstream", "upstream_name", "volume"]


def test_prune(engine):
    reply = {"files": 0, "bytes": 0, "freed_bytes": 0, "kept_bytes": 0, "dry_run": True, "removed": []}
    engine.add("default").cache.scripts["prune.py"] = (0, json.dumps(reply))
    assert sorted(answer("prune", "--max-size", "1G", "--dry-run")) == [
        "bytes",
        "dry_run",
        "files",
        "freed_bytes",
        "kept_bytes",
        "name",
        "removed",
    ]


def test_stats(engine):
    engine.add("default")
    assert sorted(answer("stats", "--name", "default")) == [
        "bytes_fetched",
        "bytes_served",
        "files",
        "held_back",
        "hourly_hit_ratio",
        "hourly_requests",
        "index_bytes",
        "metadata",
        "name",
        "pages",
        "refused",
        "requests",
        "since",
        "top_projects",
    ]


def test_mirrors():
    rows = answer("mirrors")
    assert {tuple(sorted(row)) for row in rows} == {("name", "note", "url")}


def test_pip_config():
    data = answer("pip-config", "--url", URL, "--tool", "pip")
    assert sorted(data) == ["index_url", "tools", "written"]
    assert sorted(data["tools"]["pip"]) == ["env", "file", "settings"]


def test_password_show():
    store_root_password(Instance("default"), "s3cret")
    assert sorted(answer("password", "--show")) == ["name", "password", "password_file"]


def test_status_lag(engine, monkeypatch):
    from devpictl import freshness
    from devpictl.cli import choosing

    engine.add("default").cache.sizes[layout.DATA_DIR] = 12345
    monkeypatch.setattr(
        choosing, "mirror_lags", lambda members, *a: {m: freshness.Freshness(freshness.Lag(2, 9.0, ("boto3 2",))) for m in members}
    )
    data = answer("status", "--name", "default", "--lag")
    assert data["lag"] == {CATALOG["nju"].url: {"releases_behind": 2, "hours_behind": 9.0, "missing": ["boto3 2"], "lag_problem": None}}
    result = CliRunner().invoke(app, ["status", "--name", "default", "--lag"])
    assert f"behind: {CATALOG['nju'].url}: 2 releases behind, 9 h" in result.stdout, result.stdout


def test_export(tmp_path):
    assert sorted(answer("export", "k8s", "-o", str(tmp_path))) == ["files", "next_step", "secrets_created"]


def test_password_replica_secret(engine, tmp_path):
    engine.add("default").cache.files[layout.SERVER_SECRET] = "s" * 44
    assert sorted(answer("password", "--replica-secret", str(tmp_path / "out.secret"))) == ["name", "secret_file"]
