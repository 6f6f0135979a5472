"""How devpictl talks to people: rich progress on stderr, results on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
from collections import deque
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(exc: Exception) -> None:
    err.print(Text(f"error: {exc}", style="bold red"))


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class RichReporter:
    """Steps as lines, waits as spinners, build output as a rolling window."""

    def __init__(self, console: Console = err, window: int = 8):
        self.console = console
        self.window: deque[str] = deque(maxlen=window)
        self.live: Live | None = None

    def step(self, message: str) -> None:
        self._stop_live()
        self.console.print(Text(f"• {message}", style="bold"))

    def log(self, line: str) -> None:
        self.window.append(line)
        if not self.console.is_terminal:
            self.console.print(Text(f"  {line}", style="dim"))
            return
        if self.live is None:
            self.live = Live(console=self.console, transient=True, refresh_per_second=8)
            self.live.start()
        self.live.update(Text("\n".join(f"  {x}" for x in self.window), style="dim"))

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            self.window.clear()

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        self._stop_live()
        if not self.console.is_terminal:
            self.console.print(f"• {message} ...")
            yield
            return
        with self.console.status(message):
            yield

    @contextlib.contextmanager
    def transfer(self, message: str) -> Iterator[object]:
        """A byte counter for a transfer of unknown size."""
        from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TransferSpeedColumn

        self._stop_live()
        columns = (SpinnerColumn(), TextColumn(message), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=self.console, transient=True, disable=not self.console.is_terminal) as progress:
            task = progress.add_task(message, total=None)
            yield lambda nbytes: progress.advance(task, nbytes)
        if not self.console.is_terminal:
            self.console.print(f"• {message}: done")

    def close(self) -> None:
        self._stop_live()


@contextlib.contextmanager
def reporter(quiet: bool) -> Iterator[object]:
    """A RichReporter, or a silent one for --json."""
    if quiet:
        from devpictl.cache import QuietReporter

        yield QuietReporter()
        return
    rep = RichReporter()
    try:
        yield rep
    finally:
        rep.close()
