"""devpictl set-upstream: switch where a running cache fetches from."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("set-upstream")(set_upstream)


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
