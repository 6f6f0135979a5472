"""The catalog of upstream indexes and the parsing of a NAME|URL argument."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from devpictl.errors import MalformedURL, UnknownMirror


@dataclass(frozen=True)
class Upstream:
    """Where root/pypi fetches from. ``url`` is None for the official index."""

    name: str
    url: str | None
    note: str = ""
    # PyPI's X-PyPI-Last-Serial header; devpi rejects pages from an upstream
    # that lacks it once the cache holds a newer serial, unless told to ignore it.
    sends_serial_header: bool = False

    @property
    def is_official(self) -> bool:
        return self.url is None

    @property
    def display_url(self) -> str:
        return self.url or "(the official index, devpi's default)"


OFFICIAL = Upstream(
    "pypi", None, "the official index, reached through devpi's and pip's defaults", True
)

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
    )
}

# Names people copy from old blog posts; each points at a working replacement.
RETIRED: dict[str, tuple[str, str]] = {
    "ustc": ("its PyPI service was removed and now redirects to bfsu", "bfsu"),
    "douban": ("it is unreliable and breaks devpi", "tuna"),
}


def parse_index_url(url: str) -> str:
    """Check that ``url`` is an absolute http(s) URL and return it without a trailing slash."""
    text = url.strip()
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in text)
        or parts.query
        or parts.fragment
    ):
        raise MalformedURL(
            f"{url!r} is not an index URL: give http(s)://HOST[:PORT]/PATH, "
            "e.g. https://mirror.example/pypi/simple"
        )
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise MalformedURL(f"{url!r} has an invalid port: use a number from 1 to 65535") from None
    return text.rstrip("/")


def resolve(spec: str) -> Upstream:
    """Turn a catalog name or a URL into an Upstream."""
    key = spec.strip().lower()
    if key in CATALOG:
        return CATALOG[key]
    if key in RETIRED:
        why, instead = RETIRED[key]
        raise UnknownMirror(f"mirror {key!r} is not offered: {why}; use {instead!r} instead")
    if "://" in spec or "/" in spec or "." in spec:
        return Upstream(name="custom", url=parse_index_url(spec))
    raise UnknownMirror(
        f"unknown mirror {spec!r}: use one of {', '.join(CATALOG)} or an http(s) URL"
    )


def find_by_url(url: str | None, official_url: str) -> Upstream:
    """The catalog entry whose URL is ``url``, or a custom Upstream for it."""
    stripped = (url or official_url).rstrip("/")
    if stripped == official_url.rstrip("/"):
        return OFFICIAL
    for upstream in CATALOG.values():
        if upstream.url == stripped:
            return upstream
    return Upstream(name="custom", url=stripped)
