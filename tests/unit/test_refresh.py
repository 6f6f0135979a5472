"""Refreshing cached pages after a switch: bounded concurrency, progress, and resuming an interrupted run."""

from __future__ import annotations

import threading

import pytest

from devpictl import refresh


class Recorder:
    """A refresh_one that counts how many run at once; ``fail`` raises for one project."""

    def __init__(self, missing=(), fail: str | None = None, error: type[BaseException] = RuntimeError):
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.seen: list[str] = []
        self.missing = set(missing)
        self.fail = fail
        self.error = error

    def __call__(self, project: str) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.seen.append(project)
        try:
            threading.Event().wait(0.005)
            if project == self.fail:
                raise self.error("stop")
            return project not in self.missing
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def unfinished(tmp_path):
    path = tmp_path / "upstream-switch.unfinished"
    path.write_text("https://new.example/simple\n")
    return path


def test_all_refreshed_at_most_jobs_at_once(unfinished):
    projects = [f"p{i:03d}" for i in range(50)]
    worker = Recorder(missing={"p007"})
    counted: list[int] = []
    refreshed, missing = refresh.refresh(projects, worker, unfinished, counted.append, jobs=4)
    assert missing == ["p007"]
    assert refreshed == [p for p in projects if p != "p007"]
    assert sorted(worker.seen) == projects
    assert 1 < worker.most <= 4
    assert sum(counted) == 50
    assert refresh.already_done(unfinished) == {p: p != "p007" for p in projects}


def test_an_interrupted_run_keeps_what_it_did_and_the_next_resumes(unfinished):
    projects = [f"p{i:03d}" for i in range(30)]
    with pytest.raises(KeyboardInterrupt):
        refresh.refresh(projects, Recorder(fail="p010", error=KeyboardInterrupt), unfinished, lambda n: None, jobs=3)
    done = refresh.already_done(unfinished)
    assert "p000" in done and "p010" not in done
    assert all(p in projects for p in done)
    again = Recorder()
    refreshed, missing = refresh.refresh(projects, again, unfinished, lambda n: None, jobs=3)
    assert sorted(again.seen) == sorted(set(projects) - set(done))  # nothing done twice
    assert refreshed == projects and missing == []


def test_an_error_stops_new_refreshes(unfinished):
    projects = [f"p{i:03d}" for i in range(40)]
    worker = Recorder(fail="p002")
    with pytest.raises(RuntimeError):
        refresh.refresh(projects, worker, unfinished, lambda n: None, jobs=2)
    assert len(worker.seen) < 10  # the rest were never started


def test_a_missing_project_is_remembered_as_missing(unfinished):
    refresh.refresh(["a", "b"], Recorder(missing={"b"}), unfinished, lambda n: None)
    assert unfinished.read_text().splitlines() == ["https://new.example/simple", "a", "-b"] or unfinished.read_text().splitlines() == [
        "https://new.example/simple",
        "-b",
        "a",
    ]
    assert refresh.already_done(unfinished) == {"a": True, "b": False}
