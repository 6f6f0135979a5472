"""devpictl backup / restore: move a cache's data with devpi-export and devpi-import."""

from __future__ import annotations

from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    path: Path = typer.Argument(None, help="Archive to write [default: ./devpictl-NAME-DATE.tar.gz].", dir_okay=False),
    name: str = options.NAME,
    include_files: bool = typer.Option(False, "--include-files", help="Also store the files downloaded from the upstream (large)."),
    json_output: bool = options.JSON,
) -> None:
    """Write a consistent archive of the cache.

    It holds users, indexes and uploads; with --include-files also the mirrored files.

    Example: devpictl backup --include-files cache.tar.gz
    """
    from devpictl import backup as bkp
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    target = bkp.backup_path(instance, path)
    engine = connect()
    with ui.reporter(json_output) as rep:
        result = bkp.backup(engine, instance, target, include_files=include_files, reporter=rep)
    if json_output:
        ui.print_json(result)
    else:
        ui.out.print(f"Wrote {result.path} ({ui.human_size(result.size)})")


def restore(
    path: Path = typer.Argument(..., help="An archive `devpictl backup` wrote.", dir_okay=False),
    name: str = options.NAME,
    image: str = options.UP_IMAGE,
    force: bool = typer.Option(False, "--force", help="Replace the data of a cache that is not empty."),
    json_output: bool = options.JSON,
) -> None:
    """Bring a backup into a new or empty cache.

    A cache that holds data is replaced only with --force.

    Example: devpictl restore --name copy devpictl-default-20260101-120000.tar.gz
    """
    from devpictl import backup as bkp
    from devpictl import lifecycle, precedence, teamusers
    from devpictl import restore as rst
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    manifest = bkp.read_manifest(path)  # a bad archive fails here, before the engine is touched
    image = precedence.decide(precedence.ask(instance, image=image)).image
    engine = connect()
    with cache_lock(instance), ui.reporter(json_output) as rep:
        result = rst.restore(engine, instance, path, image, force=force, reporter=rep)
        result.actions += teamusers.adopt_user_passwords(str(manifest.get("cache") or ""), instance)
        if result.restart:
            result.index_url = lifecycle.up(engine, precedence.ask(instance, image=image), rep).index_url
    if json_output:
        ui.print_json(result)
        return
    for action in result.actions:
        ui.out.print(action)
    if result.index_url:
        ui.out.print(f"Cache {instance.name!r} is ready. Index URL: [bold]{result.index_url}[/]")
    else:
        ui.out.print(f"Start it with: devpictl up --name {instance.name}")
