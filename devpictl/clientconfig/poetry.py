"""poetry: a primary [[tool.poetry.source]] named devpictl in a project's pyproject.toml."""

from __future__ import annotations

import shlex
from pathlib import Path

import tomlkit

from devpictl.clientconfig import toml
from devpictl.clientconfig.base import INDEX_NAME, ProjectInstaller
from devpictl.errors import BadInput

TABLE = ("tool", "poetry", "source")


def source(index_url: str) -> dict[str, object]:
    # A primary source replaces poetry's implicit default index.
    return {"name": INDEX_NAME, "url": index_url, "priority": "primary"}


def command(index_url: str) -> str:
    return f"poetry source add --priority=primary {INDEX_NAME} {shlex.quote(index_url)}"


def edit_pyproject(text: str, index_url: str, where: str = "pyproject.toml") -> str:
    """``text`` with a primary [[tool.poetry.source]] named devpictl, as `poetry source add` makes."""
    doc = toml.parse(text, where)
    try:
        toml.put_array_entry(doc, TABLE, source(index_url), INDEX_NAME)
        return toml.dumps(doc)
    except toml.LayoutError as exc:
        raise BadInput(f"cannot change {where} without rewriting it ({exc}): run `{command(index_url)}` instead") from None


class Poetry(ProjectInstaller):
    name = "poetry"
    project_file_name = "pyproject.toml"

    def settings(self, index_url: str) -> dict[str, object]:
        return source(index_url)

    def snippet(self, index_url: str) -> str:
        return tomlkit.dumps({"tool": {"poetry": {"source": [source(index_url)]}}})

    def edit(self, text, index_url, *, added, force, where):
        return edit_pyproject(text, index_url, where), {}

    def notes(self, path: Path, new_text: str, env) -> list[str]:
        if (path.parent / "poetry.lock").exists():
            return [f"run `poetry lock` in {path.parent}: poetry.lock records where each package comes from"]
        return []

    def command(self, index_url: str) -> str:
        return command(index_url)
