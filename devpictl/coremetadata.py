"""Core metadata (PEP 658, PEP 714): does an index serve ``<wheel>.metadata`` truthfully?

Installers read a wheel's METADATA from ``<file URL>.metadata`` instead of downloading the
wheel when the simple page announces it. devpi announces it for its mirror only when told
that the upstream has these files (``mirror_provides_core_metadata``); an announced file
that answers 404 breaks installs. So devpictl measures, never assumes: the page must
announce the probe project's newest wheel's ``.metadata``, which must answer, and match
the hash the page gives for it, where the page gives one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The index option devpi (>= 6.20) reads for a mirror, and the server option that makes
# devpi announce core metadata at all.
INDEX_OPTION = "mirror_provides_core_metadata"
SERVER_OPTION = "enable-core-metadata"
SINCE_DEVPI_SERVER = (6, 20, 0)
# PEP 714's name first; PEP 658's older name is still what some indexes write.
ATTRIBUTES = ("data-core-metadata", "data-dist-info-metadata")


@dataclass(frozen=True)
class MetadataCheck:
    """Whether an index serves core metadata, and what was seen."""

    served: bool | None  # None: not known (not measured, or the index did not answer)
    detail: str


NOT_MEASURED = MetadataCheck(None, "not measured (--no-check)")


def announcement(attrs: Mapping[str, str | None]) -> str | None:
    """The link's announcement of its metadata file ('true' or 'sha256=HEX'), or None."""
    for name in ATTRIBUTES:
        if name in attrs:
            value = (attrs[name] or "true").strip()
            return None if value.lower() == "false" else value
    return None


def announced_sha256(value: str | None) -> str | None:
    """The sha256 an announcement gives, or None ('true', another algorithm, nothing)."""
    algorithm, _, digest = (value or "").partition("=")
    return digest.strip().lower() if algorithm.strip().lower() == "sha256" and digest.strip() else None


def judge(wheel: str, announced: str | None, status: int, sha256: str | None) -> MetadataCheck:
    """The verdict on ``wheel``'s ``.metadata``, from its announcement, its HTTP status and the sha256 of its body.

    A file the page does not announce is no verdict on the others: an index that has
    ``.metadata`` for some files only, and announces none, was found in the wild, and
    devpi would then announce files that answer 404. So an unannounced file counts as not served.
    """
    if status != 200:
        return MetadataCheck(False, f"{wheel}.metadata answers HTTP {status}")
    if announced is None:
        return MetadataCheck(False, f"{wheel}.metadata answers, but its page does not announce it")
    expected = announced_sha256(announced)
    if expected is not None and expected != sha256:
        return MetadataCheck(False, f"{wheel}.metadata does not match the sha256 its page announces")
    how = "matches the announced sha256" if expected else "answers, as its page announces"
    return MetadataCheck(True, f"{wheel}.metadata {how}")


def supported_by(version: str) -> bool:
    """True when devpi-server ``version`` knows the server and index options."""
    try:
        parts = tuple(int(part) for part in version.split(".")[:3])
    except ValueError:
        return False
    return parts >= SINCE_DEVPI_SERVER
