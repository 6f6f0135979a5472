"""Installer configuration for a cache: what pip, uv, pdm and poetry need, where each
reads it, and changing those files in place with a way back (``--undo``).

Everything here takes the index URL as an argument; the CLI finds it.
"""

from __future__ import annotations

import configparser
import contextlib
import copy
import datetime
import difflib
import hashlib
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from devpictl.errors import BadInput, Conflict, DevpictlError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TOOLS = ("pip", "uv", "pdm", "poetry")
PIP_SCOPES = ("global", "user", "site")  # pip's own order: a later scope overrides an earlier one
SHELLS = {"sh": "sh", "bash": "sh", "zsh": "sh", "ksh": "sh", "fish": "fish", "powershell": "powershell", "pwsh": "powershell"}
INDEX_NAME = "devpictl"
UV_INDEX_TABLE = ("index",)
POETRY_SOURCE_TABLE = ("tool", "poetry", "source")
# Where devpictl before the manifest kept pip.conf as it was before its first write.
LEGACY_BACKUP_SUFFIX = ".devpictl-backup"
# pip reads <this>/pip.conf last among the global files on Unix (a seam for tests).
PIP_ETC_DIR = Path("/etc")


def _is_windows() -> bool:
    return sys.platform == "win32"


def _is_xdg_platform() -> bool:
    return not _is_windows() and sys.platform != "darwin"


# --------------------------------------------------------------------------
# What each tool needs


def is_plain_http(index_url: str) -> bool:
    return urlsplit(index_url).scheme == "http"


def pip_settings(index_url: str) -> dict[str, str]:
    """The [global] keys that point pip at ``index_url``."""
    settings = {"index-url": index_url}
    parts = urlsplit(index_url)
    if parts.scheme == "http" and parts.hostname:
        # pip refuses plain http unless the host is trusted (loopback aside).
        settings["trusted-host"] = parts.hostname
    return settings


def uv_index(index_url: str) -> dict[str, object]:
    # uv reaches a plain-http index as it is; its allow-insecure-host only turns off
    # certificate checks, which would be a risk and no help here.
    return {"name": INDEX_NAME, "url": index_url, "default": True}


def pdm_settings(index_url: str) -> dict[str, object]:
    """pdm's global config keys (dotted, as `pdm config` names them) for ``index_url``."""
    settings: dict[str, object] = {"pypi.url": index_url}
    if is_plain_http(index_url):
        # pdm skips an index on plain http unless its host is trusted, and
        # verify_ssl = false is what makes pdm trust it.
        settings["pypi.verify_ssl"] = False
    return settings


def poetry_source(index_url: str) -> dict[str, object]:
    # A primary source replaces poetry's implicit default index.
    return {"name": INDEX_NAME, "url": index_url, "priority": "primary"}


def poetry_command(index_url: str) -> str:
    return f"poetry source add --priority=primary {INDEX_NAME} {shlex.quote(index_url)}"


def env_vars(tool: str, index_url: str) -> dict[str, str]:
    """The environment variables ``tool`` reads instead of its config file (poetry has none)."""
    if tool == "pip":
        names = {"index-url": "PIP_INDEX_URL", "trusted-host": "PIP_TRUSTED_HOST"}
        return {names[key]: value for key, value in pip_settings(index_url).items()}
    if tool == "uv":
        return {"UV_DEFAULT_INDEX": index_url}
    if tool == "pdm":
        names = {"pypi.url": "PDM_PYPI_URL", "pypi.verify_ssl": "PDM_PYPI_VERIFY_SSL"}
        return {names[k]: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in pdm_settings(index_url).items()}
    return {}


def render_pip_conf(settings: dict[str, str]) -> str:
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())


def render_snippet(tool: str, index_url: str) -> str:
    """What ``tool``'s config file needs, as that file's own syntax."""
    if tool == "pip":
        return render_pip_conf(pip_settings(index_url))
    if tool == "uv":
        return _render_array_table(UV_INDEX_TABLE, uv_index(index_url))
    if tool == "pdm":
        return "[pypi]\n" + _toml_dumps({key.split(".", 1)[1]: value for key, value in pdm_settings(index_url).items()})
    if tool == "poetry":
        return _render_array_table(POETRY_SOURCE_TABLE, poetry_source(index_url))
    raise BadInput(f"unknown tool {tool!r}: use {', '.join(TOOLS)}")


def render_shell(variables: dict[str, str], shell: str = "sh") -> str:
    """Lines that set ``variables`` in ``shell`` (sh, fish or powershell syntax)."""
    lines = []
    for name, value in variables.items():
        if shell == "fish":
            quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            lines.append(f"set -gx {name} {quoted}")
        elif shell == "powershell":
            lines.append(f"$env:{name} = '" + value.replace("'", "''") + "'")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return "".join(line + "\n" for line in lines)


