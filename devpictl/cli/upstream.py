"""devpictl set-upstream / mirrors: where the cache fetches from."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("set-upstream")(set_upstream)
    app.command("mirrors")(mirrors)


def set_upstream(
    mirror: str = typer.Argument(..., help="A catalog name (see `devpictl mirrors`) or an index URL."),
    name: str = options.NAME,
    check: bool = options.CHECK,
    probe_project: str = options.PROBE,
    json_output: bool = options.JSON,
) -> None:
    """Switch the upstream of a running cache; cached pages follow at once.

    Example: devpictl set-upstream tuna
    """
    from devpictl import cache
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.mirrors import resolve
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    upstream = resolve(mirror)
    engine = connect()
    with ui.reporter(json_output) as rep:
        result = cache.set_upstream(engine, instance, upstream, check=check, probe_project=probe_project, reporter=rep)
    if json_output:
        ui.print_json(
            {
                "name": result.name,
                "previous": {"name": result.previous.name, "url": result.previous.url},
                "upstream": {"name": result.upstream.name, "url": result.upstream.url},
                "changed": bool(result.actions),
                "actions": result.actions,
            }
        )
    elif result.actions:
        for action in result.actions:
            ui.out.print(action)
    else:
        ui.out.print(f"Cache {result.name!r} already uses {result.upstream.name}; nothing changed.")


def mirrors(json_output: bool = options.JSON) -> None:
    """List the built-in mirror catalog.

    Example: devpictl mirrors
    """
    from devpictl.cli import ui
    from devpictl.mirrors import CATALOG, RETIRED

    if json_output:
        ui.print_json([{"name": m.name, "url": m.url, "note": m.note} for m in CATALOG.values()])
        return
    from rich.table import Table

    table = Table(box=None)
    table.add_column("name")
    table.add_column("URL", no_wrap=True)
    table.add_column("note")
    for m in CATALOG.values():
        table.add_row(m.name, m.url or "(default)", m.note)
    ui.out.print(table)
    for retired, (why, instead) in RETIRED.items():
        ui.out.print(f"[dim]not offered: {retired} ({why}; use {instead})[/]")
