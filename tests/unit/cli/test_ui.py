"""What people see while devpictl works: build progress, waits with the time so far."""

from __future__ import annotations

import io

from rich.console import Console

from devpictl.cli import ui


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


class TestBuildProgress:
    def test_step_n_of_m_with_its_latest_line(self, monkeypatch):
        now = [100.0]
        monkeypatch.setattr(ui.time, "monotonic", lambda: now[0])
        progress = ui.BuildProgress()
        progress.feed("Step 5/26 : RUN python3 -m venv /opt/devpi")
        progress.feed("Collecting devpi-server==6.20.3")
        now[0] += 83
        assert progress.__rich__().plain == "  1:23  step 5 of 26: RUN python3 -m venv /opt/devpi\n    Collecting devpi-server==6.20.3"
        progress.feed("Step 6/26 : COPY x y")
        assert progress.__rich__().plain == "  1:23  step 6 of 26: COPY x y"

    def test_a_terminal_gets_progress_not_every_line(self):
        console, buffer = terminal()
        reporter = ui.RichReporter(console)
        for n in range(50):
            reporter.log(f"noise line {n}")
        reporter.close()
        assert "noise line 3\n" not in buffer.getvalue()

    def test_verbose_prints_every_line(self):
        console, buffer = terminal()
        reporter = ui.RichReporter(console, verbose=True)
        for n in range(50):
            reporter.log(f"line {n}")
        reporter.close()
        assert [f"  line {n}" for n in range(50)] == buffer.getvalue().splitlines()

    def test_a_pipe_gets_every_line(self):
        buffer = io.StringIO()
        reporter = ui.RichReporter(Console(file=buffer, width=120, color_system=None))
        reporter.log("Step 1/2 : FROM base")
        assert buffer.getvalue() == "  Step 1/2 : FROM base\n"


def test_sizes_people_read():
    assert [ui.human_size(n) for n in (None, 0, 1, 29_000, 12_500_000, 1_200_000_000)] == [
        "unknown",
        "0 kB",
        "1 kB",
        "29 kB",
        "12.5 MB",
        "1.20 GB",
    ]


def test_the_rich_reporter_on_a_pipe_prints_plain_lines():
    out = io.StringIO()
    reporter = ui.RichReporter(console=Console(file=out, force_terminal=False, width=120))
    reporter.step("creating the container")
    reporter.log("Step 1/9 : FROM debian")
    with reporter.waiting("waiting for devpi"):
        pass
    with reporter.transfer("backing up") as advance:
        advance(1024)
    reporter.close()
    assert out.getvalue().splitlines() == [
        "• creating the container",
        "  Step 1/9 : FROM debian",
        "• waiting for devpi ...",
        "• backing up: done",
    ]
