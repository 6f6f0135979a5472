"""PEP 503 simple pages: the distribution files a page links, with what the links say of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from devpictl import coremetadata

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz", ".egg")


@dataclass(frozen=True)
class Link:
    url: str  # absolute, without its fragment
    filename: str
    sha256: str | None  # from the #sha256= fragment
    yanked: bool
    # The announcement of <url>.metadata (PEP 658/714): 'true' or 'sha256=HEX'; None without one.
    metadata: str | None = None

    @property
    def core_metadata(self) -> bool:
        return self.metadata is not None


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            found = dict(attrs)
            if found.get("href"):
                self.anchors.append(found)


def file_name(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def name_and_version(filename: str) -> tuple[NormalizedName, Version] | None:
    """The project (PEP 503 form) and version a wheel's or sdist's file name carries; None for any other name."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[:2]
        return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


def parse(html: str, page_url: str) -> list[Link]:
    """The distribution files ``html`` (the simple page at ``page_url``) links, in page order."""
    parser = _Anchors()
    parser.feed(html)
    links = []
    for attrs in parser.anchors:
        url, fragment = urldefrag(urljoin(page_url, attrs["href"] or ""))
        name = file_name(url)
        if urlsplit(url).scheme not in ("http", "https") or not name.lower().endswith(DIST_SUFFIXES):
            continue
        algorithm, _, digest = fragment.partition("=")
        links.append(
            Link(
                url=url,
                filename=name,
                sha256=digest.lower() if algorithm == "sha256" and digest else None,
                yanked="data-yanked" in attrs,
                metadata=coremetadata.announcement(attrs),
            )
        )
    return links


def announced_metadata(files: Sequence[Link], url: str) -> str | None:
    """The core metadata announcement of the link to ``url``."""
    return next((link.metadata for link in files if link.url == url), None)


def newest_wheel(files: Sequence[Link]) -> str | None:
    """The wheel with the highest version; a yanked one only if nothing else is listed. Ties: the later link."""
    wheels = [(position, link.url, link.yanked, wheel_version(link.url)) for position, link in enumerate(files)]
    wheels = [wheel for wheel in wheels if wheel[3] is not None]
    if not wheels:
        return None
    return max(wheels, key=lambda wheel: (not wheel[2], wheel[3], wheel[0]))[1]


def wheel_version(url: str) -> Version | None:
    """The version in a wheel's file name (PEP 427), or None for anything that is not a valid wheel name."""
    name = file_name(url)
    found = name_and_version(name) if name.endswith(".whl") else None
    return found[1] if found else None
