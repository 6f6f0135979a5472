"""pip: [global] index-url (and trusted-host for plain http) in pip.conf, per scope."""

from __future__ import annotations

import configparser
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from configupdater import ConfigUpdater, Option, Space

from devpictl.clientconfig.base import (
    Installer,
    ca_file,
    environ,
    home,
    is_windows,
    is_xdg_platform,
    real_path,
    xdg_config_home,
)
from devpictl.errors import BadInput

SCOPES = ("global", "user", "site")  # pip's own order: a later scope overrides an earlier one
CERT_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# pip reads <this>/pip.conf last among the global files on Unix (a seam for tests).
ETC_DIR = Path("/etc")


def settings(index_url: str) -> dict[str, str]:
    """The [global] keys that point pip at ``index_url``."""
    result = {"index-url": str(index_url)}
    parts = urlsplit(index_url)
    if parts.scheme == "http" and parts.hostname:
        # pip refuses plain http unless the host is trusted (loopback aside).
        result["trusted-host"] = parts.hostname
    bundle = ca_file(index_url)
    if bundle is not None and parts.scheme == "https":
        # pip's cert replaces the bundle pip trusts: devpictl's holds the cache's CA and this machine's.
        result["cert"] = bundle
    return result


def render_conf(values: dict[str, str]) -> str:
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


# --------------------------------------------------------------------------
# Where pip reads its files


def user_config_file(env: dict[str, str] | None = None) -> Path:
    """The per-user file pip reads last, and so the one `pip config --user` edits."""
    env = environ(env)
    if is_xdg_platform():
        return xdg_config_home(env) / "pip" / "pip.conf"
    if sys.platform == "darwin":
        # pip's rule: ~/Library/Application Support/pip if that folder exists, else ~/.config/pip.
        support = home(env) / "Library" / "Application Support" / "pip"
        return (support if support.is_dir() else home(env) / ".config" / "pip") / "pip.conf"
    import platformdirs

    return Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True)) / "pip.ini"


