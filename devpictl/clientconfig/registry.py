"""The installers pip-config knows, in the order it lists them: one line each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devpictl.clientconfig.base import Installer
from devpictl.clientconfig.manifest import Applied, Change
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


def _command(tool: str, index_url: str) -> dict[str, object]:
    """{"command": ...} for a tool set up by a command in the project, else nothing."""
    command = get(tool).command(index_url)
    return {"command": command} if command else {}


@dataclass
class ShownConfig:
    """`pip-config --json`: what each tool would be given (its file, settings and environment), nothing written."""

    index_url: str
    files: dict[str, Path | None]  # tool -> the file devpictl edits for it (None: a project tool without --project)

    def as_dict(self) -> dict[str, object]:
        return {
            "index_url": self.index_url,
            "written": False,
            "tools": {
                tool: {
                    "file": str(path) if path else None,
                    "settings": get(tool).settings(self.index_url),
                    "env": get(tool).env_vars(self.index_url),
                    **_command(tool, self.index_url),
                }
                for tool, path in self.files.items()
            },
        }


@dataclass
class ShellEnv:
    """`pip-config --shell --json`: the environment variables each tool reads."""

    index_url: str
    tools: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"index_url": self.index_url, "env": {tool: get(tool).env_vars(self.index_url) for tool in self.tools}}


@dataclass
class Written:
    """`pip-config --write --json`: per tool, the file changed (or, with ``dry_run``, that would be, with its diff)."""

    index_url: str
    dry_run: bool
    changes: dict[str, Change | None]  # None: the tool has no file outside a project
    applied: dict[str, Applied] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        tools: dict[str, dict[str, object]] = {}
        for tool, change in self.changes.items():
            if change is None:
                tools[tool] = {"file": None, "changed": False, **_command(tool, self.index_url)}
                continue
            done = self.applied.get(tool)
            tools[tool] = {
                "file": str(change.path),
                "changed": change.changed,
                "created": change.old is None,
                "backup": str(done.backup) if done and done.backup else None,
                "notes": change.notes,
                **({"diff": change.diff()} if self.dry_run else {}),
            }
        return {"index_url": self.index_url, "dry_run": self.dry_run, "written": bool(self.applied), "tools": tools}
