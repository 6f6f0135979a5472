"""Asking an upstream from inside the cache container, which sees the network, proxy and CA bundle devpi uses."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devpictl import coremetadata, layout, simplepage
from devpictl.errors import Interrupted, UpstreamUnreachable

if TYPE_CHECKING:
    from devpictl.cache import Cache
    from devpictl.reporter import Reporter

# Run inside the cache, so the check sees the network, proxy and CA bundle devpi uses.
CHECK_SCRIPT = "upstream_check.py"


@dataclass(frozen=True)
class UpstreamProbe:
    """What the upstream answered, asked from inside the cache, for one project's simple page."""

    answered: bool
    files: list[simplepage.Link]  # the files the page links; none when it did not answer
    problem: str | None  # why it did not answer, else None


def fetch_in_container(cache: Cache, url: str, timeout: float, *, digest: bool = False) -> tuple[dict | None, str]:
    """Ask ``url`` from inside the cache: (the check's answer, or None and why not)."""
    environment = {layout.ENV_CHECK_URL: url, layout.ENV_CHECK_TIMEOUT: str(timeout)}
    if digest:
        environment[layout.ENV_CHECK_WHAT] = "digest"
    result = cache.run_python(CHECK_SCRIPT, environment=environment)
    answer = result.last_line
    if not result.ok:
        return None, answer
    try:
        data = json.loads(answer)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, f"unreadable answer from the check: {answer[:120]}"
    return data, ""


def probe_upstream(cache: Cache, url: str, project: str, timeout: float = 20.0) -> UpstreamProbe:
    answer, problem = fetch_in_container(cache, f"{url}/{project}/", timeout)
    if answer is None:
        return UpstreamProbe(False, [], problem)
    return UpstreamProbe(True, simplepage.parse(answer["text"], answer["url"]), None)


def check_upstream(cache: Cache, url: str, project: str, timeout: float = 20.0) -> None:
    """Refuse an upstream whose simple page for ``project`` lists no files, as seen from the cache."""
    probe = probe_upstream(cache, url, project, timeout)
    if not probe.answered:
        raise UpstreamUnreachable(
            f"upstream {url} did not answer a simple page for {project!r} ({probe.problem}): {unanswered_hint(probe.problem)}"
        )
    if not probe.files:
        raise UpstreamUnreachable(
            f"upstream {url} lists no files for {project!r}: is it a simple index? pass --probe-project or --no-check"
        )


def unanswered_hint(problem: str | None) -> str:
    """What to do about an upstream that did not answer: another mirror first, --no-check last."""
    if problem and "certificate verify failed" in problem.lower().replace("_", " "):
        return 'the cache does not trust its TLS certificate: pass --ca-bundle with your CA bundle (e.g. "$SSL_CERT_FILE")'
    return "check the URL, or see which mirrors answer with `devpictl mirrors test` and pick another; --no-check switches anyway"


def measure_core_metadata(cache: Cache, url: str, project: str, timeout: float = 20.0) -> coremetadata.MetadataCheck:
    """Whether the upstream at ``url`` serves core metadata, as seen from inside the cache.

    The newest wheel of ``project`` stands for all: its ``.metadata`` must answer, and
    match the sha256 the page announces for it where the page gives one.
    """
    probe = probe_upstream(cache, url, project, timeout)
    if not probe.answered:
        return coremetadata.MetadataCheck(None, f"not measured: its page for {project!r} did not answer ({probe.problem})")
    wheel = simplepage.newest_wheel(probe.files)
    if wheel is None:
        return coremetadata.MetadataCheck(False, f"its page for {project!r} lists no wheel")
    answer, problem = fetch_in_container(cache, wheel + ".metadata", timeout, digest=True)
    name = simplepage.file_name(wheel)
    if answer is None:
        return coremetadata.MetadataCheck(None, f"not measured: {name}.metadata did not answer ({problem})")
    return coremetadata.judge(name, simplepage.announced_metadata(probe.files, wheel), answer["status"], answer["sha256"])


@contextlib.contextmanager
def checking(reporter: Reporter, url: str, what: str = "answers") -> Iterator[None]:
    """An upstream check before a switch, with a spinner; a Ctrl-C in it says that root/pypi's upstream is as it was."""
    try:
        with reporter.waiting(f"Checking that {url} {what}"):
            yield
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while checking that {url} {what}, before root/pypi's upstream was changed: run the same command again to switch"
        ) from None
