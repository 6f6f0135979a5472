"""How the core shows progress: the Reporter the CLI implements, and one that shows nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class Reporter(Protocol):
    def step(self, message: str) -> None: ...
    def log(self, line: str) -> None: ...
    def waiting(self, message: str) -> contextlib.AbstractContextManager[None]: ...
    def transfer(self, message: str) -> contextlib.AbstractContextManager[Callable[[int], None]]: ...
    def counting(self, message: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]: ...


class QuietReporter:
    """A Reporter that shows nothing (for --json and for tests)."""

    def step(self, message: str) -> None:
        pass

    def log(self, line: str) -> None:
        pass

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def transfer(self, message: str) -> Iterator[Callable[[int], None]]:
        yield lambda nbytes: None

    @contextlib.contextmanager
    def counting(self, message: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda count: None
