"""pipenv: a [[source]] named devpictl, first (pipenv's default index), in a project's Pipfile."""

from __future__ import annotations

from pathlib import Path

import tomlkit

from devpictl.clientconfig import toml
from devpictl.clientconfig.base import INDEX_NAME, ProjectInstaller, is_plain_http
from devpictl.errors import BadInput

TABLE = ("source",)


def source(index_url: str) -> dict[str, object]:
    # verify_ssl = false is what makes pipenv pass --trusted-host to pip for plain http.
    return {"name": INDEX_NAME, "url": index_url, "verify_ssl": not is_plain_http(index_url)}


def edit_pipfile(text: str, index_url: str, where: str = "Pipfile") -> str:
    """``text`` with our [[source]] first: pipenv installs a package from the first source unless
    the package names another with index = "..."."""
    doc = toml.parse(text, where)
    sources = doc.unwrap().get("source", [])
    first_is_ours = isinstance(sources, list) and bool(sources) and isinstance(sources[0], dict) and sources[0].get("name") == INDEX_NAME
    try:
        toml.put_array_entry(doc, TABLE, source(index_url), INDEX_NAME, None if first_is_ours or not sources else 0)
        return toml.dumps(doc)
    except toml.LayoutError as exc:
        raise BadInput(
            f"cannot change {where} without rewriting it ({exc}): add the [[source]] table that `devpictl pip-config --tool pipenv` prints by hand"
        ) from None


class Pipenv(ProjectInstaller):
    name = "pipenv"
    project_file_name = "Pipfile"

    def settings(self, index_url: str) -> dict[str, object]:
        return source(index_url)

    def env_vars(self, index_url: str) -> dict[str, str]:
        # pipenv then uses the cache wherever a Pipfile names the default index.
        return {"PIPENV_PYPI_MIRROR": index_url}

    def snippet(self, index_url: str) -> str:
        return tomlkit.dumps({"source": [source(index_url)]})

    def edit(self, text, index_url, *, added, force, where):
        return edit_pipfile(text, index_url, where), {}

    def notes(self, path: Path, new_text: str, env) -> list[str]:
        if (path.parent / "Pipfile.lock").exists():
            return [f"run `pipenv lock` in {path.parent}: Pipfile.lock records the sources it was made from"]
        return []
