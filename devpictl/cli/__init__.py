"""devpictl's command line: a thin Typer layer over devpictl's core modules."""

from __future__ import annotations

import signal
import sys

import typer
from typer.core import TyperGroup

from devpictl.cli import (
    backup,
    build,
    cache,
    export,
    index,
    mirrors,
    password,
    pipconfig,
    policy,
    prune,
    stats,
    status,
    upload,
    upstream,
    user,
    warm,
)
from devpictl.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, DevpictlError, Interrupted, Terminated


class DevpictlGroup(TyperGroup):
    """Turns an expected failure into one red line on stderr and its exit code."""

    # typer.Context is the public subclass of the Context typer's own signature names (private).
    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DevpictlError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            from devpictl.cli.ui import print_error

            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            # Where a command knows what state a signal leaves, it raises Interrupted (above) saying so.
            if (ctx.obj or {}).get("debug"):
                raise
            from devpictl.cli.ui import print_error

            command = ctx.invoked_subcommand or ""
            how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
            print_error(
                Interrupted(
                    f"stopped by {how} before `devpictl {command}` finished: run it again to finish "
                    "(`devpictl status` shows the cache's state)"
                )
            )
            raise typer.Exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=DevpictlGroup,
    help="Stand up a devpi-server PyPI cache in Docker and point pip at it.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_version(value: bool) -> None:
    if value:
        from devpictl import __version__

        typer.echo(f"devpictl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", envvar="DEVPICTL_DEBUG", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help="Show devpictl's version and exit."),
) -> None:
    """Stand up a devpi-server PyPI cache in Docker and point pip at it."""
    ctx.obj = {"debug": debug}


build.register(app)
cache.register(app)
status.register(app)
upstream.register(app)
mirrors.register(app)
pipconfig.register(app)
backup.register(app)
password.register(app)
warm.register(app)
prune.register(app)
stats.register(app)
export.register(app)
index.register(app)
user.register(app)
upload.register(app)
policy.register(app)


def stop_on_sigterm(signum, frame) -> None:
    raise Terminated()


def main() -> None:
    # SIGTERM (a cancelled CI job, `timeout`) takes the clean-up paths SIGINT takes.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sys.exit(app())
