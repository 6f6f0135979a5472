"""devpictl mirrors: the mirror catalog and your entries, measuring them, adding and removing your own."""

from __future__ import annotations

import typer

from devpictl.cli import options
from devpictl.mirrors import LAG_PROJECTS

mirrors_app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def register(app: typer.Typer) -> None:
    app.add_typer(mirrors_app, name="mirrors")


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
    from devpictl.cli import choosing, ui
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
    pairs = choosing.speed_test(upstreams, project=project, timeout=timeout, download=download, console=None if json_output else ui.out)
    lags = choosing.mirror_lags([u for u, _ in pairs], projects, against, timeout) if lag else {}
    if json_output:
        ui.print_json([speedtest.MirrorCheck(result, lags.get(upstream)) for upstream, result in pairs])
    elif lags:
        ui.print_table(choosing.lag_table(pairs, lags))
    best = next(((u, r) for u, r in pairs if r.fastest), None)
    if best is None:
        raise UpstreamUnreachable(
            f"no mirror served {project!r} within {timeout:g} s: check your network and proxy (HTTPS_PROXY, SSL_CERT_FILE), or raise --timeout"
        )
    if not json_output:
        upstream, result = best
        pick = upstream.name if upstream.name != "custom" else upstream.display_url
        ui.out.print(f"Fastest: {result.name} ({choosing.describe_speed(result)}). Use it: devpictl up --mirror {pick}")
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
