"""Waiting for a started cache: until devpi answers, and until its mirror lists files (docs/devpi-facts.md)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from devpictl.container import last_line
from devpictl.errors import CacheUnreachable, ReadinessTimeout, UpstreamUnreachable

if TYPE_CHECKING:
    from devpictl.cache import Cache
    from devpictl.devpi import DevpiClient
    from devpictl.reporter import Reporter


def wait_for_api(cache: Cache, timeout: float, reporter: Reporter) -> None:
    """Wait until devpi's API answers; a devpi that exits (or restarts) meanwhile ends the wait at once."""
    deadline = time.monotonic() + timeout
    restarts = cache.restart_count
    with cache.open_client() as client, reporter.waiting(f"Waiting for devpi-server to answer (up to {timeout:.0f} s)"):
        while True:
            try:
                client.api()
                return
            except CacheUnreachable:
                pass
            if cache.failed_since(restarts):
                raise ReadinessTimeout(f"devpi-server exited during start-up: {last_line(cache.logs_tail())}; see `devpictl logs`")
            if time.monotonic() > deadline:
                raise ReadinessTimeout(f"devpi-server did not answer within {timeout:.0f} s: see `devpictl logs`")
            time.sleep(0.5)


def wait_until_ready(
    client: DevpiClient, project: str, timeout: float, reporter: Reporter, cache: Cache | None = None, since: datetime | None = None
) -> list[str]:
    """Wait until the simple page of ``project`` lists files through the cache.

    An answering /+api is not enough: a fresh devpi can fail installs while it
    is still setting up its mirror (docs/devpi-facts.md). A TLS failure shows only
    in devpi's log (the page answers 502): it ends the wait at once, naming --ca-bundle.
    """
    deadline = time.monotonic() + timeout
    last_problem = "it listed no files"
    with reporter.waiting(f"Waiting until the cache lists files for {project!r} (up to {timeout:.0f} s)"):
        while True:
            try:
                files = client.simple_files(project)
                if files:
                    return files
            except (UpstreamUnreachable, CacheUnreachable) as exc:
                last_problem = str(exc)
                tls = tls_failure(cache.log_since(since)) if cache is not None else None
                if tls is not None:
                    raise UpstreamUnreachable(
                        f"the cache does not trust its upstream's TLS certificate ({tls}): a proxy that re-signs HTTPS? "
                        'run `devpictl up` again with --ca-bundle and your CA bundle (e.g. --ca-bundle "$SSL_CERT_FILE")'
                    ) from None
            if time.monotonic() > deadline:
                raise ReadinessTimeout(
                    f"the cache did not list files for {project!r} within {timeout:.0f} s ({last_problem}); "
                    "check the upstream and `devpictl logs`, or pick another with --mirror"
                )
            time.sleep(1.0)


TLS_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def tls_failure(log: str) -> str | None:
    """The last line of devpi's log that tells of a certificate it did not trust, cut short; None when there is none."""
    for line in reversed(log.splitlines()):
        if any(needle in line for needle in TLS_FAILURES):
            start = line.find(next(n for n in TLS_FAILURES if n in line))
            text = line[start:].strip()
            return text[:160] + ("..." if len(text) > 160 else "")
    return None
