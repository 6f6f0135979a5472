"""devpictl prune: remove the least recently used mirrored files."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def prune(
    max_size: str = typer.Option(
        None, "--max-size", help="Remove the least recently used mirrored files until the rest fit, e.g. 20G (K, M, G, T: powers of 1024)."
    ),
    unused_for: str = typer.Option(None, "--unused-for", help="Remove mirrored files nobody downloaded for this long, e.g. 90d (h, d, w)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    name: str = options.NAME,
    json_output: bool = options.JSON,
) -> None:
    """Remove mirrored files to keep the cache's disk in bounds.

    Only files the cache fetched from its upstream go, least recently used
    first; files uploaded to your own indexes never do. A removed file is
    fetched from the upstream again when someone next asks for it.

    Example: devpictl prune --max-size 20G --dry-run
    """
    from devpictl import prune as core
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    if max_size is None and unused_for is None:
        raise BadInput("say what to remove: --max-size SIZE (least recently used first), --unused-for DURATION, or both")
    max_bytes = core.parse_size(max_size) if max_size is not None else None
    unused_days = core.parse_days(unused_for) if unused_for is not None else None
    result = core.prune(connect(), instance, max_bytes=max_bytes, unused_days=unused_days, dry_run=dry_run)
    if json_output:
        ui.print_json(result)
        return
    verb = "Would remove" if dry_run else "Removed"
    if dry_run:
        for item in result.removed:
            ui.out.print(f"  {item['file']} ({ui.human_size(item['bytes'])}, unused {item['unused_days']} days)", markup=False)
    ui.out.print(
        f"{verb} {len(result.removed)} of {result.files} mirrored files ({ui.human_size(result.freed_bytes)}); "
        f"{ui.human_size(result.kept_bytes)} of mirrored files {'would stay' if dry_run else 'stay'} in cache {result.name!r}."
    )
