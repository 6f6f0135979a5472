"""devpictl pip-config: point pip at the cache."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("pip-config")(pip_config)


def pip_config(
    name: str = options.NAME,
    write: bool = typer.Option(False, "--write", help="Set these keys in your user pip config (other settings kept, old file backed up once)."),
    json_output: bool = options.JSON,
) -> None:
    """Show the pip configuration for the running cache, or write it.

    Example: devpictl pip-config --write
    """
    from devpictl import cache, clientconfig
    from devpictl import container as ctr
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, check_name

    instance = Instance(check_name(name))
    running = cache.running_container(connect(), instance)
    url = cache.index_url(ctr.local_base_url(running))
    settings = clientconfig.pip_settings(url)
    path = clientconfig.pip_user_config_file()
    backup = clientconfig.write_pip_config(path, url) if write else None
    if json_output:
        ui.print_json({"index_url": url, "pip": settings, "file": str(path), "written": write, "backup": str(backup) if backup else None})
        return
    if not write:
        typer.echo(clientconfig.render_pip_conf(settings), nl=False)
        return
    ui.out.print(f"Set {', '.join(settings)} in {path}")
    if backup:
        ui.out.print(f"The old file is kept as {backup}")