def parse_tools(values: list[str] | None, default: tuple[str, ...] = ("pip",)) -> tuple[str, ...]:
    """``--tool`` values (repeated or comma-separated) as known tool names, in order, once each."""
    tools: list[str] = []
    for value in values or []:
        for item in filter(None, (part.strip().lower() for part in value.split(","))):
            if item not in TOOLS:
                raise BadInput(f"unknown tool {item!r}: use {', '.join(TOOLS)} (repeat --tool or separate with commas)")
            if item not in tools:
                tools.append(item)
    return tuple(tools) or default


def parse_shell(value: str) -> str:
    try:
        return SHELLS[value.strip().lower()]
    except KeyError:
        raise BadInput(f"unknown shell {value!r}: use sh (bash, zsh), fish or powershell") from None


# --------------------------------------------------------------------------
# Where each tool reads its configuration


def _home(env) -> Path:
    return Path(env.get("HOME") or str(Path.home()))


def _xdg_config_home(env) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or _home(env) / ".config")


def pip_user_config_file(environ: dict[str, str] | None = None) -> Path:
    """The per-user file pip reads last, and so the one `pip config --user` edits."""
    env = os.environ if environ is None else environ
    if _is_xdg_platform():
        return _xdg_config_home(env) / "pip" / "pip.conf"
    if sys.platform == "darwin":
        # pip's rule: ~/Library/Application Support/pip if that folder exists, else ~/.config/pip.
        support = _home(env) / "Library" / "Application Support" / "pip"
        return (support if support.is_dir() else _home(env) / ".config" / "pip") / "pip.conf"
    import platformdirs

    return Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True)) / "pip.ini"


