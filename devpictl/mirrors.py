"""The catalog of upstream indexes, the user's own entries, and the parsing of a NAME|URL argument."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from devpictl.errors import BadInput, MalformedURL, UnknownMirror


@dataclass(frozen=True)
class Upstream:
    """Where root/pypi fetches from. ``url`` is None for the official index."""

    name: str
    url: str | None
    note: str = ""
    # PyPI's X-PyPI-Last-Serial header; devpi rejects pages from an upstream
    # that lacks it once the cache holds a newer serial, unless told to ignore it.
    sends_serial_header: bool = False
    user: bool = False  # from [mirrors.NAME] in devpictl's config.toml

    @property
    def is_official(self) -> bool:
        return self.url is None

    @property
    def public_url(self) -> str | None:
        """The URL without credentials: what devpi's anonymously readable config holds."""
        return without_credentials(self.url) if self.url else None

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) from the URL, or None; they go to devpi through devpictl's plugin, never into its config."""
        parts = urlsplit(self.url or "")
        if parts.username is None and parts.password is None:
            return None
        return unquote(parts.username or ""), unquote(parts.password or "")

    @property
    def display_url(self) -> str:
        """The URL as devpictl prints it: credentials show as ***."""
        return redact(self.url) if self.url else "(the official index, devpi's default)"

    def as_dict(self) -> dict[str, object]:
        """The entry of `mirrors --json`: the URL redacted (None for the official index), ``user`` only for the user's own."""
        return {"name": self.name, "url": self.url and self.display_url, "note": self.note, **({"user": True} if self.user else {})}

    def public_dict(self) -> dict[str, object]:
        """This upstream inside a cache's result (`up`, `set-upstream`): name and URL without credentials."""
        return {"name": self.name, "url": self.public_url}


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def redact(url: str) -> str:
    """``url`` with any user and password replaced by ***, fit to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


OFFICIAL = Upstream("pypi", None, "the official index, reached through devpi's and pip's defaults", True)

CATALOG: dict[str, Upstream] = {
    u.name: u
    for u in (
        OFFICIAL,
        Upstream("nju", "https://mirror.nju.edu.cn/pypi/web/simple", "Nanjing University"),
        Upstream("tuna", "https://pypi.tuna.tsinghua.edu.cn/simple", "Tsinghua University TUNA"),
        Upstream("bfsu", "https://mirrors.bfsu.edu.cn/pypi/web/simple", "Beijing Foreign Studies University"),
        Upstream("aliyun", "https://mirrors.aliyun.com/pypi/simple", "Alibaba Cloud"),
        Upstream("tencent", "https://mirrors.cloud.tencent.com/pypi/simple", "Tencent Cloud"),
        Upstream("huawei", "https://mirrors.huaweicloud.com/repository/pypi/simple", "Huawei Cloud"),
        Upstream("sjtu", "https://mirror.sjtu.edu.cn/pypi/web/simple", "Shanghai Jiao Tong University"),
        Upstream("pku", "https://mirrors.pku.edu.cn/pypi/web/simple", "Peking University"),
        # The next three are the entries chsrc ships beyond the ones above. Not checked from
        # devpictl's test machine, which reaches no domestic mirror (docs/usage.md#mirror-catalog).
        Upstream("hust", "https://mirrors.hust.edu.cn/pypi/web/simple", "Huazhong University of Science and Technology"),
        Upstream("lzu", "https://mirror.lzu.edu.cn/pypi/web/simple", "Lanzhou University; forwards to another mirror, which may change"),
        Upstream("mirrorz", "https://mirrors.cernet.edu.cn/pypi/web/simple", "MirrorZ/CERNET: redirects to a university mirror near you"),
    )
}

# Names people copy from old blog posts; each points at a working replacement.
RETIRED: dict[str, tuple[str, str]] = {
    "ustc": ("its PyPI service was removed and now redirects to bfsu", "bfsu"),
    "douban": ("it is unreliable and breaks devpi", "tuna"),
}

# Projects released on most weekdays: a mirror a day behind lacks one of their releases
# (`mirrors test` measures the lag from them, devpictl/freshness.py).
LAG_PROJECTS = ("boto3", "botocore")

# `up --mirror fastest` and `set-upstream fastest` measure the mirrors and take the fastest.
FASTEST = "fastest"
# What a user entry may be called: no dots or slashes, so it never reads as a URL.
USER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
# "custom" is how devpictl shows an upstream given by URL.
RESERVED = (FASTEST, "custom")


NGINX_SPECIAL = frozenset("$'\";{}\\`")


def parse_index_url(url: str) -> str:
    """Check that ``url`` is an absolute http(s) URL and return it without a trailing slash."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text) or parts.query or parts.fragment:
        raise MalformedURL(
            f"{redact(text)!r} is not an index URL: give http(s)://HOST[:PORT]/PATH, e.g. https://mirror.example/pypi/simple"
        )
    # The URL, less its credentials (which never reach nginx), goes into nginx's configuration
    # (the failover server): these would end its token, quote or brace it, or make nginx
    # read a variable ($http_...).
    unsafe = sorted(set(text.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)) & NGINX_SPECIAL)
    if unsafe:
        raise MalformedURL(f"{redact(text)!r} has {' '.join(unsafe)} in it, which no index URL needs: percent-encode them, e.g. %24 for $")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise MalformedURL(f"{redact(text)!r} has an invalid port: use a number from 1 to 65535") from None
    # devpi takes only a lowercase scheme (it answers 400 to HTTP://).
    return (parts.scheme + text[len(parts.scheme) :]).rstrip("/")


