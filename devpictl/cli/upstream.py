"""devpictl set-upstream / mirrors: where the cache fetches from, and how fast each mirror is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from devpictl.cli import options
from devpictl.mirrors import LAG_PROJECTS

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from devpictl.mirrors import Upstream
    from devpictl.speedtest import MirrorResult

mirrors_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def register(app: typer.Typer) -> None:
    app.command("set-upstream")(set_upstream)
    app.add_typer(mirrors_app, name="mirrors")


def set_upstream(
    mirror: str = typer.Argument(
        ...,
        help="A catalog name or your entry (see `devpictl mirrors`), an index URL, or 'fastest' to measure and take the fastest.",
        autocompletion=options.complete_mirror,
    ),
    name: str = options.NAME,
    fallback: str = options.FALLBACK,
    max_lag: str = options.MAX_LAG,
    check: bool = options.CHECK,
    refresh_pages: bool = options.REFRESH_PAGES,
    probe_project: str = options.PROBE,
    json_output: bool = options.JSON,
) -> None:
    """Switch the upstream of a running cache; cached pages follow at once.

    Example: devpictl set-upstream tuna
    """
    from devpictl import switching
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    choice = options.upstream_choice(mirror, fallback, max_lag)
    engine = connect()
    upstream, fallbacks = choice.chosen(probe_project, quiet=json_output)
    assert upstream is not None  # MIRROR is required: a named mirror, or the fastest
    with cache_lock(instance), ui.reporter(json_output) as rep:
        result = switching.set_upstream(
            engine,
            instance,
            upstream,
            check=check,
            probe_project=probe_project,
            reporter=rep,
            fallbacks=fallbacks,
            refresh_pages=refresh_pages,
        )
    if json_output:
        ui.print_json(result)
    elif result.actions:
        for action in result.actions:
            ui.out.print(action)
    else:
        ui.out.print(f"Cache {result.name!r} already uses {result.upstream.name}; nothing changed.")


@mirrors_app.callback(invoke_without_command=True)
def mirrors(ctx: typer.Context, json_output: bool = options.JSON) -> None:
    """List the mirror catalog and your own entries; test, add or remove mirrors.

    Example: devpictl mirrors
    """
    if ctx.invoked_subcommand is not None:
        return
    from devpictl.cli import ui
    from devpictl.mirrors import APT_CATALOG, RETIRED, every_upstream
    from devpictl.settings import config_file

    entries = every_upstream()
    if json_output:
        ui.print_json(entries)
        return
    from rich.table import Table

    table = Table(box=None)
    table.add_column("name")
    table.add_column("URL", no_wrap=True)
    table.add_column("note")
    for m in entries:
        note = (f"user entry: {m.note}" if m.note else "user entry") if m.user else m.note
        table.add_row(m.name, m.display_url if m.url else "(default)", note)
    ui.print_table(table)
    if any(m.user for m in entries):
        ui.out.print(f"[dim]user entries are kept in {config_file()}[/]")
    for retired, (why, instead) in RETIRED.items():
        ui.out.print(f"[dim]not offered: {retired} ({why}; use {instead})[/]")
    ui.out.print(f"[dim]Debian mirrors for a build's apt steps (--apt-mirror): {', '.join(APT_CATALOG)}, or a URL ending in /debian[/]")


@mirrors_app.command("test")
def measure_mirrors(
    names: list[str] = typer.Argument(
        None,
        metavar="NAME|URL",
        help="Mirrors to measure: catalog names, your entries or index URLs [default: all].",
        autocompletion=options.complete_mirror_name,
    ),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds each mirror gets in all, for its page and its wheel."),
    project: str = typer.Option("pip", "--project", help="Project whose simple page is timed and whose newest wheel is downloaded."),
    download: bool = typer.Option(
        True, "--wheel-url-from-page/--page-only", help="Download the newest wheel the page links (default), or time the page alone."
    ),
    lag: bool = typer.Option(
        True,
        "--lag/--no-lag",
        help="Also show how far each mirror is behind the official index, in releases and hours, from projects that release often.",
    ),
    lag_projects: str = typer.Option(
        ",".join(LAG_PROJECTS), "--lag-projects", help="Projects (comma-separated) whose newest releases measure the lag."
    ),
    reference: str = typer.Option(
        None, "--reference", help="Index the lag is measured against: a name or URL [default: the official index, at pip's default URL]."
    ),
    json_output: bool = options.JSON,
) -> None:
    """Measure mirrors at once: time to a page's first byte, and wheel speed.

    A mirror that redirects, fails, or answers nothing within --timeout is
    shown with the reason and never ranked.

    Example: devpictl mirrors test tuna nju --timeout 5
    """
    from devpictl import speedtest
    from devpictl.cli import ui
    from devpictl.errors import BadInput, UpstreamUnreachable
    from devpictl.mirrors import every_upstream, resolve
    from devpictl.settings import check_timeout

    speedtest.check_project(project)
    check_timeout(timeout)
    projects = [speedtest.check_project(p.strip()) for p in lag_projects.split(",") if p.strip()]
    if lag and not projects:
        raise BadInput("--lag-projects names no project: give some, e.g. boto3,botocore, or pass --no-lag")
    against = resolve(reference) if reference else None
    upstreams = [resolve(spec) for spec in names] if names else every_upstream()
    pairs = speed_test(upstreams, project=project, timeout=timeout, download=download, console=None if json_output else ui.out)
    lags = mirror_lags([u for u, _ in pairs], projects, against, timeout) if lag else {}
    if json_output:
        ui.print_json([speedtest.MirrorCheck(result, lags.get(upstream)) for upstream, result in pairs])
    elif lags:
        ui.print_table(lag_table(pairs, lags))
    best = next(((u, r) for u, r in pairs if r.fastest), None)
    if best is None:
        raise UpstreamUnreachable(
            f"no mirror served {project!r} within {timeout:g} s: check your network and proxy (HTTPS_PROXY, SSL_CERT_FILE), or raise --timeout"
        )
    if not json_output:
        upstream, result = best
        pick = upstream.name if upstream.name != "custom" else upstream.display_url
        ui.out.print(f"Fastest: {result.name} ({describe_speed(result)}). Use it: devpictl up --mirror {pick}")
        if len(pairs) > 1 and download:
            ui.out.print("[dim]The mirrors were measured at the same time, so they shared your bandwidth.[/]")


@mirrors_app.command("add")
def add(
    name: str = typer.Argument(..., help="Your name for it: lowercase letters, digits, '_' or '-'."),
    url: str = typer.Argument(..., help="Its simple-index URL, http(s)://HOST/PATH."),
    note: str = typer.Option("", "--note", help="A note that `devpictl mirrors` shows."),
) -> None:
    """Add a mirror of your own, kept in devpictl's config.toml.

    Example: devpictl mirrors add corp https://pypi.corp.example/simple --note "office mirror"
    """
    from devpictl.cli import ui
    from devpictl.mirrors import add_user_mirror
    from devpictl.settings import config_file

    upstream = add_user_mirror(name, url, note)
    lowered = " (mirror names are lower case)" if upstream.name != name.strip() else ""
    ui.out.print(
        f"Added mirror {upstream.name!r}{lowered} ({upstream.display_url}) to {config_file()}. Use it: devpictl up --mirror {upstream.name}"
    )


@mirrors_app.command("remove")
def remove(name: str = typer.Argument(..., help="The name of a mirror you added.")) -> None:
    """Remove a mirror you added; the built-in ones stay.

    Example: devpictl mirrors remove corp
    """
    from devpictl.cli import ui
    from devpictl.mirrors import redact, remove_user_mirror
    from devpictl.settings import config_file

    url = remove_user_mirror(name)
    ui.out.print(f"Removed mirror {name.strip().lower()!r}{f' ({redact(url)})' if url else ''} from {config_file()}.")


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
