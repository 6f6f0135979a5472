"""devpictl password: show or rotate the cache's root password."""

from __future__ import annotations

from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("password")(password)


def password(
    show: bool = typer.Option(
        False,
        "--show",
        help="Print the stored root password. This is the one command that prints a secret: mind your terminal's scrollback and logs.",
    ),
    rotate: bool = typer.Option(
        False,
        "--rotate",
        help="Give root a new generated password in devpi and in devpictl's store, together; prints where it is kept, not the password.",
    ),
    replica_secret: Path = typer.Option(
        None,
        "--replica-secret",
        dir_okay=False,
        help="Write the cache's devpi secret into this file (0600), for `devpictl up --replica-of URL --replica-secret FILE` on another machine; prints nothing secret.",
    ),
    name: str = options.NAME,
    json_output: bool = options.JSON,
) -> None:
    """Show or rotate the root password, or write the secret replicas need.

    The password lives in a 0600 file in devpictl's data directory. --show
    prints it, the only place devpictl ever prints a secret. --rotate logs in
    with the stored password, has devpi change it, and only then replaces the
    stored file; if devpi refuses, nothing changes.

    --replica-secret writes devpi's own secret, which a primary and its
    replicas share (replicas sign their requests with it): copy the file to the
    replica's machine as you would the password.

    Example: devpictl password --rotate
    """
    from devpictl.cli import ui
    from devpictl.errors import BadInput
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    if sum((show, rotate, replica_secret is not None)) > 1:
        raise BadInput(
            "--show, --rotate and --replica-secret do not go together: give one (rotate first, then show the new password with --show)"
        )
    if not show and not rotate and replica_secret is None:
        raise BadInput("say what to do with the root password: --show to print it, or --rotate to change it (or --replica-secret FILE)")
    if replica_secret is not None:
        from devpictl import replica
        from devpictl.container import connect

        exported = replica.export_secret(connect(), instance, replica_secret)
        if json_output:
            ui.print_json(exported)
        else:
            ui.out.print(
                f"Wrote the devpi secret of cache {instance.name!r} to {replica_secret} (mode 0600); copy it to the replica's machine as you would a password"
            )
        return
    if show:
        from devpictl.password import ShownPassword, stored_password

        secret = stored_password(instance)
        if instance.pending_password_file.exists():
            ui.err.print(
                f"note: a rotation was interrupted, so devpi may hold the password in {instance.pending_password_file} instead; "
                f"`devpictl password --rotate --name {instance.name}` asks devpi and keeps the right one"
            )
        if json_output:
            ui.print_json(ShownPassword(instance.name, secret, instance.password_file))
        else:
            # Plain write: no markup or wrapping may change a secret's characters.
            typer.echo(secret)
        return
    from devpictl import password as pw
    from devpictl.container import connect
    from devpictl.errors import interrupts_deferred

    with cache_lock(instance):
        rotation = pw.rotate(connect(), instance)
    # The rotation is done: a Ctrl-C now would only make exit code 130 follow a success.
    with interrupts_deferred():
        if json_output:
            ui.print_json(rotation)
        else:
            if rotation.settled:
                ui.out.print(rotation.settled)
            ui.out.print(f"Rotated the root password of cache {rotation.name!r}; the new one is kept in {rotation.password_file}")
            ui.out.print(f"Show it with: devpictl password --show{'' if name == 'default' else ' --name ' + name}")