# Debian archives of the same universities and clouds, for the apt steps of an
# image build (`--apt-mirror`). Each serves /debian and /debian-security.
APT_CATALOG: dict[str, str] = {
    "tuna": "https://mirrors.tuna.tsinghua.edu.cn/debian",
    "ustc": "https://mirrors.ustc.edu.cn/debian",
    "bfsu": "https://mirrors.bfsu.edu.cn/debian",
    "nju": "https://mirror.nju.edu.cn/debian",
    "sjtu": "https://mirror.sjtu.edu.cn/debian",
    "pku": "https://mirrors.pku.edu.cn/debian",
    "aliyun": "https://mirrors.aliyun.com/debian",
    "tencent": "https://mirrors.cloud.tencent.com/debian",
    "huawei": "https://mirrors.huaweicloud.com/debian",
}


def resolve_apt_mirror(spec: str) -> str:
    """A catalog name or the URL of a Debian archive (ending in /debian), as a URL."""
    key = spec.strip().lower()
    if key in APT_CATALOG:
        return APT_CATALOG[key]
    if "://" not in spec:
        raise UnknownMirror(f"unknown apt mirror {spec!r}: use one of {', '.join(APT_CATALOG)} or the http(s) URL of a Debian archive")
    url = parse_index_url(spec)
    if not url.endswith("/debian") or "&" in url:
        raise MalformedURL(f"{spec!r} is not a Debian archive: give its URL ending in /debian, e.g. https://mirror.example/debian")
    return url


def is_fastest(spec: str | None) -> bool:
    return spec is not None and spec.strip().lower() == FASTEST


def resolve(spec: str) -> Upstream:
    """Turn a catalog name, one of the user's entries or a URL into an Upstream."""
    key = spec.strip().lower()
    if key in CATALOG:
        return CATALOG[key]
    if key in RETIRED:
        why, instead = RETIRED[key]
        raise UnknownMirror(f"mirror {key!r} is not offered: {why}; use {instead!r} instead")
    if key == FASTEST:
        raise UnknownMirror("'fastest' works only with `up --mirror` and `set-upstream`: name a mirror or URL here")
    if "://" in spec or "/" in spec or "." in spec:
        return Upstream(name="custom", url=parse_index_url(spec))
    users = user_mirrors()
    if key in users:
        return users[key]
    raise UnknownMirror(f"unknown mirror {spec!r}: use one of {', '.join([*CATALOG, *users])} or an http(s) URL")


