"""Where devpictl keeps its files, how caches are named, and the root password store."""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devpictl.errors import BadInput
from devpictl.files import sync_directory, write_atomic

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
DEFAULT_NAME = "default"
DEFAULT_PORT = 3141
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


def check_timeout(seconds: float) -> float:
    """A usable time limit: positive and finite (nan and inf would wait for ever)."""
    if not (seconds > 0 and math.isfinite(seconds)):
        raise BadInput(f"--timeout {seconds:g} is not a time limit: give a number of seconds, e.g. --timeout 10")
    return seconds


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
    def pending_password_file(self) -> Path:
        """A new root password devpi may hold already: written before devpi is asked to take it."""
        return self.state_dir / "root-password.pending"

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "cache.toml"

    @property
    def failure_log(self) -> Path:
        return self.state_dir / "last-failed-up.log"

    @property
    def ca_bundle_copy(self) -> Path:
        """The CA bundle a restored cache got from its archive, where the original's file was not here."""
        return self.state_dir / "ca-bundle.pem"

    @property
    def upstream_auth_file(self) -> Path:
        """The upstream credentials this cache was given (0600): handed to each new container, never to devpi's config."""
        return self.state_dir / "upstream-auth.json"

    @property
    def replica_secret_file(self) -> Path:
        """A replica's copy of its primary's devpi secret (0600): handed to each new container, never shown."""
        return self.state_dir / "primary-secret"

    @property
    def tls_dir(self) -> Path:
        """The cache's CA (its key 0600), the certificate it serves, the trust bundle for installers (devpictl/tls.py)."""
        return self.state_dir / "tls"

    @property
    def readers_dir(self) -> Path:
        """The passwords (0600) of the devpi users pip-config logs this machine's users in as (`up --read-auth`)."""
        return self.state_dir / "readers"

    @property
    def unfinished_switch_file(self) -> Path:
        """Present from just before an upstream switch's PATCH until every cached page was refreshed."""
        return self.state_dir / "upstream-switch.unfinished"

    def labels(self) -> dict[str, str]:
        return {LABEL_MANAGED: "1", LABEL_INSTANCE: self.name, **extra_labels()}


