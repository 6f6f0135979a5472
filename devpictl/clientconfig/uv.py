"""uv: an [[index]] named devpictl, marked default, in the user's uv.toml."""

from __future__ import annotations

from pathlib import Path

import tomlkit

from devpictl.clientconfig import toml
from devpictl.clientconfig.base import (
    INDEX_NAME,
    Installer,
    ca_file,
    environ,
    home,
    is_windows,
    xdg_config_home,
)
from devpictl.errors import BadInput, Conflict

TABLE = ("index",)


def index(index_url: str) -> dict[str, object]:
    # uv reaches a plain-http index as it is; its allow-insecure-host only turns off
    # certificate checks, which would be a risk and no help here.
    return {"name": INDEX_NAME, "url": str(index_url), "default": True}


def user_config_file(env: dict[str, str] | None = None) -> Path:
    env = environ(env)
    if is_windows():
        return Path(env.get("APPDATA") or home(env) / "AppData" / "Roaming") / "uv" / "uv.toml"
    return xdg_config_home(env) / "uv" / "uv.toml"  # macOS too, as uv documents


def edit_toml(text: str, index_url: str, force: bool = False, where: str = "uv.toml") -> str:
    """``text`` with uv's default index set to ``index_url`` (an [[index]] named devpictl)."""
    doc = toml.parse(text, where)
    data = doc.unwrap()
    indexes = data.get("index", [])
    indexes = indexes if isinstance(indexes, list) else []
    ours = next((i for i, item in enumerate(indexes) if isinstance(item, dict) and item.get("name") == INDEX_NAME), None)
    # uv uses the first index marked default, and an [[index]] default wins over index-url;
    # so only another default ahead of ours (or any, before we have one) is in the way.
    ahead = [
        i
        for i, item in enumerate(indexes)
        if isinstance(item, dict) and item.get("default") is True and item.get("name") != INDEX_NAME and (ours is None or i < ours)
    ]
    pip_table = data.get("pip")
    if not isinstance(pip_table, dict):
        pip_table = {}
    legacy = (
        []
        if ours is not None
        else [(key, value) for key, value in (("index-url", data.get("index-url")), ("pip.index-url", pip_table.get("index-url"))) if value]
    )
    if not force and (ahead or legacy):
        if ahead:
            other = indexes[ahead[0]]
            what = f"index {other.get('name') or other.get('url')!r} in {where} is already uv's default index (default = true)"
        else:
            what = f"{where} already sets uv's default index ({legacy[0][0]} = {legacy[0][1]!r})"
        raise Conflict(f"{what}: add --force to make the devpictl cache the default instead (--undo puts the file back)")
    try:
        toml.put_array_entry(doc, TABLE, index(index_url), INDEX_NAME, ahead[0] if ahead else None)
        return toml.dumps(doc)
    except toml.LayoutError as exc:
        raise BadInput(
            f"cannot change {where} without rewriting it ({exc}): add the [[index]] table that `devpictl pip-config --tool uv` prints by hand"
        ) from None


class Uv(Installer):
    name = "uv"
    overriding_env = ("UV_DEFAULT_INDEX", "UV_INDEX_URL")

    def settings(self, index_url: str) -> dict[str, object]:
        return index(index_url)

    def env_vars(self, index_url: str) -> dict[str, str]:
        bundle = ca_file(index_url)
        return {"UV_DEFAULT_INDEX": str(index_url), **({"SSL_CERT_FILE": bundle} if bundle else {})}

    def trust_note(self, index_url: str) -> str | None:
        bundle = ca_file(index_url)
        if bundle is None:
            return None
        # uv.toml has no setting for a CA bundle: uv reads it from the environment only.
        return f"uv trusts the cache's CA only with SSL_CERT_FILE={bundle} in its environment (`devpictl pip-config --shell --tool uv` prints it)"

    def snippet(self, index_url: str) -> str:
        return tomlkit.dumps({"index": [index(index_url)]})

    def config_file(self, *, scope=None, python=None, project=None) -> Path:
        return user_config_file()

    def edit(self, text, index_url, *, added, force, where):
        return edit_toml(text, index_url, force, where), {}

    def notes(self, path: Path, new_text: str, env) -> list[str]:
        if env.get("UV_NO_CONFIG") or env.get("UV_CONFIG_FILE"):
            return [f"UV_NO_CONFIG or UV_CONFIG_FILE is set, so uv does not read {path}"]
        return []
