"""What every installer module provides, and the helpers they share."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from devpictl.errors import BadInput

INDEX_NAME = "devpictl"  # the name of the index/source entry devpictl writes
# A user and password in a URL, as devpictl prints it: the password never shows.
URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")


class IndexURL(str):
    """An index URL (with a user and password for `up --read-auth`) and the CA bundle installers must trust for it.

    ``ca_file`` None: the installer's own trust. It is the URL wherever a string is
    expected, so only the installers that can use a CA bundle need know of it.
    """

    ca_file: str | None

    def __new__(cls, url: str, ca_file: str | None = None) -> IndexURL:
        made = super().__new__(cls, url)
        made.ca_file = ca_file
        return made


def ca_file(index_url: str) -> str | None:
    """The CA bundle ``index_url`` needs trusted (IndexURL), None for an installer's own trust."""
    return getattr(index_url, "ca_file", None)


def hide_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ****."""
    return URL_PASSWORD.sub(r"\1****@", text)


class Installer:
    """One installer: where its file is, what it sets, how it edits, what can override it."""

    name: str
    # The environment variables that win over its config file.
    overriding_env: tuple[str, ...] = ()
    # Which of pip-config's file options it takes: "scope" (and --python) or "project".
    options: frozenset[str] = frozenset()
    # Where an older devpictl kept the file's original, beside it (None: never).
    legacy_backup_suffix: str | None = None

    def settings(self, index_url: str) -> dict:
        """What its config file needs, as a dict (for --json)."""
        raise NotImplementedError

    def env_vars(self, index_url: str) -> dict[str, str]:
        """The environment variables it reads instead of its config file ({}: none)."""
        return {}

    def snippet(self, index_url: str) -> str:
        """What its config file needs, in that file's own syntax."""
        raise NotImplementedError

    def config_file(self, *, scope: str | None = None, python: Path | None = None, project: Path | None = None) -> Path | None:
        """The file devpictl edits (None: a project tool given no --project)."""
        raise NotImplementedError

    def edit(self, text: str, index_url: str, *, added: dict, force: bool, where: str) -> tuple[str, dict]:
        """``text`` pointed at ``index_url``, and the record of insecure settings devpictl added."""
        raise NotImplementedError

    def notes(self, path: Path, new_text: str, env) -> list[str]:
        """What would still keep it off the cache after writing ``path``, besides ``overriding_env``."""
        return []

    def command(self, index_url: str) -> str | None:
        """The installer's own command that does what --write does, if it has one."""
        return None

    def trust_note(self, index_url: str) -> str | None:
        """What the user must still do for it to trust the cache's CA (ca_file), when its config file cannot say it."""
        return None


class ProjectInstaller(Installer):
    """An installer that reads its index from a file in the project directory (--project)."""

    options = frozenset({"project"})
    project_file_name: str  # the file it reads there

    def config_file(self, *, scope=None, python=None, project=None) -> Path | None:
        if project is None:
            return None
        path = Path(project) / self.project_file_name
        if not path.is_file():
            raise BadInput(f"{project} has no {self.project_file_name}: give --project the directory of a {self.name} project")
        return path

    def outside_project(self, index_url: str) -> str:
        """Where its settings go when no --project names the project."""
        command = self.command(index_url)
        return f"your project's {self.project_file_name}" + (f", or run: {command}" if command else "")


def is_plain_http(index_url: str) -> bool:
    return urlsplit(index_url).scheme == "http"


def is_windows() -> bool:
    return sys.platform == "win32"


def is_xdg_platform() -> bool:
    return not is_windows() and sys.platform != "darwin"


def environ(env: dict[str, str] | None):
    return os.environ if env is None else env


def home(env) -> Path:
    return Path(env.get("HOME") or str(Path.home()))


def xdg_config_home(env) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or home(env) / ".config")


def real_path(path: Path) -> Path:
    """Where to write: through a symlink (a dotfiles link stays a link), made absolute."""
    return Path(os.path.realpath(path)) if path.is_symlink() else Path(os.path.abspath(path))
