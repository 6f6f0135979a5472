"""The installers pip-config knows, in the order it lists them: one line each."""

from __future__ import annotations

from devpictl.clientconfig.base import Installer
from devpictl.clientconfig.pdm import Pdm
from devpictl.clientconfig.pip import Pip
from devpictl.clientconfig.pipenv import Pipenv
from devpictl.clientconfig.poetry import Poetry
from devpictl.clientconfig.uv import Uv
from devpictl.errors import BadInput

INSTALLERS: dict[str, Installer] = {
    installer.name: installer
    for installer in (
        Pip(),
        Uv(),
        Pdm(),
        Poetry(),
        Pipenv(),
    )
}
TOOLS = tuple(INSTALLERS)


def get(tool: str) -> Installer:
    try:
        return INSTALLERS[tool]
    except KeyError:
        raise BadInput(f"unknown tool {tool!r}: use {', '.join(TOOLS)}") from None


def parse_tools(values: list[str] | None, default: tuple[str, ...] = ("pip",)) -> tuple[str, ...]:
    """``--tool`` values (repeated or comma-separated) as known tool names, in order, once each."""
    tools: list[str] = []
    for value in values or []:
        for item in filter(None, (part.strip().lower() for part in value.split(","))):
            if item not in INSTALLERS:
                raise BadInput(f"unknown tool {item!r}: use {', '.join(TOOLS)} (repeat --tool or separate with commas)")
            if item not in tools:
                tools.append(item)
    return tuple(tools) or default
