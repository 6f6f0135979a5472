"""A cache's settings, one declaration each, and the one place flag > environment > remembered > default is settled.

Typer reads the flag, then the environment variable; cache.toml holds what `up` remembered, so
that `up` after `down` (or a reboot) brings back the same cache; the dataclass default is the last.
Each remembered setting says how a value given to `up` is checked and how one read back is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from devpictl import image as img
from devpictl import policy
from devpictl.certificates import check_name
from devpictl.errors import BadInput
from devpictl.files import write_atomic
from devpictl.mirrors import Upstream
from devpictl.network import DEFAULT_HOST, check_host
from devpictl.page_policy import Policy as PagePolicy
from devpictl.settings import (
    DEFAULT_MEMORY,
    DEFAULT_PIDS_LIMIT,
    DEFAULT_PORT,
    Instance,
    check_pids_limit,
    check_port,
    check_timeout,
    memory_bytes,
    read_toml,
    size_bytes,
)
from devpictl.tls import GIVEN, HTTP_CHOICES, MODES, OFF, REDIRECT, SELF_SIGNED

DEFAULT_PROBE_PROJECT = "pip"
T = TypeVar("T")


def wrong(value: object, source: str, expected: str) -> BadInput:
    return BadInput(f"{source} {value!r} is not {expected}: fix it, or delete the line to use the default")


# How a value read back from cache.toml is checked: (value, "PATH: key =") -> the value to use.
def text(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise wrong(value, source, "a non-empty string")
    return value


def boolean(value: object, source: str) -> bool:
    if not isinstance(value, bool):
        raise wrong(value, source, "true or false")
    return value


def port_number(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise wrong(value, source, "a port number from 1 to 65535")
    return value


def byte_count(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise wrong(value, source, "a number of bytes (0 for no limit)")
    return value


def pathname(value: object, source: str) -> Path:
    return Path(text(value, source))


def remembered_host(value: object, source: str) -> str:
    return check_host(text(value, source), source.removesuffix(" ="))  # its errors read "PATH: host '...'"


def remembered_memory(value: object, source: str) -> str:
    memory_bytes(text(value, source), source)
    return str(value)


def remembered_tls(value: object, source: str) -> str:
    if value not in (SELF_SIGNED, GIVEN, OFF):
        raise wrong(value, source, f"{SELF_SIGNED!r}, {GIVEN!r} or {OFF!r}")
    return str(value)


def remembered_http(value: object, source: str) -> str:
    if value not in HTTP_CHOICES:
        raise wrong(value, source, " or ".join(repr(c) for c in HTTP_CHOICES))
    return str(value)


def remembered_names(value: object, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise wrong(value, source, "a list of host names or addresses")
    try:
        return tuple(check_name(item) for item in value)
    except BadInput:
        raise wrong(value, source, "a list of host names or addresses") from None


def remembered_mirrors(value: object, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise wrong(value, source, "a list of mirror names or URLs")
    return value


# How a value given to `up` (flag or environment variable) is checked: value -> the value to use.
def given_memory(value: str) -> str:
    memory_bytes(value)
    return value


def given_max_size(value: str) -> int:
    return size_bytes(value, "--max-size", "20G")


def given_tls(value: str) -> str:
    if value not in MODES:  # GIVEN comes with --tls-cert (ask)
        raise BadInput(f"--tls {value!r} is not known: use --tls self-signed, --tls off, or give --tls-cert FILE --tls-key FILE")
    return value


def given_http(value: str) -> str:
    if value not in HTTP_CHOICES:
        raise BadInput(f"--http {value!r} is not known: use --http redirect (to HTTPS) or --http refuse")
    return value


def given_names(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(check_name(name) for name in value))


def given_replica_of(value: str) -> str:
    from devpictl import replica

    return replica.check_primary_url(value)


@dataclass(frozen=True)
class Setting:
    """How one remembered setting is checked: read back from cache.toml, and given to `up` (None: as it is)."""

    remembered: Callable[[Any, str], Any]
    given: Callable[[Any], Any] | None = None

    def check_given(self, value: object) -> Any:
        return self.given(value) if self.given is not None else value


def remembered(default: T, check_remembered: Callable[[Any, str], Any], check_given: Callable[[Any], Any] | None = None) -> T:
    """A field of CacheSettings that `up` remembers in cache.toml, under its own name."""
    return field(default=default, metadata={"setting": Setting(check_remembered, check_given)})


@dataclass(frozen=True)
class CacheSettings:
    """Every setting of one `up`: what was given, else remembered, else the built-in default."""

    instance: Instance
    build: img.BuildOptions = field(default_factory=img.BuildOptions)
    host: str = remembered(DEFAULT_HOST, remembered_host, check_host)
    port: int = remembered(DEFAULT_PORT, port_number, check_port)
    image: str = remembered("", text)  # "": devpictl's tag for the build (see __post_init__)
    network: str | None = remembered(None, text)
    ca_bundle: Path | None = remembered(None, pathname)
    probe_project: str = remembered(DEFAULT_PROBE_PROJECT, text)
    front: bool = remembered(True, boolean)  # nginx before devpi
    offline: bool = remembered(False, boolean)  # devpi's --offline-mode: serve only cached files, never ask the upstream
    memory: str = remembered(DEFAULT_MEMORY, remembered_memory, given_memory)  # Docker's notation (2g)
    pids_limit: int = remembered(DEFAULT_PIDS_LIMIT, check_pids_limit, check_pids_limit)
    max_bytes: int = remembered(0, byte_count, given_max_size)  # keep the mirrored files under this size (0: no limit)
    replica_of: str | None = remembered(None, text, given_replica_of)  # the primary's URL: run as its replica (replica.py)
    # The page policy (devpictl/policy.py): what the cache's pages leave off.
    min_release_age: int = remembered(0, policy.remembered_age, policy.given_age)  # seconds; 0: none
    allow_newer: tuple[str, ...] = remembered((), policy.remembered_names, policy.given_allow_newer)  # PROJECT[==VERSION]
    deny: tuple[str, ...] = remembered((), policy.remembered_names, policy.given_deny)
    allow_only: tuple[str, ...] | None = remembered(None, policy.remembered_names, policy.given_allow_only)  # None: every project
    tls: str = remembered(OFF, remembered_tls, given_tls)  # HTTPS: self-signed, or the certificate --tls-cert gave (tls.py)
    tls_names: tuple[str, ...] = remembered((), remembered_names, given_names)  # --tls-name: the names a self-signed certificate is for
    http: str = remembered(REDIRECT, remembered_http, given_http)  # plain HTTP on the HTTPS port: redirect or refuse
    read_auth: bool = remembered(False, boolean)  # reading needs a login (devpi's users)
    # This run's alone, never remembered:
    upstream: Upstream | None = None  # None: keep what the cache has (pypi for a new one)
    fallbacks: tuple[Upstream, ...] | None = None  # upstreams to fail over to; None: the remembered ones (`fallback`)
    check: bool = True  # check that a new upstream answers before switching to it
    refresh_pages: bool = False  # after a switch, fetch every cached page now instead of at its next request
    replica_secret: Path | None = None  # the file holding the primary's devpi secret
    tls_cert: Path | None = None  # --tls-cert and --tls-key: the certificate to serve, copied into the volume
    tls_key: Path | None = None
    timeout: float = 180.0
    environ: Mapping[str, str] = field(default_factory=dict)
    # The build options the user gave (BuildOptions has defaults for the rest): an existing image must match these.
    build_given: frozenset[str] = frozenset()
    asked: frozenset[str] = frozenset()  # the remembered settings given by flag or environment variable
    given: frozenset[str] = frozenset()  # those asked or remembered: what an existing container must match

    def __post_init__(self) -> None:
        if not self.image:
            object.__setattr__(self, "image", img.default_image(self.build.devpi_server_version))

    def page_policy(self) -> PagePolicy:
        return policy.of({key: getattr(self, key) for key in policy.KEYS})

    def switch_options(self) -> SwitchOptions:
        return SwitchOptions(self.instance, self.probe_project, self.fallbacks, self.check, self.offline, self.refresh_pages)


@dataclass(frozen=True)
class SwitchOptions:
    """What pointing root/pypi at an upstream needs to know (switching.switch)."""

    instance: Instance
    probe_project: str
    fallbacks: tuple[Upstream, ...] | None = None  # None: the remembered ones
    check: bool = True
    offline: bool = False
    refresh_pages: bool = False


# The fields `up` remembers, and every setting cache.toml may hold: those and `fallback`
# (the failover chain's mirror names or URLs, in order), which failover.plan resolves.
FIELDS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in dataclasses.fields(CacheSettings) if "setting" in f.metadata}
REMEMBERED: dict[str, Setting] = {**FIELDS, "fallback": Setting(remembered_mirrors)}


def ask(instance: Instance, *, fastest: bool = False, **values: Any) -> CacheSettings:
    """What `up` is asked for (CacheSettings' fields; None: not given), each value checked before anything is touched.

    ``fastest``: --mirror fastest, which the CLI measures before it sets ``upstream``.
    """
    checked = {key: FIELDS[key].check_given(value) for key, value in values.items() if key in FIELDS and value is not None}
    asked = {key: value for key, value in checked.items() if value not in ("", ())}  # an empty --image, --network, --deny... is not given
    if "replica_of" in asked:
        if values.get("upstream") is not None or fastest:
            raise BadInput("a replica fetches through its primary: drop --mirror, and run `devpictl set-upstream` on the primary")
        if asked.get("offline"):
            raise BadInput(
                "a replica cannot run in offline mode (it keeps serving what it holds while the primary is away): drop --offline"
            )
        policy_given = [key for key in ("min_release_age", "allow_newer", "deny", "allow_only") if key in asked]
        if policy_given:
            option = "--" + policy_given[0].replace("_", "-")
            raise BadInput(f"a replica applies its primary's page policy: drop {option}, and run `devpictl set-policy` on the primary")
    elif values.get("replica_secret") is not None:
        raise BadInput("--replica-secret goes with --replica-of URL: give the primary's URL too, or drop --replica-secret")
    if (values.get("tls_cert") is None) != (values.get("tls_key") is None):
        raise BadInput("--tls-cert and --tls-key go together: give the certificate and its key")
    if values.get("tls_cert") is not None:
        if asked.get("tls", GIVEN) != GIVEN:
            raise BadInput("--tls-cert gives the certificate to serve: drop --tls, or drop --tls-cert and --tls-key")
        asked["tls"] = GIVEN
    if "timeout" in values:
        check_timeout(values["timeout"])
    this_run = {key: value for key, value in values.items() if key not in FIELDS}
    return CacheSettings(instance, **asked, **this_run, asked=frozenset(asked), given=frozenset(asked))


def decide(wanted: CacheSettings) -> CacheSettings:
    """``wanted`` with what `up` remembered in place of what was not asked."""
    stored = {key: value for key, value in load_remembered(wanted.instance).items() if key in FIELDS}
    kept = {key: value for key, value in stored.items() if key not in wanted.asked}
    return dataclasses.replace(wanted, **kept, given=wanted.asked | frozenset(stored))


def probe_project(instance: Instance, given: str | None = None) -> str:
    """The project whose page shows that an upstream answers: given (--probe-project), else remembered, else pip."""
    return decide(ask(instance, probe_project=given)).probe_project


def load_remembered(instance: Instance) -> dict[str, Any]:
    """What `up` remembered, each value checked: a wrong type or value is one error naming the file and key."""
    path = instance.settings_file
    stored = read_toml(path)
    return {key: REMEMBERED[key].remembered(value, f"{path}: {key} =") for key, value in stored.items() if key in REMEMBERED}


def save_remembered(instance: Instance, values: Mapping[str, object]) -> None:
    import tomlkit

    data = {
        k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
        for k, v in values.items()
        if k in REMEMBERED and v is not None
    }
    instance.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    header = "# Written by `devpictl up`: how this cache was created. Flags and DEVPICTL_* variables win.\n"
    write_atomic(instance.settings_file, (header + tomlkit.dumps(data)).encode("utf-8"))


def remember(settings: CacheSettings, **running: object) -> None:
    """Keep ``settings`` for the next `up`, ``running`` (what the container has; None: nothing) over them."""
    decided = {key: getattr(settings, key) for key in FIELDS}
    save_remembered(settings.instance, {**decided, **running})
