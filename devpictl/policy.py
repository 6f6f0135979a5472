"""The cache's page policy (`up --min-release-age/--allow-newer/--deny/--allow-only`, `set-policy`): checked, remembered, handed in.

devpictl/page_policy.py holds the rules; devpictl's devpi plugin applies them to every simple page
from the file handed into the container's run dir, read again when it changes. A primary also
shares it as root/pypi's setting SETTING, which replication carries to its replicas: their
follow-primary.py writes it into their own file. A replica has no policy of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import layout
from devpictl import page_policy as pp
from devpictl.cache import Cache
from devpictl.errors import BadInput, DevpiError

if TYPE_CHECKING:
    from docker import DockerClient

    from devpictl.settings import Instance

POLICY_PATH = f"{layout.RUN_DIR}/{layout.PAGE_POLICY_FILE}"
KEYS = ("min_release_age", "allow_newer", "deny", "allow_only")  # the remembered settings (precedence.CacheSettings)
SETTING = "devpictl_page_policy"  # root/pypi's setting (declared by the plugin): the primary's policy, JSON, for its replicas


# How values given to `up`/`set-policy` are checked (precedence's settings table).
def given_age(value: str) -> int:
    try:
        return pp.parse_duration(value)
    except ValueError as exc:
        raise BadInput(f"--min-release-age: {exc}") from None


def given_allow_newer(values: Iterable[str]) -> tuple[str, ...]:
    try:
        return tuple(sorted({"==".join(filter(None, pp.check_requirement(value))) for value in values}))
    except ValueError as exc:
        raise BadInput(f"--allow-newer: {exc}") from None


def given_deny(values: Iterable[str]) -> tuple[str, ...]:
    found = set()
    for value in values:
        try:
            name, version = pp.check_requirement(value)
        except ValueError as exc:
            raise BadInput(f"--deny: {exc}") from None
        if version is not None:
            raise BadInput(f"--deny {value!r}: a deny list names projects, not versions: drop '=={version}'")
        found.add(name)
    return tuple(sorted(found))


def given_allow_only(path: Path) -> tuple[str, ...]:
    """The project names of an allow-only FILE: one a line; blank lines and # comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"--allow-only: cannot read {path} ({exc.strerror}): give a file of project names, one a line") from None
    found = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            name, version = pp.check_requirement(entry)
        except ValueError:
            name, version = "", None
        if not name or version is not None:
            raise BadInput(f"--allow-only: {path}:{number}: {entry!r} is not a project name: one name a line")
        found.add(name)
    return tuple(sorted(found))


# How the remembered values read back from cache.toml are checked.
def remembered_age(value: object, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"{source} {value!r} is not a number of seconds: fix it, or delete the line to use the default")
    return value


def remembered_names(value: object, source: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise BadInput(f"{source} {value!r} is not a list of project names: fix it, or delete the line to use the default")
    try:
        for item in value:
            pp.check_requirement(item)
    except ValueError as exc:
        raise BadInput(f"{source} {exc}: fix it, or delete the line to use the default") from None
    return tuple(value)


def of(values: Mapping[str, object]) -> pp.Policy:
    """The policy of settings holding KEYS (an allow-only list of None: no such list)."""
    only = values.get("allow_only")
    return pp.Policy(
        min_release_age=int(values.get("min_release_age") or 0),  # type: ignore[call-overload]
        allow_newer=tuple(values.get("allow_newer") or ()),  # type: ignore[arg-type]
        deny=tuple(values.get("deny") or ()),  # type: ignore[arg-type]
        allow_only=None if only is None else tuple(only),  # type: ignore[arg-type]
    )


def installed(cache: Cache) -> pp.Policy | None:
    """The policy the cache's plugin applies now; None when none was handed in; BrokenPolicy when its file is unreadable (the plugin refuses pages)."""
    text = cache.read_text(POLICY_PATH)
    if text is None:
        return None
    try:
        return pp.Policy.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise pp.BrokenPolicy(f"{POLICY_PATH}: {exc}") from None


def install(cache: Cache, policy: pp.Policy) -> bool:
    """Hand ``policy`` in (the plugin reads it at its next page), and empty the front's page cache when it changed; whether it changed.

    A broken file is written anew whatever ``policy`` is: that is how `up` and `set-policy` repair it.
    Then shared with the replicas (``share``). A replica's policy is its primary's: nothing is installed.
    """
    if cache.primary_url is not None:
        return False
    try:
        changed = (installed(cache) or pp.Policy()) != policy
    except pp.BrokenPolicy:
        changed = True
    if changed:
        from devpictl.front import Front  # front.py reaches precedence, which checks its settings here

        cache.hand_in_files({layout.PAGE_POLICY_FILE: json.dumps(policy.to_dict(), indent=1).encode()})
        Front(cache).flush()
    share(cache, policy)
    return changed


def shared_text(policy: pp.Policy) -> str:
    """The policy as root/pypi's SETTING holds it (follow-primary.py reads it back with Policy.from_dict)."""
    return json.dumps(policy.to_dict(), sort_keys=True, separators=(",", ":"))


def share(cache: Cache, policy: pp.Policy) -> None:
    """Set root/pypi's SETTING to ``policy`` unless it holds it: replication takes it to every replica.

    An image built before the setting lacks it (devpi answers 400): it has no replicas that follow a policy either.
    """
    from devpictl.password import login_root

    text = shared_text(policy)
    if (cache.client.get_index().get(SETTING) or shared_text(pp.Policy())) == text:  # never set: no policy shared
        return
    login_root(cache.client, cache.instance)
    try:
        cache.client.patch_index([f"{SETTING}={text}"])
    except DevpiError as exc:
        if "unexpected keyword" not in str(exc):
            raise


def given_settings(
    min_release_age: str | None, allow_newer: Iterable[str] | None, deny: Iterable[str] | None, allow_only: Path | None
) -> dict[str, object]:
    """The policy settings given to `set-policy`, each checked as `up` checks it (precedence's table)."""
    from devpictl import precedence

    values = {"min_release_age": min_release_age, "allow_newer": allow_newer or None, "deny": deny or None, "allow_only": allow_only}
    return {key: precedence.FIELDS[key].check_given(value) for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class PolicyResult:
    name: str
    policy: str  # page_policy.describe()
    policy_settings: dict[str, object]  # Policy.to_dict(), as `status --json` shows it
    changed: bool

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "policy": self.policy, "policy_settings": self.policy_settings, "changed": self.changed}


def set_policy(
    engine: DockerClient, instance: Instance, given: Mapping[str, object], *, clear: bool = False, undeny: Iterable[str] = ()
) -> PolicyResult:
    """Remember the policy (``given`` over what `up` remembered, unless ``clear``; ``undeny``'s projects off the deny list) and apply it at once."""
    from devpictl import precedence
    from devpictl.replica import refuse_on_replica

    with Cache.running(engine, instance) as cache:  # before anything is written: no cache, no change
        refuse_on_replica(cache, "set-policy")
        stored = precedence.load_remembered(instance)
        current = {key: stored.get(key) for key in KEYS} if not clear else {}
        wanted = {**current, **given}
        lifted = set(undeny)
        if lifted:
            wanted["deny"] = tuple(name for name in wanted.get("deny") or () if name not in lifted)  # type: ignore[attr-defined]
        policy = of(wanted)
        changed = install(cache, policy)
    precedence.save_remembered(instance, {**{k: v for k, v in stored.items() if k not in KEYS}, **wanted})
    return PolicyResult(instance.name, pp.describe(policy), policy.to_dict(), changed)
