"""pdm: pypi.url (and, for plain http, pypi.verify_ssl) in pdm's global config.toml."""

from __future__ import annotations

from pathlib import Path

import tomlkit

from devpictl.clientconfig import toml
from devpictl.clientconfig.base import (
    Installer,
    environ,
    is_plain_http,
    is_xdg_platform,
    xdg_config_home,
)
from devpictl.errors import BadInput


def settings(index_url: str) -> dict[str, object]:
    """pdm's global config keys (dotted, as `pdm config` names them) for ``index_url``."""
    result: dict[str, object] = {"pypi.url": index_url}
    if is_plain_http(index_url):
        # pdm skips an index on plain http unless its host is trusted, and
        # verify_ssl = false is what makes pdm trust it.
        result["pypi.verify_ssl"] = False
    return result


def config_file(env: dict[str, str] | None = None) -> Path:
    """pdm's global config.toml: $PDM_CONFIG_FILE, else pdm's platformdirs location."""
    env = environ(env)
    if env.get("PDM_CONFIG_FILE"):
        return Path(env["PDM_CONFIG_FILE"]).expanduser()
    if is_xdg_platform():
        return xdg_config_home(env) / "pdm" / "config.toml"
    import platformdirs

    return platformdirs.user_config_path("pdm") / "config.toml"


def edit_toml(text: str, index_url: str, added: dict | None = None, where: str = "config.toml") -> tuple[str, dict]:
    """``text`` with pdm's pypi.url (and, for plain http, verify_ssl) set; what devpictl added."""
    doc = toml.parse(text, where)
    added = dict(added or {})
    pypi = doc.get("pypi")
    if pypi is not None and not isinstance(pypi, tomlkit.items.Table):
        raise BadInput(
            f"cannot change {where} without rewriting it (pypi is not a [pypi] table): run `pdm config pypi.url {index_url}` instead"
        )
    if pypi is None:
        doc["pypi"] = pypi = tomlkit.table()
    verify = pypi.unwrap().get("verify_ssl")
    if pypi.get("url") != index_url:
        pypi["url"] = index_url
    if is_plain_http(index_url):
        if verify is not False:
            added.setdefault("pypi.verify_ssl", {"was": verify})
            pypi["verify_ssl"] = False
    else:
        # An https cache needs no exception: take back the one devpictl made.
        record = added.pop("pypi.verify_ssl", None)
        if record is not None and verify is False:
            if record["was"] is None:
                del pypi["verify_ssl"]
            else:
                pypi["verify_ssl"] = record["was"]
    try:
        return toml.dumps(doc), added
    except toml.LayoutError as exc:
        raise BadInput(f"cannot change {where} without rewriting it ({exc}): run `pdm config pypi.url {index_url}` instead") from None


class Pdm(Installer):
    name = "pdm"
    overriding_env = ("PDM_PYPI_URL",)

    def settings(self, index_url: str) -> dict[str, object]:
        return settings(index_url)

    def env_vars(self, index_url: str) -> dict[str, str]:
        names = {"pypi.url": "PDM_PYPI_URL", "pypi.verify_ssl": "PDM_PYPI_VERIFY_SSL"}
        return {names[k]: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in settings(index_url).items()}

    def snippet(self, index_url: str) -> str:
        return tomlkit.dumps({"pypi": {key.split(".", 1)[1]: value for key, value in settings(index_url).items()}})

    def config_file(self, *, scope=None, python=None, project=None) -> Path:
        return config_file()

    def edit(self, text, index_url, *, added, force, where):
        return edit_toml(text, index_url, added, where)
