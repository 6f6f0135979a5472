"""Choosing a mirror by measuring: the speed test drawn live, each mirror's lag, the fastest; and their tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from devpictl.mirrors import LAG_PROJECTS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from devpictl.mirrors import Upstream
    from devpictl.speedtest import MirrorResult


def fastest_upstream(project: str | None, *, quiet: bool, max_lag_hours: float | None = None) -> Upstream:
    """Measure every mirror (showing the table on stderr unless ``quiet``) and return the fastest.

    With ``max_lag_hours``, a mirror further behind the official index than that (or
    whose lag could not be measured) is passed over.
    """
    from devpictl import speedtest
    from devpictl.cli import ui
    from devpictl.errors import UpstreamUnreachable
    from devpictl.mirrors import every_upstream

    project = project or speedtest.DEFAULT_PROJECT
    pairs = speed_test(every_upstream(), project=project, timeout=speedtest.DEFAULT_TIMEOUT, console=None if quiet else ui.err)
    ranked = [(u, r) for u, r in pairs if r.rank is not None]
    if max_lag_hours is not None and ranked:
        lags = mirror_lags([u for u, _ in ranked], list(LAG_PROJECTS), None, speedtest.DEFAULT_TIMEOUT)
        if not quiet:
            ui.print_table(lag_table(ranked, lags), ui.err)
        ranked = [(u, r) for u, r in ranked if within(lags.get(u), max_lag_hours)]
        if not ranked:
            raise UpstreamUnreachable(
                f"no mirror that answered is within {max_lag_hours:g} h of the official index: raise --max-lag, or name a mirror instead of 'fastest'"
            )
    best = ranked[0] if ranked else None
    if best is None:
        raise UpstreamUnreachable(
            f"no mirror served {project!r} in the speed test: check your network and proxy (HTTPS_PROXY, SSL_CERT_FILE), or name a mirror instead of 'fastest'"
        )
    upstream, result = best
    if not quiet:
        ui.err.print(f"• Fastest mirror: {upstream.name} ({describe_speed(result)})")
    return upstream


def mirror_lags(upstreams: Sequence[Upstream], projects: Sequence[str], reference: Upstream | None, timeout: float) -> dict:
    """{upstream: Freshness} behind ``reference`` (None: the official index at pip's default URL)."""
    from devpictl import freshness, pip

    base = (reference.url if reference is not None and reference.url else None) or pip.default_index_url()
    if base is None:
        return {u: freshness.Freshness(None, "pip is not importable here to name the official index") for u in upstreams}
    measured = [u for u in upstreams if (u.url or base).rstrip("/") != base.rstrip("/")]
    results = freshness.measure([u.url or base for u in measured], base, projects=projects, timeout=timeout)
    lags = {u: freshness.Freshness(freshness.UP_TO_DATE, "the reference itself") for u in upstreams if u not in measured}
    return {**lags, **dict(zip(measured, results, strict=True))}


def within(fresh, max_hours: float) -> bool:
    """Whether a mirror's measured lag is at most ``max_hours`` (an unmeasured one is not)."""
    if fresh is None or fresh.lag is None:
        return False
    if not fresh.lag.releases:
        return True
    return fresh.lag.hours is not None and fresh.lag.hours <= max_hours


def speed_test(
    upstreams: Sequence[Upstream],
    *,
    project: str,
    timeout: float,
    download: bool = True,
    console: Console | None = None,
) -> list[tuple[Upstream, MirrorResult]]:
    """Measure ``upstreams`` at once, drawing a live table on ``console``; pairs in rank order."""
    from devpictl import pip, speedtest
    from devpictl.cli import ui

    chosen: list[Upstream] = []
    for upstream in upstreams:
        if upstream not in chosen:
            chosen.append(upstream)
    official = pip.default_index_url() if any(u.is_official for u in chosen) else None
    targets = [(display_name(u), official if u.is_official else u.url) for u in chosen]
    if console is not None and console.is_terminal:
        from rich.live import Live

        with Live(console=console, refresh_per_second=8) as live:
            results = speedtest.measure(
                targets,
                project=project,
                timeout=timeout,
                download=download,
                on_update=lambda current: live.update(results_table(current)),
            )
    else:  # a file or pipe gets the final table only
        results = speedtest.measure(targets, project=project, timeout=timeout, download=download)
        if console is not None:
            ui.print_table(results_table(results), console)
    pairs = list(zip(chosen, results, strict=True))
    return sorted(pairs, key=lambda pair: (pair[1].rank is None, pair[1].rank or 0))


def display_name(upstream: Upstream) -> str:
    if upstream.name == "custom" and upstream.url:
        from urllib.parse import urlsplit

        return urlsplit(upstream.url).netloc.rpartition("@")[2]
    return upstream.name


def lag_table(pairs, lags) -> Table:
    """How far each mirror is behind the reference, as a table."""
    from rich.table import Table

    table = Table(box=None, title="behind the official index")
    table.add_column("mirror")
    table.add_column("behind")
    table.add_column("detail")
    for upstream, result in pairs:
        fresh = lags.get(upstream)
        if fresh is None:
            continue
        if fresh.lag is None:
            table.add_row(result.name, "-", fresh.problem, style="red")
        else:
            shown = ", ".join(fresh.lag.missing[:3]) + (" ..." if len(fresh.lag.missing) > 3 else "")
            table.add_row(result.name, fresh.lag.describe(), fresh.problem or (f"lacks {shown}" if shown else ""))
    return table


def results_table(results: Sequence[MirrorResult]) -> Table:
    """The speed test as a table: ranked mirrors first, the fastest marked."""
    from rich.table import Table

    from devpictl import speedtest

    table = Table(box=None)
    table.add_column("#", justify="right")
    table.add_column("mirror")
    table.add_column("status")
    table.add_column("first byte", justify="right")
    table.add_column("speed", justify="right")
    # Does the newest wheel's <file>.metadata (PEP 658) answer, matching its announced hash?
    table.add_column("metadata")
    table.add_column("detail")
    ordered = sorted(results, key=lambda r: (r.rank is None, r.rank or 0))
    for r in ordered:
        ttfb = f"{r.ttfb * 1000:.0f} ms" if r.ttfb is not None else "-"
        speed = format_speed(r.throughput) if r.ok and r.throughput else "-"
        if r.status == speedtest.MEASURING:
            status, style = "measuring...", "dim"
            detail = f"fetching {r.file_name}" if r.file_url else ""
        elif r.ok:
            status, style = ("ok, fastest", "bold green") if r.fastest else ("ok", "")
            detail = f"{r.file_name} ({r.bytes / 1e6:.1f} MB)" if r.file_url else r.reason
        else:
            status, style = r.status, "red"
            detail = r.reason
        metadata = "-" if r.core_metadata is None else "yes" if r.core_metadata else "no"
        table.add_row(str(r.rank or ""), r.name, status, ttfb, speed, metadata, detail, style=style)
    return table


def format_speed(bytes_per_second: float | None) -> str:
    if not bytes_per_second:
        return "-"
    if bytes_per_second >= 1e6:
        return f"{bytes_per_second / 1e6:.1f} MB/s"
    return f"{bytes_per_second / 1e3:.0f} kB/s"


def describe_speed(result: MirrorResult) -> str:
    first_byte = f"first byte {result.ttfb * 1000:.0f} ms" if result.ttfb is not None else ""
    if result.throughput:
        return f"{format_speed(result.throughput)}, {first_byte}"
    return first_byte
