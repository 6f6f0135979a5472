"""The errors devpictl expects, each with a message that says what to do.

The CLI turns any of them into one red line on stderr and the class's exit code;
none of them ever carries a password or token.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

# Exit codes, documented in README.md. 2 is Click's usage error.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_CONFLICT = 4
EXIT_UPSTREAM = 5
EXIT_DEVPI = 6
EXIT_TIMEOUT = 7
EXIT_NOT_FOUND = 8
EXIT_INTERRUPTED = 130  # the shell's code for a command ended by SIGINT
EXIT_TERMINATED = 143  # ... and by SIGTERM


class DevpictlError(Exception):
    """Base of every expected failure."""

    exit_code = EXIT_ERROR


class BadInput(DevpictlError):
    """A value on the command line or in the environment is not usable."""

    exit_code = EXIT_USAGE


class UnknownMirror(BadInput):
    pass


class MalformedURL(BadInput):
    pass


# docker-py buries the reason in the text of a wrapped requests error.
ENGINE_PROBLEMS = {
    "permission denied": ("permission denied on the engine's socket", "add your user to the docker group and log in again, or run as root"),
    "no such file or directory": ("no engine socket", "start Docker, or set DOCKER_HOST to a running engine"),
    "connection refused": ("connection refused", "start Docker, or set DOCKER_HOST to a running engine"),
}


class EngineUnavailable(DevpictlError):
    exit_code = EXIT_ENGINE

    @classmethod
    def from_exception(cls, exc: Exception) -> EngineUnavailable:
        """One line: why the engine did not answer, as far as docker-py tells, and what to do."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        for needle, (reason, fix) in ENGINE_PROBLEMS.items():
            if needle in text.lower():
                return cls(f"cannot reach the Docker engine ({reason}): {fix}")
        if len(text) > 160:
            text = text[:157] + "..."
        return cls(f"cannot reach the Docker engine ({text}): start Docker, or set DOCKER_HOST to a running engine")


class EngineError(DevpictlError):
    """The engine refused an operation (build failed, create failed, ...)."""

    exit_code = EXIT_ENGINE


class ExecFailed(EngineError):
    """The engine could not run a command in a cache's container (stopped or removed meanwhile); ``reason`` is the engine's word."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PortInUse(DevpictlError):
    exit_code = EXIT_CONFLICT


class Conflict(DevpictlError):
    """What exists does not match what was asked for."""

    exit_code = EXIT_CONFLICT


class CacheNotFound(DevpictlError):
    exit_code = EXIT_NOT_FOUND


class UpstreamUnreachable(DevpictlError):
    exit_code = EXIT_UPSTREAM


class WarmIncomplete(DevpictlError):
    """`warm` could not store everything: the upstream lacked some of it, or the cache's page policy refuses it."""

    exit_code = EXIT_UPSTREAM


class DevpiError(DevpictlError):
    """devpi-server answered, but not as expected."""

    exit_code = EXIT_DEVPI


class LoginRefused(DevpiError):
    pass


class CacheUnreachable(DevpiError):
    pass


class PasswordUnconfirmed(CacheUnreachable):
    """devpi stopped answering during a password change: which password it holds is unknown."""


class ReadinessTimeout(DevpictlError):
    exit_code = EXIT_TIMEOUT


class Interrupted(DevpictlError):
    """SIGINT or SIGTERM arrived in the middle of a change; the message says what state it left."""

    exit_code = EXIT_INTERRUPTED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises KeyboardInterrupt, so both take the same clean-up paths."""


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """SIGINT and SIGTERM wait until the block ends, for a step that must finish once begun; the list holds those that came.

    What happens to them is the caller's: say what state the finished step left, or
    nothing when the command is done anyway (an exit code must not contradict its output).
    """
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield arrived
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: arrived.append(signum))
    try:
        yield arrived
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