def read_secret_file(path: Path) -> str | None:
    """The stripped text of a secret file; None when missing or empty; one clear error when unreadable."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text: put the cache's root password in it, or delete it") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path} ({exc.strerror}): make it a readable file holding the root password, or delete it") from None


def read_root_password(instance: Instance) -> str | None:
    return read_secret_file(instance.password_file)


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


def write_durably(path: Path, text: str) -> None:
    """Replace ``path`` (mode 0600) with ``text`` so that it survives a crash once this returns."""
    write_atomic(path, text.encode("utf-8"), 0o600, durable=True)


def store_root_password(instance: Instance, password: str) -> None:
    """Store ``password`` (mode 0600) atomically and durably."""
    write_durably(instance.password_file, password + "\n")


def stage_root_password(instance: Instance, password: str) -> None:
    """Keep ``password`` durably in the pending file before devpi is asked to take it."""
    write_durably(instance.pending_password_file, password + "\n")


def commit_root_password(instance: Instance) -> None:
    """devpi holds the pending password: make it the stored one, in one rename."""
    os.replace(instance.pending_password_file, instance.password_file)
    sync_directory(instance.state_dir)


def drop_pending_root_password(instance: Instance) -> None:
    """devpi does not hold the pending password: forget it."""
    instance.pending_password_file.unlink(missing_ok=True)


def forget_root_password(instance: Instance) -> None:
    instance.password_file.unlink(missing_ok=True)


def lock_file(instance: Instance) -> Path:
    """The cache's lock: in a private runtime dir, so that taking it leaves nothing in devpictl's own dirs."""
    import hashlib
    import stat
    import tempfile

    directory = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"devpictl-{os.getuid()}-locks"
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise BadInput(f"{directory} is not a private directory of yours: remove it, then run this again")
    key = hashlib.sha256(str(instance.state_dir.resolve()).encode()).hexdigest()[:16]
    return directory / f"{instance.name}-{key}.lock"


@contextlib.contextmanager
def cache_lock(instance: Instance) -> Iterator[None]:
    """Hold the cache's lock while a command changes it; a second command at once fails clearly.

    Two `up`s of one new cache would otherwise each create, and the loser's clean-up
    would delete what the winner made. The lock goes with the process, even on SIGKILL.
    """
    import fcntl

    from devpictl.errors import Conflict

    path = lock_file(instance)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(
                f"another devpictl command (pid {holder}) is changing cache {instance.name!r}: wait for it to finish, then run this again"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed this file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


# Resource limits of the cache container. devpi's RSS follows the largest project page it
# handles (a 34 MB page took the container to 1.1 GiB); a runaway must not take the host.
DEFAULT_MEMORY = "2g"
DEFAULT_PIDS_LIMIT = 512
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def size_bytes(value: str, source: str, example: str) -> int:
    """Bytes from Docker's and du's notation: 512m, 2g, 1.5T (powers of 1024), or a plain number."""
    match = SIZE.fullmatch(value.strip())
    if not match:
        raise BadInput(f"{source} {value!r} is not a size: give a number with K, M, G or T, e.g. {example}")
    return int(float(match[1]) * 1024 ** " kmgt".index((match[2] or " ").lower()))


DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hdw])", re.IGNORECASE)


MAX_DURATION_DAYS = 36525  # a century: beyond it a date before year 1 overflows datetime, and no log or file is older


def duration_days(value: str, source: str, example: str) -> float:
    """Days from '90d', '12h', '2w'; at most a century."""
    match = DURATION.fullmatch(value.strip())
    if not match:
        raise BadInput(f"{source} {value!r} is not a duration: give a number with h, d or w (e.g. {example})")
    days = float(match[1]) * {"h": 1 / 24, "d": 1.0, "w": 7.0}[match[2].lower()]
    if days > MAX_DURATION_DAYS:
        raise BadInput(f"{source} {value!r} is longer than a century: give at most {MAX_DURATION_DAYS}d (e.g. {example})")
    return days


def memory_bytes(value: str, source: str = "--memory") -> int:
    """A memory limit in bytes; at least 256 MiB, which devpi and nginx need."""
    amount = size_bytes(value, source, "2g or 1536m")
    if amount < 256 * 1024**2:
        raise BadInput(f"{source} {value!r} is too little for devpi and nginx: give at least 256m")
    return amount


def check_pids_limit(value: int, source: str = "--pids-limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 64:
        raise BadInput(f"{source} {value!r} is too low for devpi's threads and nginx: give at least 64")
    return value


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


def forget_cache(instance: Instance) -> list[str]:
    """Forget everything devpictl keeps of a deleted cache; returns the names of the files it removed."""
    files = [
        instance.password_file,
        instance.pending_password_file,  # left by a password rotation that was interrupted
        instance.settings_file,
        instance.failure_log,
        instance.unfinished_switch_file,
        instance.upstream_auth_file,
        instance.replica_secret_file,
        instance.ca_bundle_copy,
    ]
    users = instance.state_dir / "users"  # team users' passwords (devpictl/teams.py)
    files += sorted(users.glob("*.password*")) if users.is_dir() else []
    removed = [path.name for path in files if path.exists()]
    for path in files:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        users.rmdir()
    for directory in (instance.tls_dir, instance.readers_dir):
        if directory.is_dir():
            shutil.rmtree(directory)
            removed.append(f"{directory.name}/")
    with contextlib.suppress(OSError):  # gone already, or holds something devpictl did not put there
        instance.state_dir.rmdir()
    return removed


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

    path = config_file()
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600  # a mirror URL may carry credentials
    write_atomic(path, tomlkit.dumps(data).encode("utf-8"), mode)