def index_key(url: str) -> tuple[str, str, int | None, str]:
    """What makes two index URLs the same index: scheme, host (any case), port, path (any trailing slash)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def effective_url(upstream: Upstream, official: str) -> str:
    """The URL devpi fetches from, without credentials."""
    return (upstream.public_url or official).rstrip("/")


def find_by_url(url: str | None, official_url: str) -> Upstream:
    """The catalog entry (or the user's entry) whose URL is ``url``, or a custom Upstream for it."""
    stripped = (url or official_url).rstrip("/")
    key = index_key(stripped)
    if key == index_key(official_url):
        return OFFICIAL
    try:
        users = user_mirrors()
    except BadInput:  # a broken config.toml must not break status; only the name is lost
        users = {}
    for upstream in [*CATALOG.values(), *users.values()]:
        if upstream.url and index_key(upstream.url) == key:
            return upstream
    return Upstream(name="custom", url=stripped)


def every_upstream() -> list[Upstream]:
    """The catalog, then the user's entries."""
    return [*CATALOG.values(), *user_mirrors().values()]


def user_mirrors() -> dict[str, Upstream]:
    """The user's own entries: the [mirrors.NAME] tables of devpictl's config.toml."""
    from devpictl import settings

    return _user_entries(settings.load_config(), settings.config_file())


def _user_entries(config: dict, path: Path) -> dict[str, Upstream]:
    table = config.get("mirrors", {})
    if not isinstance(table, dict):
        raise BadInput(f"{path}: 'mirrors' must be a table of [mirrors.NAME] entries: fix it or delete the key")
    entries: dict[str, Upstream] = {}
    for name, entry in table.items():
        where = f"{path}: [mirrors.{name}]"
        problem = _name_problem(name)
        if problem:
            raise BadInput(f"{where} {problem}: rename it in the file")
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise BadInput(f'{where} needs url = "http(s)://HOST/PATH": fix it, or `devpictl mirrors remove {name}`')
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise BadInput(f"{where} has a note that is not a string: quote it, or `devpictl mirrors remove {name}`")
        try:
            url = parse_index_url(entry["url"])
        except MalformedURL:
            raise BadInput(
                f"{where} has url {redact(entry['url'])!r}, not an http(s) index URL: fix it, or `devpictl mirrors remove {name}`"
            ) from None
        entries[name] = Upstream(name, url, note, user=True)
    return entries


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user entry, or None."""
    if name in CATALOG:
        return f"shadows the built-in mirror {name!r}"
    if name in RETIRED:
        return f"reuses {name!r}, a mirror devpictl refuses ({RETIRED[name][0]})"
    if name in RESERVED:
        return f"uses {name!r}, a word devpictl reserves"
    if not USER_NAME.fullmatch(name):
        return "is not a usable name (1-40 lowercase letters, digits, '_' or '-', starting with a letter or digit)"
    return None


def add_user_mirror(name: str, url: str, note: str = "") -> Upstream:
    """Add an entry to devpictl's config.toml, keeping everything else in it."""
    from devpictl import settings

    key = name.strip().lower()
    problem = _name_problem(key)
    if problem:
        raise BadInput(f"mirror name {name!r} {problem}: pick another name")
    url = parse_index_url(url)
    note = " ".join(note.split())
    path = settings.config_file()
    config = settings.load_config()
    users = _user_entries(config, path)
    if key in users:
        raise BadInput(
            f"you already have a mirror named {key!r} ({users[key].display_url}): `devpictl mirrors remove {key}` first to replace it"
        )
    for existing in [*CATALOG.values(), *users.values()]:
        if existing.url and index_key(existing.url) == index_key(url):
            raise BadInput(f"{redact(url)} is already the mirror {existing.name!r} ({redact(existing.url)}): use that name")
    config.setdefault("mirrors", {})[key] = {"url": url, "note": note}
    settings.save_config(config)
    return Upstream(key, url, note, user=True)


def remove_user_mirror(name: str) -> str | None:
    """Remove one of the user's entries from devpictl's config.toml, keeping everything else; return its URL."""
    from devpictl import settings

    key = name.strip().lower()
    if key in CATALOG:
        raise BadInput(f"{key!r} is a built-in mirror and cannot be removed: only entries added with `devpictl mirrors add` can")
    config = settings.load_config()
    table = config.get("mirrors")
    if not isinstance(table, dict) or key not in table:
        names = ", ".join(table) if isinstance(table, dict) and table else "none"
        raise BadInput(f"you have no mirror named {key!r} (yours: {names}): see `devpictl mirrors`")
    entry = table.pop(key)
    if not table:
        del config["mirrors"]
    settings.save_config(config)
    url = entry.get("url") if isinstance(entry, dict) else None
    return url if isinstance(url, str) else None
