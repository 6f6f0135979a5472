"""How devpictl talks to people: rich progress on stderr, results on stdout."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console
from rich.live import Live
from rich.text import Text

from devpictl.reporter import QuietReporter, Reporter
from devpictl.results import Result, to_json

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def human_size(size: int | None) -> str:
    """Bytes as people read them: 29 kB, 12.5 MB, 1.20 GB (decimal units); "unknown" for None."""
    if size is None:
        return "unknown"
    if size >= 1e9:
        return f"{size / 1e9:.2f} GB"
    if size >= 1e6:
        return f"{size / 1e6:.1f} MB"
    return f"{-(-size // 1000)} kB" if size else "0 kB"


def print_table(table, console: Console | None = None) -> None:
    """A table on ``console`` (stdout): fitted to a terminal; whole rows for a pipe or a file, which a script or a log reads."""
    from rich.measure import Measurement

    console = console or out
    if console.is_terminal:
        console.print(table)
        return
    needed = Measurement.get(console, console.options.update_width(10_000), table).maximum
    wide = Console(file=console.file, width=max(console.width, needed), highlight=False, soft_wrap=True, no_color=console.no_color)
    wide.print(table)


def print_error(exc: Exception) -> None:
    err.print(Text(f"error: {exc}", style="bold red"))


def print_json(result: Result | Sequence[Result]) -> None:
    """A command's --json answer: one typed result, or a list of them (devpictl/results.py)."""
    sys.stdout.write(to_json(result) + "\n")


# The classic builder announces each Dockerfile instruction this way.
BUILD_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class BuildProgress:
    """What a build is doing: step N of M, time so far, the step and its latest line (drawn live)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.step = ""
        self.last = ""

    def feed(self, line: str) -> None:
        match = BUILD_STEP.match(line)
        if match:
            number, total, instruction = match.groups()
            self.step = f"step {number} of {total}: {instruction}"
            self.last = ""
        else:
            self.last = line

    def __rich__(self) -> Text:
        head = f"  {clock(time.monotonic() - self.started)}  {self.step or 'starting'}"
        return Text(head[:110] + (f"\n    {self.last[:106]}" if self.last else ""), style="dim")


class RichReporter:
    """Steps as lines, waits as spinners with the time so far, builds as a live progress line.

    ``verbose`` (and any output that is not a terminal) prints every build line instead.
    """

    def __init__(self, console: Console = err, verbose: bool = False):
        self.console = console
        self.verbose = verbose
        self.build: BuildProgress | None = None
        self.live: Live | None = None

    def step(self, message: str) -> None:
        self._stop_live()
        self.console.print(Text(f"• {message}", style="bold"))

    def log(self, line: str) -> None:
        if self.verbose or not self.console.is_terminal:
            self.console.print(Text(f"  {line}", style="dim"))
            return
        if self.live is None or self.build is None:
            self.build = BuildProgress()
            self.live = Live(self.build, console=self.console, transient=True, refresh_per_second=4)
            self.live.start()
        self.build.feed(line)

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            self.build = None

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        self._stop_live()
        if not self.console.is_terminal:
            self.console.print(f"• {message} ...")
            yield
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn(message), TimeElapsedColumn(), console=self.console, transient=True) as progress:
            progress.add_task(message, total=None)
            yield

    @contextlib.contextmanager
    def transfer(self, message: str) -> Iterator[Callable[[int], None]]:
        """A byte counter for a transfer of unknown size."""
        from rich.progress import (
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self._stop_live()
        columns = (SpinnerColumn(), TextColumn(message), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=self.console, transient=True, disable=not self.console.is_terminal) as progress:
            task = progress.add_task(message, total=None)
            yield lambda nbytes: progress.advance(task, nbytes)
        if not self.console.is_terminal:
            self.console.print(f"• {message}: done")

    @contextlib.contextmanager
    def counting(self, message: str, total: int) -> Iterator[Callable[[int], None]]:
        """A count of ``total`` things: done/total, the rate, the time left."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._stop_live()
        started = time.monotonic()
        rate = TextColumn("{task.fields[rate]}")
        columns = (TextColumn(message), BarColumn(), MofNCompleteColumn(), rate, TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True, disable=not self.console.is_terminal) as progress:
            task = progress.add_task(message, total=total, rate="")

            def advance(count: int) -> None:
                progress.advance(task, count)
                done = progress.tasks[0].completed
                progress.update(task, rate=f"{done / max(time.monotonic() - started, 1e-3):.0f}/s")

            yield advance
        if not self.console.is_terminal:
            self.console.print(f"• {message}: {total} done in {time.monotonic() - started:.1f} s")

    def close(self) -> None:
        self._stop_live()


@contextlib.contextmanager
def reporter(quiet: bool, verbose: bool = False) -> Iterator[Reporter]:
    """A RichReporter (every build line with ``verbose``), or a silent one for --json."""
    if quiet:
        yield QuietReporter()
        return
    rep = RichReporter(verbose=verbose)
    try:
        yield rep
    finally:
        rep.close()
