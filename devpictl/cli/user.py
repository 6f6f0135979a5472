"""devpictl user: the people and CI jobs that upload to team indexes (create, allow, ls, rm, password)."""

from __future__ import annotations

import typer

from devpictl.cli import options
from devpictl.cli.index import split_list

app = typer.Typer(help="Users who upload to team indexes, each with a generated password devpictl keeps.", no_args_is_help=True)

USER = typer.Argument(..., metavar="USER", help="The user's name, e.g. ci.")
UPLOAD_TO = typer.Option(None, "--upload-to", metavar="INDEX[,INDEX]", help="Team indexes the user may upload to, comma-separated.")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="user")


def say_user(result) -> None:
    from devpictl.cli import ui

    info = result.info
    if result.action == "created":
        ui.out.print(f"Created user {result.user}; its password is kept in {info.password_file}")
    if info.upload_to:
        ui.out.print(f"{result.user} may upload to {', '.join(info.upload_to)}")
    else:
        ui.out.print(f"{result.user} may upload nowhere yet: `devpictl user allow {result.user} --upload-to INDEX`")


@app.command("create")
def create(user: str = USER, upload_to: str = UPLOAD_TO, name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """Create a user with a generated password (kept 0600, never printed), optionally allowed to upload to team indexes.

    Example: devpictl user create ci --upload-to team/dev
    """
    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    teams.check_user(user)
    with cache_lock(instance), teams.session(instance, "user create") as s:
        result = teamusers.create_user(s, instance, user, split_list(upload_to))
    if json_output:
        ui.print_json(result)
    else:
        say_user(result)


@app.command("allow")
def allow(user: str = USER, upload_to: str = UPLOAD_TO, name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """Let an existing user upload to more team indexes.

    Example: devpictl user allow ci --upload-to team/dev
    """
    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    teams.check_user(user)
    if not split_list(upload_to):
        raise BadInput("say where the user may upload: --upload-to INDEX, e.g. --upload-to team/dev")
    with cache_lock(instance), teams.session(instance, "user allow") as s:
        result = teamusers.allow_user(s, instance, user, split_list(upload_to))
    if json_output:
        ui.print_json(result)
    else:
        say_user(result)


@app.command("ls")
def ls(name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """List the cache's users, the indexes each owns and may upload to, and whether devpictl keeps its password.

    Example: devpictl user ls
    """
    from rich.table import Table

    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.settings import Instance

    instance = Instance(options.only_cache(name))
    with teams.session(instance) as s:
        result = teamusers.list_users(s, instance)
    if json_output:
        ui.print_json(result)
        return
    table = Table("user", "owns", "uploads to", "password kept in", box=None)
    for info in result.users:
        table.add_row(info.user, ", ".join(info.indexes) or "-", ", ".join(info.upload_to) or "-", str(info.password_file or "-"))
    ui.print_table(table)


@app.command("rm")
def rm(user: str = USER, name: str = options.WHICH_CACHE, json_output: bool = options.JSON) -> None:
    """Remove a user (not root, nor one that owns an index), its upload rights and its stored password.

    Example: devpictl user rm ci
    """
    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    teams.check_user(user)
    with cache_lock(instance), teams.session(instance, "user rm") as s:
        result = teamusers.remove_user(s, instance, user)
    if json_output:
        ui.print_json(result)
    else:
        ui.out.print(f"Removed user {result.user}")


@app.command("password")
def password(
    user: str = USER,
    show: bool = typer.Option(False, "--show", help="Print the user's stored password (the one way devpictl prints it)."),
    rotate: bool = typer.Option(False, "--rotate", help="Give the user a new generated password in devpi and in devpictl's store."),
    name: str = options.WHICH_CACHE,
    json_output: bool = options.JSON,
) -> None:
    """Show or rotate a user's password; without an option, say where it is kept.

    Example: devpictl user password ci --rotate
    """
    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, cache_lock

    instance = Instance(options.only_cache(name))
    if show and rotate:
        raise BadInput("--show and --rotate do not go together: rotate first, then show the new password with --show")
    if rotate:
        with cache_lock(instance), teams.session(instance, "user password --rotate") as s:
            result = teamusers.rotate_user_password(s, instance, user)
    else:
        secret = teamusers.stored_user_password(instance, user)
        result = teamusers.UserPassword(instance.name, user, teams.user_password_file(instance, user), False, secret if show else None)
        if show and not json_output:
            typer.echo(secret)  # plain: no markup may change a secret's characters
            return
    if json_output:
        ui.print_json(result)
    elif rotate:
        ui.out.print(f"Rotated the password of {user}; the new one is kept in {result.password_file}")
    else:
        ui.out.print(f"The password of {user} is kept in {result.password_file} (--show prints it)")