def pip_config_files(environ: dict[str, str] | None = None, prefix: Path | None = None) -> dict[str, list[Path]]:
    """The files pip reads for each scope, in pip's order (a later file wins); as pip's
    ``configuration.get_configuration_files``."""
    env = os.environ if environ is None else environ
    name = "pip.ini" if _is_windows() else "pip.conf"
    if _is_xdg_platform():
        dirs = (env.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg").split(os.pathsep)
        global_files = [Path(os.path.expanduser(d)) / "pip" / name for d in dirs] + [PIP_ETC_DIR / name]
    else:
        import platformdirs

        where = platformdirs.site_data_dir if sys.platform == "darwin" else platformdirs.site_config_dir
        global_files = [Path(where("pip", appauthor=False)) / name]
    legacy_user = _home(env) / ("pip" if _is_windows() else ".pip") / name
    return {
        "global": global_files,
        "user": [legacy_user, pip_user_config_file(env)],
        "site": [Path(sys.prefix if prefix is None else prefix) / name],
    }


def pip_config_file(scope: str, environ: dict[str, str] | None = None, prefix: Path | None = None) -> Path:
    """The file devpictl writes for ``scope``: the one pip reads last there, as `pip config --SCOPE set`."""
    if scope not in PIP_SCOPES:
        raise BadInput(f"unknown pip scope {scope!r}: use user, global or site")
    return pip_config_files(environ, prefix)[scope][-1]


def python_prefix(python: str | os.PathLike) -> Path:
    """``sys.prefix`` of another interpreter (a venv's python), whose pip reads prefix/pip.conf."""
    try:
        result = subprocess.run(
            [os.fspath(python), "-c", "import sys; print(sys.prefix)"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInput(f"cannot run {python} ({getattr(exc, 'strerror', None) or exc}): give --python the path of a Python interpreter") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise BadInput(f"{python} did not report its sys.prefix (exit {result.returncode}): give --python the path of a Python interpreter")
    return Path(result.stdout.strip())


def uv_user_config_file(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if _is_windows():
        return Path(env.get("APPDATA") or _home(env) / "AppData" / "Roaming") / "uv" / "uv.toml"
    return _xdg_config_home(env) / "uv" / "uv.toml"  # macOS too, as uv documents


def pdm_config_file(environ: dict[str, str] | None = None) -> Path:
    """pdm's global config.toml: $PDM_CONFIG_FILE, else pdm's platformdirs location."""
    env = os.environ if environ is None else environ
    if env.get("PDM_CONFIG_FILE"):
        return Path(env["PDM_CONFIG_FILE"]).expanduser()
    if _is_xdg_platform():
        return _xdg_config_home(env) / "pdm" / "config.toml"
    import platformdirs

    return platformdirs.user_config_path("pdm") / "config.toml"


def poetry_project_file(project: str | os.PathLike) -> Path:
    path = Path(project) / "pyproject.toml"
    if not path.is_file():
        raise BadInput(f"{project} has no pyproject.toml: give --project the directory of a poetry project")
    return path


# --------------------------------------------------------------------------
# pip's INI files

SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
KEY = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*[=:]")
COMMENT = re.compile(r"^\s*[#;]")


def _norm_ini_key(key: str) -> str:
    return key.lower().replace("_", "-")


def set_ini_keys(text: str, section: str, values: dict[str, str | None]) -> str:
    """Set ``values`` in ``section`` of an INI text, keeping every other line as it was.

    A value of None removes the key. As in configparser, indented lines after a key
    continue its value (pip allows a multi-line trusted-host); pip treats
    ``index-url`` and ``index_url`` as one key.
    """
    wanted = {_norm_ini_key(k): (k, v) for k, v in values.items()}
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"

    def rendered(name: str) -> list[str]:
        original, value = wanted[name]
        if value is None:
            return []
        return [f"{original} ={'' if value.startswith(chr(10)) else ' '}{value}\n"]

    out: list[str] = []
    current = None
    section_end = None  # index in out after the last line of the target section
    done: set[str] = set()
    key_open = False  # the previous line belongs to a key's value
    replacing = False  # ... and that key is one being replaced
    for line in lines:
        header = SECTION.match(line)
        if header:
            key_open = replacing = False
            current = header.group(1).strip()
            out.append(line)
            if current == section:
                section_end = len(out)
            continue
        if key_open and line[:1] in (" ", "\t") and line.strip() and not COMMENT.match(line):
            if not replacing:
                out.append(line)
                if current == section:
                    section_end = len(out)
            continue
        key = KEY.match(line)
        key_open = key is not None
        replacing = False
        if current == section and key and _norm_ini_key(key.group(1)) in wanted:
            name = _norm_ini_key(key.group(1))
            replacing = True
            if name in done:
                continue  # a second spelling of the same key: drop it
            done.add(name)
            out.extend(rendered(name))
            section_end = len(out)
            continue
        out.append(line)
        if current == section and line.strip():
            section_end = len(out)
    missing = [line for name in wanted if name not in done for line in rendered(name)]
    if missing and section_end is None:
        if out and out[-1].strip():
            out.append("\n")
        out.append(f"[{section}]\n")
        out.extend(missing)
    elif missing:
        out[section_end:section_end] = missing
    return "".join(out)


def read_pip_ini(text: str, where: str) -> configparser.RawConfigParser:
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
        if _norm_ini_key(name) == key:
            return value
    return None


def edit_pip_conf(text: str, index_url: str, added: dict | None = None, where: str = "pip.conf") -> tuple[str, dict]:
    """``text`` with pip pointed at ``index_url``, and the record of what devpictl added.

    trusted-host is a list: devpictl adds its host to the user's hosts, and takes out
    only a host it added itself once the cache no longer needs it.
    """
    parser = read_pip_ini(text, where)
    ours_before = list((added or {}).get("trusted-host", []))
    want = pip_settings(index_url)
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
    new_text = set_ini_keys(text, "global", values) if values else text
    return new_text, ({"trusted-host": ours} if ours else {})


def _pip_index_url_sources(text: str, where: str) -> list[str]:
    """Sections of a pip config text that set index-url ('global', 'install', ...)."""
    try:
        parser = read_pip_ini(text, where)
    except BadInput:
        return []
    return [section for section in parser.sections() if _ini_get(parser, section, "index-url") is not None]


# --------------------------------------------------------------------------
# TOML files, edited as text so that comments and layout stay as they were


class _LayoutError(Exception):
    """The file is valid TOML, but not in a layout devpictl can change without rewriting it."""


_MISSING = object()
_DELETE = object()
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_dumps(data: dict) -> str:
    import tomli_w

    return tomli_w.dumps(data)


def _toml_value(value: object) -> str:
    return _toml_dumps({"v": value})[len("v = "):].rstrip("\n")


def _render_key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else json.dumps(part)


def _render_array_table(path: tuple[str, ...], entry: dict) -> str:
    return f"[[{'.'.join(_render_key(p) for p in path)}]]\n" + _toml_dumps(entry)


def load_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{where} is not valid TOML ({exc}): fix it, then run devpictl again") from None


@dataclass
class _Stmt:
    kind: str  # "table", "array" (header lines), "kv", or "blank" (blank or comment line)
    start: int  # offset of the line it starts on
    end: int  # offset just past its last newline
    key: tuple[str, ...] = ()
    value_start: int = 0
    value_end: int = 0  # before any trailing comment


def _line_end(text: str, i: int) -> int:
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _skip_string(text: str, i: int) -> int:
    delim = next(d for d in ('"""', "'''", '"', "'") if text.startswith(d, i))
    j = i + len(delim)
    while j < len(text):
        if delim[0] == '"' and text[j] == "\\":
            j += 2
            continue
        if text.startswith(delim, j):
            if len(delim) == 3:  # up to two more quotes belong to the content
                run = len(text[j:j + 5]) - len(text[j:j + 5].lstrip(delim[0]))
                return j + run
            return j + 1
        j += 1
    raise _LayoutError("unterminated string")


def _parse_key(text: str, i: int) -> tuple[tuple[str, ...], int]:
    parts: list[str] = []
    while True:
        i = _skip_ws(text, i)
        if i < len(text) and text[i] in "\"'":
            j = _skip_string(text, i)
            parts.append(tomllib.loads("k = " + text[i:j])["k"])
            i = j
        else:
            match = _BARE_KEY.match(text, i)
            if not match:
                raise _LayoutError(f"unexpected text at offset {i}")
            parts.append(match.group())
            i = match.end()
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts), i


def _scan_value(text: str, i: int) -> int:
    """The end of the value that starts at ``i`` (arrays and strings may span lines)."""
    depth = 0
    last = i
    while i < len(text):
        char = text[i]
        if char in "\"'":
            i = last = _skip_string(text, i)
            continue
        if char == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if char == "\n" and depth == 0:
            return last
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if not char.isspace():
            last = i + 1
        i += 1
    return last


def _toml_statements(text: str) -> list[_Stmt]:
    """``text`` (valid TOML) as its statements: header lines, key/value pairs, and the rest."""
    stmts: list[_Stmt] = []
    i = 0
    while i < len(text):
        j = _skip_ws(text, i)
        if j >= len(text) or text[j] in "\r\n#":
            end = _line_end(text, j)
            stmts.append(_Stmt("blank", i, end))
        elif text[j] == "[":
            array = text.startswith("[[", j)
            key, k = _parse_key(text, j + (2 if array else 1))
            end = _line_end(text, k)
            stmts.append(_Stmt("array" if array else "table", i, end, key))
        else:
            key, k = _parse_key(text, j)
            if text[k:k + 1] != "=":
                raise _LayoutError(f"expected '=' at offset {k}")
            value_start = _skip_ws(text, k + 1)
            value_end = _scan_value(text, value_start)
            end = _line_end(text, value_end)
            stmts.append(_Stmt("kv", i, end, key, value_start, value_end))
        i = end
    return stmts


def _get(data: dict, path: tuple[str, ...], default=_MISSING):
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data


def _with_value(data: dict, path: tuple[str, ...], value) -> dict:
    """A deep copy of ``data`` with ``path`` set to ``value`` (or removed, for _DELETE)."""
    result = copy.deepcopy(data)
    node = result
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise _LayoutError(f"{part} is not a table")
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return result


def _verified(candidates: list[str], expected: dict) -> str:
    for text in candidates:
        try:
            if tomllib.loads(text) == expected:
                return text
        except tomllib.TOMLDecodeError:
            continue
    raise _LayoutError("no layout-keeping edit gives the right result")


def _with_final_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _append_block(text: str, block: str) -> str:
    text = _with_final_newline(text)
    if text.strip() and not text.endswith("\n\n"):
        text += "\n"
    return text + block


def toml_set(text: str, data: dict, path: tuple[str, ...], value) -> tuple[str, dict]:
    """Set (or, with _DELETE, remove) the key ``path`` in TOML ``text`` whose parsed form is ``data``."""
    expected = _with_value(data, path, value)
    if expected == data:
        return text, data
    text = _with_final_newline(text)
    stmts = _toml_statements(text)
    rendered = None if value is _DELETE else _toml_value(value)
    parent, leaf = path[:-1], path[-1]
    candidates: list[str] = []
    table: tuple[str, ...] | None = ()  # None inside an array-of-tables element
    table_end: dict[tuple[str, ...], int] = {}  # table -> end of its header or of its last key/value
    dotted_end = None  # end of the last top-level "parent.x = ..." line
    for stmt in stmts:
        if stmt.kind in ("table", "array"):
            table = stmt.key if stmt.kind == "table" else None
            if table is not None:
                table_end[table] = stmt.end
            continue
        if stmt.kind != "kv" or table is None:
            continue
        table_end[table] = stmt.end
        if table + stmt.key == path:
            if rendered is None:
                candidates.append(text[:stmt.start] + text[stmt.end:])
            else:
                candidates.append(text[:stmt.value_start] + rendered + text[stmt.value_end:])
        if parent and table == () and stmt.key[:len(parent)] == parent:
            dotted_end = stmt.end
    if rendered is not None:
        if parent in table_end:
            pos = table_end[parent]
            candidates.append(text[:pos] + f"{_render_key(leaf)} = {rendered}\n" + text[pos:])
        if dotted_end is not None:
            line = f"{'.'.join(_render_key(p) for p in path)} = {rendered}\n"
            candidates.append(text[:dotted_end] + line + text[dotted_end:])
        if parent and parent not in table_end:
            header = f"[{'.'.join(_render_key(p) for p in parent)}]\n"
            candidates.append(_append_block(text, header + f"{_render_key(leaf)} = {rendered}\n"))
    return _verified(candidates, expected), expected


def _array_table_sections(text: str, path: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each ``[[path]]`` element: its header through its last key/value."""
    sections: list[tuple[int, int]] = []
    current: list[int] | None = None
    for stmt in _toml_statements(text):
        if stmt.kind in ("table", "array"):
            inside = len(stmt.key) > len(path) and stmt.key[:len(path)] == path
            if current is not None and not inside:
                sections.append((current[0], current[1]))
                current = None
            if stmt.kind == "array" and stmt.key == path:
                current = [stmt.start, stmt.end]
            elif current is not None:
                current[1] = stmt.end
        elif stmt.kind == "kv" and current is not None:
            current[1] = stmt.end
    if current is not None:
        sections.append((current[0], current[1]))
    return sections


def toml_put_array_entry(
    text: str, data: dict, path: tuple[str, ...], entry: dict, name: str, before: int | None = None
) -> str:
    """Put ``entry`` into the array of tables ``path`` in TOML ``text`` (parsed: ``data``):
    ahead of element ``before`` if given, else in place of the element named ``name``,
    else at the end. Other elements, comments and layout stay as they were."""
    items = _get(data, path, [])
    if not isinstance(items, list):
        raise _LayoutError(f"{'.'.join(path)} is not an array of tables")
    text = _with_final_newline(text)
    sections = _array_table_sections(text, path)
    if len(sections) != len(items):
        raise _LayoutError(f"{'.'.join(path)} is written as an inline array")
    ours = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get("name") == name]
    kept = [item for i, item in enumerate(items) if i not in ours]
    block = _render_array_table(path, entry)
    edits = [(*sections[i], "") for i in ours]  # (start, end, replacement)
    if before is not None:
        anchor = sections[before][0]
        edits.append((anchor, anchor, block + "\n"))
        position = before - sum(1 for i in ours if i < before)
    elif ours:
        edits[0] = (*sections[ours[0]], block)
        position = ours[0]
    else:
        position = len(kept)
    for start, end, new in sorted(edits, reverse=True):
        if not new and text[end:end + 1] == "\n":
            end += 1  # the blank line after a removed block goes with it
        text = text[:start] + new + text[end:]
    if before is None and not ours:
        text = _append_block(text, block)
    expected = copy.deepcopy(data)
    node = expected
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = kept[:position] + [entry] + kept[position:]
    return _verified([text], expected)


def edit_uv_toml(text: str, index_url: str, force: bool = False, where: str = "uv.toml") -> str:
    """``text`` with uv's default index set to ``index_url`` (an [[index]] named devpictl)."""
    data = load_toml(text, where)
    indexes = data.get("index", [])
    indexes = indexes if isinstance(indexes, list) else []
    ours = next((i for i, item in enumerate(indexes) if isinstance(item, dict) and item.get("name") == INDEX_NAME), None)
    # uv uses the first index marked default, and an [[index]] default wins over index-url;
    # so only another default ahead of ours (or any, before we have one) is in the way.
    ahead = [
        i for i, item in enumerate(indexes)
        if isinstance(item, dict) and item.get("default") is True and item.get("name") != INDEX_NAME and (ours is None or i < ours)
    ]
    legacy = [] if ours is not None else [
        key for key, value in (("index-url", data.get("index-url")), ("pip.index-url", _get(data, ("pip", "index-url"), None))) if value
    ]
    if not force and (ahead or legacy):
        if ahead:
            other = indexes[ahead[0]]
            what = f"index {other.get('name') or other.get('url')!r} in {where} is already uv's default index (default = true)"
        else:
            what = f"{where} already sets uv's default index ({legacy[0]} = {_get(data, tuple(legacy[0].split('.')))!r})"
        raise Conflict(f"{what}: add --force to make the devpictl cache the default instead (--undo puts the file back)")
    try:
        return toml_put_array_entry(text, data, UV_INDEX_TABLE, uv_index(index_url), INDEX_NAME, ahead[0] if ahead else None)
    except _LayoutError as exc:
        raise BadInput(f"cannot change {where} without rewriting it ({exc}): add the [[index]] table that `devpictl pip-config --tool uv` prints by hand") from None


def edit_pdm_toml(text: str, index_url: str, added: dict | None = None, where: str = "config.toml") -> tuple[str, dict]:
    """``text`` with pdm's pypi.url (and, for plain http, verify_ssl) set; what devpictl added."""
    data = load_toml(text, where)
    added = dict(added or {})
    ops: list[tuple[tuple[str, ...], object]] = [(("pypi", "url"), index_url)]
    verify = _get(data, ("pypi", "verify_ssl"))
    if is_plain_http(index_url):
        if verify is not False:
            added.setdefault("pypi.verify_ssl", {"was": None if verify is _MISSING else verify})
            ops.append((("pypi", "verify_ssl"), False))
    else:
        # An https cache needs no exception: take back the one devpictl made.
        record = added.pop("pypi.verify_ssl", None)
        if record is not None and verify is False:
            ops.append((("pypi", "verify_ssl"), _DELETE if record["was"] is None else record["was"]))
    try:
        for path, value in ops:
            text, data = toml_set(text, data, path, value)
    except _LayoutError as exc:
        raise BadInput(f"cannot change {where} without rewriting it ({exc}): run `pdm config pypi.url {index_url}` instead") from None
    return text, added


def edit_poetry_pyproject(text: str, index_url: str, where: str = "pyproject.toml") -> str:
    """``text`` with a primary [[tool.poetry.source]] named devpictl, as `poetry source add` makes."""
    data = load_toml(text, where)
    try:
        return toml_put_array_entry(text, data, POETRY_SOURCE_TABLE, poetry_source(index_url), INDEX_NAME)
    except _LayoutError as exc:
        raise BadInput(f"cannot change {where} without rewriting it ({exc}): run `{poetry_command(index_url)}` instead") from None


# --------------------------------------------------------------------------
# Planned changes, the manifest of what devpictl changed, and undo


@dataclass
class Change:
    """What writing one tool's file would do; nothing is touched until ``apply_change``."""

    tool: str
    path: Path
    old: bytes | None  # None: the file does not exist
    new: bytes
    scope: str | None = None
    added: dict = field(default_factory=dict)  # insecure settings devpictl added, to take back later
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        return unified_diff(self.path, self.old, self.new)


def unified_diff(path: Path, old: bytes | None, new: bytes | None) -> str:
    def lines(data: bytes | None) -> list[str]:
        return [] if data is None else data.decode("utf-8", "replace").splitlines(keepends=True)

    diff = difflib.unified_diff(
        lines(old), lines(new),
        fromfile=str(path) if old is not None else "/dev/null",
        tofile=str(path) if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)


def real_path(path: Path) -> Path:
    """Where to write: through a symlink (a dotfiles link stays a link), made absolute."""
    return Path(os.path.realpath(path)) if path.is_symlink() else Path(os.path.abspath(path))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BadInput(f"{path} is a directory, not a config file: move it away, then run devpictl again") from None
    except OSError as exc:
        raise DevpictlError(f"cannot read {path} ({exc.strerror}): fix its permissions, or run as its owner") from None


def _decode(data: bytes | None, where: Path) -> str:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{where} is not UTF-8 text: fix it, then run devpictl again") from None


def _keep_newlines(edit, text: str, *args, **kwargs):
    """Run a text edit on LF text and give back the file's own line endings (CRLF stays CRLF)."""
    crlf = "\r\n" in text
    result = edit(text.replace("\r\n", "\n") if crlf else text, *args, **kwargs)
    if not crlf:
        return result
    if isinstance(result, tuple):
        return (result[0].replace("\n", "\r\n"), *result[1:])
    return result.replace("\n", "\r\n")


def plan_change(
    tool: str,
    path: Path,
    index_url: str,
    *,
    scope: str | None = None,
    force: bool = False,
    manifest: Manifest | None = None,
    environ: dict[str, str] | None = None,
) -> Change:
    """What pointing ``tool``'s file ``path`` at ``index_url`` would change (raises, changing nothing, if it can't)."""
    env = os.environ if environ is None else environ
    path = real_path(path)
    old = _read(path)
    text = _decode(old, path)
    entry = manifest.get(path) if manifest is not None else None
    added = dict(entry.get("added", {})) if entry else {}
    where = str(path)
    if tool == "pip":
        new_text, added = _keep_newlines(edit_pip_conf, text, index_url, added, where)
    elif tool == "uv":
        new_text = _keep_newlines(edit_uv_toml, text, index_url, force, where)
        added = {}
    elif tool == "pdm":
        new_text, added = _keep_newlines(edit_pdm_toml, text, index_url, added, where)
    elif tool == "poetry":
        new_text = _keep_newlines(edit_poetry_pyproject, text, index_url, where)
        added = {}
    else:
        raise BadInput(f"unknown tool {tool!r}: use {', '.join(TOOLS)}")
    change = Change(tool, path, old, new_text.encode("utf-8"), scope, added)
    change.notes = _notes(change, index_url, env)
    return change


def _notes(change: Change, index_url: str, env) -> list[str]:
    """What would still keep the tool off the cache after this change."""
    notes = [f"{name} is set in your environment and wins over {change.path}" for name in _OVERRIDING_ENV[change.tool] if env.get(name)]
    if change.tool == "pip":
        text = change.new.decode("utf-8", "replace")
        notes += [
            f"[{section}] in {change.path} sets index-url too, and wins over [global] for `pip {section}`"
            for section in _pip_index_url_sources(text, str(change.path)) if section != "global"
        ]
        files = [real_path(f) for scope in PIP_SCOPES for f in pip_config_files(env)[scope]]
        later = files[files.index(change.path) + 1:] if change.path in files else []
        for other in later:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if other.is_file() and _pip_index_url_sources(other.read_text("utf-8"), str(other)):
                    notes.append(f"{other} also sets index-url, and pip reads it after {change.path}")
    elif change.tool == "uv" and (env.get("UV_NO_CONFIG") or env.get("UV_CONFIG_FILE")):
        notes.append(f"UV_NO_CONFIG or UV_CONFIG_FILE is set, so uv does not read {change.path}")
    elif change.tool == "poetry" and (change.path.parent / "poetry.lock").exists():
        notes.append(f"run `poetry lock` in {change.path.parent}: poetry.lock records where each package comes from")
    return notes


_OVERRIDING_ENV = {
    "pip": ("PIP_INDEX_URL", "PIP_CONFIG_FILE"),
    "uv": ("UV_DEFAULT_INDEX", "UV_INDEX_URL"),
    "pdm": ("PDM_PYPI_URL",),
    "poetry": (),
}


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` in one step (temp file + os.replace), with ``mode``
    (default: what a new file gets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".devpictl-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


class Manifest:
    """The files devpictl changed, each with its bytes from before devpictl's first write.

    It lives in devpictl's data dir (``clientconfig/manifest.json``, and the old bytes in
    ``clientconfig/backups/``), so a later write never replaces the original, and a file
    that did not exist is remembered as absent.
    """

    def __init__(self, root: Path | None = None):
        if root is None:
            from devpictl.settings import data_dir

            root = data_dir() / "clientconfig"
        self.root = Path(root)
        self.file = self.root / "manifest.json"
        self.backups = self.root / "backups"

    def entries(self) -> dict[str, dict]:
        try:
            text = self.file.read_text("utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise DevpictlError(f"cannot read {self.file} ({exc.strerror}): fix its permissions") from None
        try:
            data = json.loads(text)
            return dict(data["files"])
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{self.file} is damaged: fix it, or move it away to forget what devpictl changed") from None

    def get(self, path: Path) -> dict | None:
        return self.entries().get(str(path))

    def _save(self, entries: dict[str, dict]) -> None:
        data = json.dumps({"version": 1, "files": entries}, indent=2, sort_keys=True) + "\n"
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.file, data.encode(), 0o600)
        except OSError as exc:
            raise DevpictlError(f"cannot write {self.file} ({exc.strerror}): fix the permissions of devpictl's data dir (DEVPICTL_DATA_DIR)") from None

    def backup_path(self, entry: dict) -> Path | None:
        return self.backups / entry["backup"] if entry.get("backup") else None

    def original(self, entry: dict) -> bytes | None:
        backup = self.backup_path(entry)
        if backup is None:
            return None
        try:
            return backup.read_bytes()
        except OSError as exc:
            raise DevpictlError(f"the saved original {backup} cannot be read ({exc.strerror}): devpictl cannot restore {entry['path']}") from None

    def record(self, change: Change) -> tuple[dict, bool]:
        """Remember ``change``'s file before it is written: the original only the first time."""
        entries = self.entries()
        key = str(change.path)
        entry = entries.get(key)
        first = entry is None
        if first:
            original, legacy = change.old, change.path.with_name(change.path.name + LEGACY_BACKUP_SUFFIX)
            if change.tool == "pip" and legacy.is_file():
                original = legacy.read_bytes()  # an older devpictl already saved the real original there
            entry = {
                "path": key,
                "tool": change.tool,
                "scope": change.scope,
                "backup": None,
                "mode": _mode(change.path),
                "first_write": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            if original is not None:
                name = f"{hashlib.sha256(key.encode()).hexdigest()[:16]}-{change.path.name}"
                try:
                    self.backups.mkdir(parents=True, exist_ok=True, mode=0o700)
                    write_atomic(self.backups / name, original, 0o600)  # it may hold index credentials
                except OSError as exc:
                    raise DevpictlError(f"cannot save the original of {change.path} in {self.backups} ({exc.strerror}): fix the permissions of devpictl's data dir") from None
                entry["backup"] = name
        entry = {**entry, "added": change.added, "written_sha256": _sha256(change.new)}
        entries[key] = entry
        self._save(entries)
        return entry, first

    def forget(self, path: Path) -> None:
        entries = self.entries()
        entry = entries.pop(str(path), None)
        if entry is None:
            return
        self._save(entries)
        backup = self.backup_path(entry)
        if backup is not None:
            backup.unlink(missing_ok=True)


@dataclass
class Applied:
    change: Change
    first: bool  # this write saved the original
    backup: Path | None  # where the original is kept (None: the file did not exist)


CREDENTIALS_IN_URL = re.compile(rb"https?://[^/\s@\"']+@")


def apply_change(change: Change, manifest: Manifest) -> Applied:
    """Write ``change`` atomically, keeping the file's mode, after recording its original."""
    before = manifest.get(change.path)
    entry, first = manifest.record(change)
    mode = _mode(change.path)
    if CREDENTIALS_IN_URL.search(change.new):
        # An index URL with a user and password: no one else may read the file.
        mode = (_default_mode() if mode is None else mode) & ~0o077
    try:
        write_atomic(change.path, change.new, mode)
    except OSError as exc:
        if first:
            manifest.forget(change.path)
        elif before is not None:
            entries = manifest.entries()
            entries[str(change.path)] = before
            manifest._save(entries)
        raise DevpictlError(f"cannot write {change.path} ({exc.strerror}): run as a user who may change it{_scope_hint(change)}") from None
    return Applied(change, first, manifest.backup_path(entry))


def _scope_hint(change: Change) -> str:
    return ", or use --scope user" if change.tool == "pip" and change.scope in ("global", "site") else ""


@dataclass
class Restore:
    """Putting one file back as it was before devpictl's first write."""

    tool: str
    path: Path
    current: bytes | None
    original: bytes | None  # None: the file did not exist, so it is deleted
    mode: int | None
    entry: dict

    def diff(self) -> str:
        return unified_diff(self.path, self.current, self.original)


def plan_undo(manifest: Manifest, tools: tuple[str, ...] | None = None, paths: list[Path] | None = None, force: bool = False) -> list[Restore]:
    """What ``--undo`` would restore; refuses (changing nothing) if there is nothing, or if a
    file changed since devpictl wrote it and ``force`` is off."""
    wanted = {str(real_path(p)) for p in paths} if paths else None
    restores = []
    for key, entry in sorted(manifest.entries().items()):
        if tools and entry.get("tool") not in tools:
            continue
        if wanted is not None and key not in wanted:
            continue
        path = Path(key)
        current = _read(path)
        restores.append(Restore(entry.get("tool", "?"), path, current, manifest.original(entry), entry.get("mode"), entry))
    if not restores:
        which = ", ".join(tools) if tools else "any tool"
        raise DevpictlError(f"nothing to undo: devpictl has not changed {'that file' if paths else 'a config file'} for {which}")
    if not force:
        for restore in restores:
            if _sha256(restore.current) != restore.entry.get("written_sha256"):
                raise Conflict(
                    f"{restore.path} changed since devpictl wrote it, and undo would lose that change: "
                    "look with --undo --dry-run, then add --force to restore it anyway"
                )
    return restores


def apply_restore(restore: Restore, manifest: Manifest) -> None:
    """Put the exact original bytes and mode back (or delete a file devpictl created), then forget it."""
    try:
        if restore.original is None:
            restore.path.unlink(missing_ok=True)
        else:
            write_atomic(restore.path, restore.original, restore.mode)
    except OSError as exc:
        raise DevpictlError(f"cannot restore {restore.path} ({exc.strerror}): run as a user who may change it") from None
    manifest.forget(restore.path)
