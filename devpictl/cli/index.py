"""devpictl index: team indexes beside the mirror (create, ls, show, rm)."""

from __future__ import annotations

import sys

import typer

from devpictl.cli import options

app = typer.Typer(help="Team indexes: private indexes whose base is the mirror, served from the same URL as it.", no_args_is_help=True)

INDEX = typer.Argument(..., metavar="USER/INDEX", help="The index, e.g. team/dev.")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="index")


def split_list(value: str | None) -> list[str]:
    """A comma-separated option's items, blanks dropped."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@app.command("create")
def create(
    index: str = INDEX,
    bases: str = typer.Option("root/pypi", "--bases", metavar="INDEX[,INDEX]", help="Indexes it inherits from, comma-separated."),
    volatile: bool = typer.Option(
        False, "--volatile/--no-volatile", help="Whether an uploaded release may be overwritten or deleted [default: no, as on PyPI]."
    ),
    upload_by: str = typer.Option(
        None, "--upload-by", metavar="USER[,USER]", help="Users who may upload to it (they must exist) [default: the index's user]."
    ),
    name: str = options.WHICH_CACHE,
    json_output: bool = options.JSON,
) -> None:
    """Create a team index; its user is created too, with a generated password devpictl keeps.

    Example: devpictl index create team/dev
    """
    from devpictl import teams
    from devpictl.cli import ui
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    teams.check_index(index)
    with cache_lock(instance), teams.session(instance, "index create") as s:
        result = teams.create_index(s, instance, index, bases=split_list(bases), volatile=volatile, upload_by=split_list(upload_by))
    if json_output:
        ui.print_json(result)
        return
    if result.user_created:
        ui.out.print(f"Created user {result.user_created}; its password is kept in {result.password_file}")
    info = result.index
    ui.out.print(f"Created index {info.index} (bases {', '.join(info.bases) or 'none'}; uploads by {', '.join(info.upload_by)})")
    ui.out.print(f"Install from: {info.index_url}")
    ui.out.print(f"Upload to:    {info.upload_url}  (devpictl upload-config --index {info.index} --user USER --write)")


@app.command("ls")
def ls(name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """List the cache's indexes: the mirror and the team indexes, with their install URL.

    Example: devpictl index ls
    """
    from rich.table import Table

    from devpictl import teams
    from devpictl.cli import ui
    from devpictl.settings import Instance

    with teams.session(Instance(options.only_cache(name))) as s:
        result = teams.list_indexes(s)
    if json_output:
        ui.print_json(result)
        return
    table = Table("index", "type", "bases", "uploads by", "install URL", box=None)
    for info in result.indexes:
        table.add_row(info.index, info.type, ", ".join(info.bases) or "-", ", ".join(info.upload_by) or "-", info.index_url)
    ui.print_table(table)


@app.command("show")
def show(index: str = INDEX, name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """Show one index: its bases, who may upload, its URLs and the projects uploaded to it.

    Example: devpictl index show team/dev
    """
    from devpictl import teams
    from devpictl.cli import ui
    from devpictl.settings import Instance

    teams.check_index(index)
    with teams.session(Instance(options.only_cache(name))) as s:
        result = teams.show_index(s, index)
    if json_output:
        ui.print_json(result)
        return
    info = result.index
    ui.out.print(f"index:       {info.index} ({info.type}{', volatile' if info.volatile else ''})")
    ui.out.print(f"bases:       {', '.join(info.bases) or '-'}")
    if info.type != "mirror":
        ui.out.print(f"uploads by:  {', '.join(info.upload_by) or 'nobody'}")
        ui.out.print(f"upload URL:  {info.upload_url}")
    ui.out.print(f"install URL: {info.index_url}")
    if info.projects is not None:
        ui.out.print(f"projects:    {', '.join(info.projects) or 'none uploaded yet'}")


@app.command("rm")
def rm(
    index: str = INDEX,
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask before deleting the index and its uploads."),
    name: str = options.WHICH_CACHE,
    json_output: bool = options.JSON,
) -> None:
    """Delete a team index and everything uploaded to it (asks first, or --yes).

    Example: devpictl index rm team/dev --yes
    """
    from devpictl import teams
    from devpictl.cli import ui
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    teams.check_index(index)
    with cache_lock(instance), teams.session(instance, "index rm") as s:
        checked, _, projects = teams.index_to_remove(s, index)
        if not yes:
            if not sys.stdin.isatty():
                raise BadInput(f"index rm deletes {checked} and its {len(projects)} uploaded projects: add --yes to confirm")
            typer.confirm(f"Delete index {checked} and its {len(projects)} uploaded projects?", abort=True)
        result = teams.remove_index(s, checked)
    if json_output:
        ui.print_json(result)
    else:
        ui.out.print(f"Removed index {result.index} ({result.projects} uploaded projects)")