def config_files(env: dict[str, str] | None = None, prefix: Path | None = None) -> dict[str, list[Path]]:
    """The files pip reads for each scope, in pip's order (a later file wins); as pip's
    ``configuration.get_configuration_files``."""
    env = environ(env)
    name = "pip.ini" if is_windows() else "pip.conf"
    if is_xdg_platform():
        dirs = (env.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg").split(os.pathsep)
        global_files = [Path(os.path.expanduser(d)) / "pip" / name for d in dirs] + [ETC_DIR / name]
    else:
        import platformdirs

        where = platformdirs.site_data_dir if sys.platform == "darwin" else platformdirs.site_config_dir
        global_files = [Path(where("pip", appauthor=False)) / name]
    legacy_user = home(env) / ("pip" if is_windows() else ".pip") / name
    return {
        "global": global_files,
        "user": [legacy_user, user_config_file(env)],
        "site": [Path(sys.prefix if prefix is None else prefix) / name],
    }


def config_file(scope: str, env: dict[str, str] | None = None, prefix: Path | None = None) -> Path:
    """The file devpictl writes for ``scope``: the one pip reads last there, as `pip config --SCOPE set`."""
    if scope not in SCOPES:
        raise BadInput(f"unknown pip scope {scope!r}: use user, global or site")
    return config_files(env, prefix)[scope][-1]


def python_prefix(python: str | os.PathLike) -> Path:
    """``sys.prefix`` of another interpreter (a venv's python), whose pip reads prefix/pip.conf."""
    try:
        result = subprocess.run(
            [os.fspath(python), "-c", "import sys; print(sys.prefix)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInput(
            f"cannot run {python} ({getattr(exc, 'strerror', None) or exc}): give --python the path of a Python interpreter"
        ) from None
    if result.returncode != 0 or not result.stdout.strip():
        raise BadInput(f"{python} did not report its sys.prefix (exit {result.returncode}): give --python the path of a Python interpreter")
    return Path(result.stdout.strip())


# --------------------------------------------------------------------------
# Editing pip's INI files


def _norm_key(key: str) -> str:
    """pip treats ``index-url`` and ``index_url`` (any case) as one key."""
    return key.lower().replace("_", "-")


def set_ini_keys(text: str, section: str, values: dict[str, str | None]) -> str:
    """Set ``values`` in ``section`` of an INI text, keeping every other line as it was.

    A value of None removes the key; a value starting with a newline is written as
    indented continuation lines (pip allows a multi-line trusted-host).
    """
    if text and not text.endswith("\n"):
        text += "\n"
    updater = ConfigUpdater()
    updater.read_string(text)
    if not updater.has_section(section):
        text += ("\n" if text.strip() else "") + f"[{section}]\n"
        updater = ConfigUpdater()
        updater.read_string(text)
    target = updater[section]
    for name, value in values.items():
        blocks = list(target.iter_blocks())
        found = [block for block in blocks if isinstance(block, Option) and _norm_key(block.raw_key) == _norm_key(name)]
        # In place of the key, else after the section's last line that is not blank.
        at = blocks.index(found[0]) if found else max((i + 1 for i, b in enumerate(blocks) if not isinstance(b, Space)), default=0)
        for option in found:
            option.detach()
        if value is None:
            continue
        target.insert_at(at).option(name)
        if "\n" in value:
            target[name].set_values(value.split(), indent="    ", prepend_newline=value.startswith("\n"))
        else:
            target[name].value = value
    return str(updater)


def read_ini(text: str, where: str) -> configparser.RawConfigParser:
    """Parse ``text`` as pip does (RawConfigParser, strict), or say which file to fix."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=where)
    except configparser.Error as exc:
        reason = str(exc).splitlines()[0].rstrip(":")
        raise BadInput(f"{where} is not a valid pip config file ({reason}): fix it, then run devpictl again") from None
    return parser


def _ini_get(parser: configparser.RawConfigParser, section: str, key: str) -> str | None:
    if not parser.has_section(section):
        return None
    for name, value in parser.items(section):
        if _norm_key(name) == key:
            return value
    return None


def edit_conf(text: str, index_url: str, added: dict | None = None, where: str = "pip.conf") -> tuple[str, dict]:
    """``text`` with pip pointed at ``index_url``, and the record of what devpictl added.

    trusted-host is a list: devpictl adds its host to the user's hosts, and takes out
    only a host it added itself once the cache no longer needs it.
    """
    parser = read_ini(text, where)
    ours_before = list((added or {}).get("trusted-host", []))
    want = settings(index_url)
    values: dict[str, str | None] = {}
    if _ini_get(parser, "global", "index-url") != index_url:
        values["index-url"] = index_url
    raw_hosts = _ini_get(parser, "global", "trusted-host") or ""
    hosts = raw_hosts.split()
    wanted_host = want.get("trusted-host")
    new_hosts = [h for h in hosts if h == wanted_host or h not in ours_before]
    ours = [h for h in ours_before if h in new_hosts]
    if wanted_host and wanted_host not in new_hosts:
        new_hosts.append(wanted_host)
        ours.append(wanted_host)
    if new_hosts != hosts:
        if not new_hosts:
            values["trusted-host"] = None
        elif "\n" in raw_hosts.strip("\n") or raw_hosts.startswith("\n"):
            lead = "\n    " if raw_hosts.startswith("\n") else ""
            values["trusted-host"] = lead + "\n    ".join(new_hosts)
        else:
            values["trusted-host"] = " ".join(new_hosts)
    # cert, like trusted-host: devpictl's bundle where the cache needs it; taken out
    # only where devpictl put it, once the cache no longer needs it.
    cert_before = (added or {}).get("cert")
    cert_now = _ini_get(parser, "global", "cert")
    wanted_cert = want.get("cert")
    cert_ours = None
    if wanted_cert is not None:
        if cert_now != wanted_cert:
            values["cert"] = wanted_cert
        cert_ours = wanted_cert if cert_now != wanted_cert or cert_before == wanted_cert else None
    elif cert_before is not None and cert_now == cert_before:
        values["cert"] = None
    new_text = set_ini_keys(text, "global", values) if values else text
    record: dict = {"trusted-host": ours} if ours else {}
    if cert_ours:
        record["cert"] = cert_ours
    return new_text, record


def index_url_sources(text: str, where: str) -> list[str]:
    """Sections of a pip config text that set index-url ('global', 'install', ...)."""
    try:
        parser = read_ini(text, where)
    except BadInput:
        return []
    return [section for section in parser.sections() if _ini_get(parser, section, "index-url") is not None]


class Pip(Installer):
    name = "pip"
    overriding_env = ("PIP_INDEX_URL", "PIP_CONFIG_FILE")
    options = frozenset({"scope"})
    legacy_backup_suffix = ".devpictl-backup"  # where devpictl before the manifest kept the original

    def settings(self, index_url: str) -> dict[str, str]:
        return settings(index_url)

    def env_vars(self, index_url: str) -> dict[str, str]:
        names = {"index-url": "PIP_INDEX_URL", "trusted-host": "PIP_TRUSTED_HOST", "cert": "PIP_CERT"}
        return {names[key]: value for key, value in settings(index_url).items()}

    def snippet(self, index_url: str) -> str:
        return render_conf(settings(index_url))

    def config_file(self, *, scope=None, python=None, project=None) -> Path:
        return config_file(scope or "user", prefix=python_prefix(python) if python else None)

    def edit(self, text, index_url, *, added, force, where):
        return edit_conf(text, index_url, added, where)

    def notes(self, path: Path, new_text: str, env) -> list[str]:
        notes = [
            f"[{section}] in {path} sets index-url too, and wins over [global] for `pip {section}`"
            for section in index_url_sources(new_text, str(path))
            if section != "global"
        ]
        if _ini_get(read_ini(new_text, str(path)), "global", "cert") is not None:
            # pip's requests takes these over the cert of its config (it does for an explicit --cert too).
            notes += [f"{name} is set in your environment and wins over pip's cert" for name in CERT_ENV if env.get(name)]
        files = [real_path(f) for scope in SCOPES for f in config_files(env)[scope]]
        for other in files[files.index(path) + 1 :] if path in files else []:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if other.is_file() and index_url_sources(other.read_text("utf-8"), str(other)):
                    notes.append(f"{other} also sets index-url, and pip reads it after {path}")
        return notes
