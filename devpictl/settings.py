"""Where devpictl keeps its files, how caches are named, and the root password store."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from devpictl.errors import BadInput

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
DEFAULT_NAME = "default"
DEFAULT_PORT = 3141
DEFAULT_HOST = "127.0.0.1"
LABEL_MANAGED = "devpictl.managed"
LABEL_INSTANCE = "devpictl.instance"


def data_dir() -> Path:
    """devpictl's data directory: $DEVPICTL_DATA_DIR, else the platform's user data dir."""
    override = os.environ.get("DEVPICTL_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("devpictl", appauthor=False))


def config_dir() -> Path:
    """devpictl's config directory (config.toml): $DEVPICTL_CONFIG_DIR, else the platform's user config dir."""
    override = os.environ.get("DEVPICTL_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("devpictl", appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.toml"


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadInput(
            f"cache name {name!r} is not allowed: use 1-40 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise BadInput(f"port {port} is out of range: use a number from 1 to 65535")
    return port


def extra_labels(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Labels from $DEVPICTL_LABELS (``k=v,k2=v2``) put on everything devpictl creates.

    Lets a CI farm or a test suite find and clean up what it made.
    """
    raw = (environ if environ is not None else os.environ).get("DEVPICTL_LABELS", "")
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"DEVPICTL_LABELS item {item!r} is not KEY=VALUE: write e.g. DEVPICTL_LABELS=team=ci,owner=me")
        labels[key] = value
    return labels


@dataclass(frozen=True)
class Instance:
    """The names of one cache's engine objects and files."""

    name: str

    @property
    def container(self) -> str:
        return f"devpictl-{self.name}"

    @property
    def volume(self) -> str:
        return f"devpictl-{self.name}-data"

    @property
    def state_dir(self) -> Path:
        return data_dir() / "caches" / self.name

    @property
    def password_file(self) -> Path:
        return self.state_dir / "root-password"

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "cache.toml"

    def labels(self) -> dict[str, str]:
        return {LABEL_MANAGED: "1", LABEL_INSTANCE: self.name, **extra_labels()}


def read_root_password(instance: Instance) -> str | None:
    try:
        return instance.password_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def new_root_password() -> str:
    """A fresh root password: 32 URL-safe characters, never empty."""
    return secrets.token_urlsafe(24)


def ensure_root_password(instance: Instance) -> tuple[str, bool]:
    """Return the cache's root password, generating and storing one (mode 0600) if none exists."""
    existing = read_root_password(instance)
    if existing:
        return existing, False
    password = new_root_password()
    store_root_password(instance, password)
    return password, True


def stage_root_password(instance: Instance, password: str) -> Path:
    """Write ``password`` to a new 0600 file beside the stored one; commit_root_password puts it in place."""
    import tempfile

    instance.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".root-password.", dir=instance.state_dir)  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def commit_root_password(instance: Instance, staged: Path) -> None:
    """Replace the stored root password with a staged one, in one rename."""
    os.replace(staged, instance.password_file)


def store_root_password(instance: Instance, password: str) -> None:
    """Store ``password`` (mode 0600) atomically: a reader sees the old file or the new one, never half."""
    commit_root_password(instance, stage_root_password(instance, password))


def forget_root_password(instance: Instance) -> None:
    instance.password_file.unlink(missing_ok=True)


# What `up` remembers of a cache, so that `up` after `down` (or a reboot) brings
# back the same cache: flag > environment > remembered > built-in default.
REMEMBERED_KEYS = ("host", "port", "image", "network", "ca_bundle", "probe_project", "front", "offline")


def read_toml(path: Path) -> dict:
    """A TOML file as a dict ({} when missing); one clear error when unreadable or invalid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BadInput(f"cannot read {path} ({exc.strerror}): fix its permissions or delete it") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path} is not valid TOML ({exc}): fix it or delete it") from None


def load_remembered(instance: Instance) -> dict[str, object]:
    return {k: v for k, v in read_toml(instance.settings_file).items() if k in REMEMBERED_KEYS}


def save_remembered(instance: Instance, values: dict[str, object]) -> None:
    import tomlkit

    from devpictl.files import write_atomic

    data = {k: v for k, v in values.items() if k in REMEMBERED_KEYS and v is not None}
    instance.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = "# Written by `devpictl up`: how this cache was created. Flags and DEVPICTL_* variables win.\n"
    write_atomic(instance.settings_file, (header + tomlkit.dumps(data)).encode("utf-8"))


def forget_cache(instance: Instance) -> None:
    """Forget the root password and remembered settings of a deleted cache."""
    instance.password_file.unlink(missing_ok=True)
    instance.settings_file.unlink(missing_ok=True)
    # Left by a password rotation that devpi stopped answering in the middle of.
    (instance.state_dir / "root-password.pending").unlink(missing_ok=True)


# devpictl's own config.toml (user mirror entries live under [mirrors.NAME]).
def load_config() -> dict:
    """devpictl's config.toml as a tomlkit document (a dict that keeps the file's comments and
    layout for save_config); empty when there is none."""
    import tomlkit

    path = config_file()
    read_toml(path)  # tomllib judges it, with one clear error
    try:
        return tomlkit.parse(path.read_text("utf-8"))
    except FileNotFoundError:
        return tomlkit.document()


def save_config(data: dict) -> None:
    """Replace config.toml with ``data`` in one step; a document from load_config keeps its comments."""
    import tomlkit

    from devpictl.files import write_atomic

    path = config_file()
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600  # a mirror URL may carry credentials
    write_atomic(path, tomlkit.dumps(data).encode("utf-8"), mode)
