"""devpictl set-policy: what a running cache's pages leave off (minimum release age, allow and deny lists)."""

from __future__ import annotations

from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("set-policy")(set_policy)


def set_policy(
    min_release_age: str = options.MIN_RELEASE_AGE,
    allow_newer: list[str] = options.ALLOW_NEWER,
    deny: list[str] = options.DENY,
    allow_only: Path = options.ALLOW_ONLY,
    no_deny: list[str] = typer.Option(
        None, "--no-deny", help="Lift the deny of this project (as a refusal's message says); repeat for more."
    ),
    clear: bool = typer.Option(False, "--clear", help="Drop every rule first: no age, no exceptions, no lists."),
    name: str = options.NAME,
    json_output: bool = options.JSON,
) -> None:
    """Change the page policy of a running cache; remembered for the next `up`. Options not given keep their value.

    Example: devpictl set-policy --min-release-age 7d --allow-newer my-tool
    """
    from devpictl import policy
    from devpictl.cli import ui
    from devpictl.container import connect
    from devpictl.settings import Instance, cache_lock, check_name

    instance = Instance(check_name(name))
    given = policy.given_settings(min_release_age, allow_newer, deny, allow_only)
    with cache_lock(instance):
        result = policy.set_policy(connect(), instance, given, clear=clear, undeny=policy.given_deny(no_deny or ()))
    if json_output:
        ui.print_json(result)
    else:
        ui.out.print(f"Cache {result.name!r} page policy: {result.policy}" + ("" if result.changed else " (unchanged)"))
