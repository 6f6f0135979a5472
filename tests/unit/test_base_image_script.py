"""tests/images/make-base-image.sh: the Debian mirror it finds in each apt layout, and its failures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.unit.apt_sources import DEB822, ONE_LINE

SCRIPT = Path(__file__).resolve().parents[1] / "images" / "make-base-image.sh"


def print_mirror(apt_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), "--print-mirror"],
        env={**os.environ, "APT_DIR": str(apt_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "mirror"),
    [
        pytest.param({"sources.list.d/debian.sources": DEB822}, "http://deb822.example/debian", id="deb822-only"),
        pytest.param({"sources.list": ONE_LINE}, "http://classic.example/debian", id="classic-only"),
        pytest.param(
            {"sources.list.d/extra.list": "deb https://list.example/ubuntu noble main\n"},
            "https://list.example/ubuntu",
            id="classic-in-sources.list.d",
        ),
        pytest.param(
            {"sources.list": ONE_LINE, "sources.list.d/debian.sources": DEB822},
            "http://classic.example/debian",
            id="both",
        ),
        pytest.param(
            {"sources.list.d/debian.sources": DEB822, "sources.list.d/off.list.disabled": "deb http://off.example/d x main\n"},
            "http://deb822.example/debian",
            id="disabled-files-ignored",
        ),
    ],
)
def test_finds_the_mirror_in_every_layout(tmp_path, files, mirror):
    result = print_mirror(apt_dir(tmp_path, files))
    assert result.returncode == 0, result.stderr
    assert result.stdout == mirror + "\n"


def test_prints_nothing_without_sources(tmp_path):
    result = print_mirror(apt_dir(tmp_path, {"sources.list.d/security.sources": "URIs: http://x.example/debian-security\n"}))
    assert (result.returncode, result.stdout) == (0, "")


def test_fails_with_a_message_when_no_mirror_is_found(tmp_path):
    # A docker that has no images, so the script gets as far as looking for a mirror.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    result = subprocess.run(
        ["bash", str(SCRIPT), "devpictl-test-base:none"],
        env={**os.environ, "APT_DIR": str(apt_dir(tmp_path, {})), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "make-base-image: no Debian mirror in" in result.stderr
    assert "set one up for apt first" in result.stderr
