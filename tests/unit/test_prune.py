"""devpictl prune: sizes and durations, which files go (least recently used, mirror only), the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import image as img
from devpictl import prune as core
from devpictl.cli import app
from devpictl.errors import BadInput
from tests.unit.fakes import FakeEngine

SCRIPT = img.render_template("prune.py")  # as the image and `devpictl prune` run it
DAY = 86400


@pytest.mark.parametrize(
    ("text", "size"), [("20G", 20 * 1024**3), ("500m", 500 * 1024**2), ("1.5T", int(1.5 * 1024**4)), ("0", 0), ("10GiB", 10 * 1024**3)]
)
def test_sizes(text, size):
    assert core.parse_size(text) == size


@pytest.mark.parametrize(("text", "days"), [("90d", 90.0), ("12h", 0.5), ("2w", 14.0)])
def test_durations(text, days):
    assert core.parse_days(text) == days


@pytest.mark.parametrize("text", ["lots", "-5G", "20X", ""])
def test_bad_size(text):
    with pytest.raises(BadInput, match="is not a size"):
        core.parse_size(text)


def make_files(root, ages_days: dict[str, float], size: int = 1000) -> None:
    now = time.time()
    for name, age in ages_days.items():
        path = root / "ab" / "cdef" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age * DAY, now - age * DAY))


def run_script(root, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, "--root", str(root), *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


class TestScript:
    def test_least_recently_used_go_until_the_rest_fit(self, tmp_path):
        make_files(tmp_path, {"old.whl": 30, "mid.whl": 10, "new.whl": 1})
        answer = run_script(tmp_path, "--max-bytes", "1500")
        assert [r["file"] for r in answer["removed"]] == ["ab/cdef/old.whl", "ab/cdef/mid.whl"]
        assert (answer["freed_bytes"], answer["kept_bytes"], answer["files"]) == (2000, 1000, 3)
        assert sorted(p.name for p in tmp_path.rglob("*.whl")) == ["new.whl"]

    def test_unused_for(self, tmp_path):
        make_files(tmp_path, {"old.whl": 100, "new.whl": 1})
        answer = run_script(tmp_path, "--unused-days", "90")
        assert [r["file"] for r in answer["removed"]] == ["ab/cdef/old.whl"]

    def test_dry_run_removes_nothing(self, tmp_path):
        make_files(tmp_path, {"old.whl": 30})
        assert run_script(tmp_path, "--max-bytes", "0", "--dry-run")["freed_bytes"] == 1000
        assert (tmp_path / "ab/cdef/old.whl").exists()

    def test_files_devpi_is_writing_stay(self, tmp_path):
        make_files(tmp_path, {"big.whl-0123abcd-tmp": 30})
        assert run_script(tmp_path, "--max-bytes", "0")["removed"] == []

    def test_only_the_mirrors_files_are_looked_at(self):
        assert 'MIRROR_FILES = "/data/server/+files/root/pypi/+f"' in SCRIPT


class TestCommand:
    @pytest.fixture
    def cache(self, monkeypatch):
        engine = FakeEngine()
        answer = {
            "files": 3,
            "bytes": 3000,
            "freed_bytes": 2000,
            "kept_bytes": 1000,
            "dry_run": True,
            "removed": [
                {"file": "ab/cdef/old.whl", "bytes": 1000, "unused_days": 30.0},
                {"file": "ab/cdef/mid.whl", "bytes": 1000, "unused_days": 10.0},
            ],
        }
        cache = engine.add("default").cache
        cache.scripts["prune.py"] = (0, json.dumps(answer) + "\n")
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return cache

    def test_dry_run_lists_and_sums(self, cache):
        result = CliRunner().invoke(app, ["prune", "--max-size", "1K", "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "  ab/cdef/old.whl (1 kB, unused 30.0 days)" in result.stdout
        assert "Would remove 2 of 3 mirrored files (2 kB); 1 kB of mirrored files would stay" in result.stdout
        [(script, args, _)] = cache.ran
        assert script == "prune.py" and args == ["--max-bytes", "1024", "--dry-run"]

    def test_something_to_do_is_required_before_the_engine(self, monkeypatch):
        monkeypatch.setattr(ctr, "connect", lambda: pytest.fail("no engine for a bad input"))
        result = CliRunner().invoke(app, ["prune"])
        assert result.exit_code == 2
        assert "say what to remove" in result.stderr

    def test_a_failing_script_is_one_clear_error(self, monkeypatch):
        engine = FakeEngine()
        engine.add("default").cache.scripts["prune.py"] = (1, "Traceback...\nPermissionError: denied\n")
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        result = CliRunner().invoke(app, ["prune", "--unused-for", "90d"])
        assert result.exit_code == 6
        assert "pruning in devpictl-default failed (PermissionError: denied)" in result.stderr
