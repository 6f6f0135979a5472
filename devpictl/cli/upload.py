"""devpictl upload-config: what twine and uv publish need to upload to a team index, and taking it back."""

from __future__ import annotations

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("upload-config")(upload_config)


def upload_config(
    index: str = typer.Option(..., "--index", metavar="USER/INDEX", help="The team index to upload to, e.g. team/dev."),
    user: str = typer.Option(..., "--user", "-u", metavar="USER", help="Who uploads: a user allowed to upload to the index, e.g. ci."),
    write: bool = typer.Option(
        False, "--write", help="Add the index's section to ~/.pypirc (mode 0600), keeping the rest; `pip-config --undo` puts it back."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what --write would change (the password left out), and change nothing."),
    shell: str = typer.Option(
        None,
        "--shell",
        metavar="sh|fish|powershell",
        help='Print variables for twine and uv publish instead (the password is fetched as they run): eval "$(devpictl upload-config ... --shell sh)".',
    ),
    name: str = options.WHICH_CACHE,
    json_output: bool = options.JSON,
) -> None:
    """Show or write what twine and uv publish need to upload to a team index.

    Example: devpictl upload-config --index team/dev --user ci --write
    """
    from devpictl import teams, teamusers
    from devpictl.cli import ui
    from devpictl.clientconfig import manifest as mf
    from devpictl.clientconfig import pypirc
    from devpictl.clientconfig.shell import parse_shell
    from devpictl.errors import BadInput
    from devpictl.settings import Instance

    instance = Instance(options.only_cache(name))
    index = teams.check_index(index)
    teams.check_user(user)
    syntax = parse_shell(shell) if shell is not None else None
    if syntax is not None and (write or dry_run):
        raise BadInput("--shell prints variables and writes no file: leave out --write and --dry-run")
    password = teamusers.stored_user_password(instance, user)
    with teams.session(instance) as s:
        config = teams.team_index(teams.all_indexes(s.client.users()), index, s.cache)
        upload_url = f"{s.base_url}/{index}/"
    if user not in (config.get("acl_upload") or []):
        raise BadInput(f"user {user} may not upload to {index}: allow it with `devpictl user allow {user} --upload-to {index}`")
    if syntax is not None:
        typer.echo(pypirc.shell_lines(index, user, upload_url, instance.name, syntax), nl=False)
        return
    installer = pypirc.Pypirc(index, user, password)
    change = None
    applied = None
    if write or dry_run:
        change = mf.plan_change(installer, installer.config_file(), upload_url)
        change.secret = True
        if write and change.changed:
            applied = mf.apply_change(change, mf.Manifest())
    if json_output:
        ui.print_json(pypirc.UploadConfig(instance.name, index, user, upload_url, change, applied, dry_run, password))
        return
    repository = pypirc.repository_name(index)
    if change is None:
        typer.echo(f"# ~/.pypirc (devpictl upload-config --index {index} --user {user} --write adds it)")
        typer.echo(installer.snippet(upload_url))
    elif dry_run:
        typer.echo(pypirc.masked_diff(change, password) if change.changed else f"# {change.path} already has [{repository}]", nl=True)
        return
    elif change.changed:
        ui.out.print(
            f"twine: {'created' if change.old is None else 'updated'} {change.path} (mode 0600); undo with: devpictl pip-config --undo"
        )
    else:
        ui.out.print(f"twine: {change.path} already has [{repository}]")
    ui.out.print(f"Upload with: twine upload -r {repository} dist/*")
    ui.out.print(
        f'         or: uv publish --publish-url {upload_url} --username {user} --password "$(devpictl user password {user} --show)"'
    )
