"""twine and uv publish: a .pypirc section for one team index and user, and the variables uv publish reads.

The .pypirc edit goes through the same manifest as pip-config (planned, recorded,
undone byte for byte); the file holds a password, so it is always written 0600.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devpictl.clientconfig.base import Installer, environ, home
from devpictl.clientconfig.manifest import Applied, Change
from devpictl.clientconfig.pip import _ini_get, read_ini, set_ini_keys

TOOL = "twine"  # the manifest's name for .pypirc
TWINE_DEFAULTS = ["pypi", "testpypi"]  # what twine reads when [distutils] names no servers


def repository_name(index: str) -> str:
    """The .pypirc section of ``USER/INDEX``, for `twine upload -r NAME`."""
    return "devpictl-" + index.replace("/", "-")


def pypirc_file(env: dict[str, str] | None = None) -> Path:
    """The file twine reads by default (~/.pypirc)."""
    return home(environ(env)) / ".pypirc"


@dataclass(frozen=True)
class Pypirc(Installer):
    """The .pypirc section that lets twine upload to ``index`` as ``user``."""

    index: str
    user: str
    password: str
    name: str = TOOL
    overriding_env: tuple[str, ...] = ("TWINE_REPOSITORY_URL", "TWINE_USERNAME", "TWINE_PASSWORD")

    def section(self, upload_url: str, password: str) -> dict[str, str | None]:
        return {"repository": upload_url, "username": self.user, "password": password}

    def settings(self, index_url: str) -> dict:
        return self.section(index_url, "<kept by devpictl>")

    def snippet(self, index_url: str) -> str:
        """The section with the password left out: `devpictl user password USER --show` prints it."""
        hidden = f"<`devpictl user password {self.user} --show` prints it>"
        lines = "".join(f"{key} = {value}\n" for key, value in self.section(index_url, hidden).items())
        name = repository_name(self.index)
        return f"[distutils]\nindex-servers =\n    {name}\n\n[{name}]\n{lines}"

    def config_file(self, *, scope=None, python=None, project=None) -> Path:
        return pypirc_file()

    def edit(self, text: str, index_url: str, *, added: dict, force: bool, where: str) -> tuple[str, dict]:
        parser = read_ini(text, where)
        servers = (_ini_get(parser, "distutils", "index-servers") or "").split() or list(TWINE_DEFAULTS)
        name = repository_name(self.index)
        if name not in servers:
            servers.append(name)
            text = set_ini_keys(text, "distutils", {"index-servers": "\n" + "\n".join(servers)})
        return set_ini_keys(text, name, self.section(index_url, self.password)), {}


def shell_lines(index: str, user: str, upload_url: str, cache: str, shell: str = "sh") -> str:
    """Variables for twine and uv publish; the password is read by devpictl as the shell runs them, never printed here."""
    from devpictl.clientconfig.shell import render

    fetch = f"devpictl user password {user} --show --name {cache}"
    plain = {"TWINE_REPOSITORY_URL": upload_url, "TWINE_USERNAME": user, "UV_PUBLISH_URL": upload_url, "UV_PUBLISH_USERNAME": user}
    lines = render(plain, shell)
    for variable in ("TWINE_PASSWORD", "UV_PUBLISH_PASSWORD"):
        if shell == "fish":
            lines += f"set -gx {variable} ({fetch})\n"
        elif shell == "powershell":
            lines += f"$env:{variable} = ({fetch})\n"
        else:
            lines += f'export {variable}="$({fetch})"\n'
    return lines


@dataclass
class UploadConfig:
    """`upload-config --json`: where twine and uv publish upload to, as whom, and the .pypirc written (or that would be)."""

    name: str
    index: str
    user: str
    upload_url: str
    change: Change | None  # None: nothing asked to be written
    applied: Applied | None = None
    dry_run: bool = False
    change_password: str = field(default="", repr=False)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "index": self.index,
            "user": self.user,
            "upload_url": self.upload_url,
            "repository": repository_name(self.index),
            "env": {"UV_PUBLISH_URL": self.upload_url, "UV_PUBLISH_USERNAME": self.user, "TWINE_REPOSITORY_URL": self.upload_url},
            "written": self.applied is not None,
            "file": str(self.change.path) if self.change else None,
            "changed": bool(self.change and self.change.changed),
        }
        if self.dry_run and self.change is not None:
            data["diff"] = masked_diff(self.change, self.change_password)
        return data


def masked_diff(change: Change, password: str) -> str:
    """What --dry-run shows: the diff, with the password left out."""
    diff = change.diff()
    return diff.replace(password, "********") if password else diff
