"""--apt-mirror: the catalog, the URL check, and the script that points a build's apt at the mirror."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devpictl import image as img
from devpictl.errors import MalformedURL, UnknownMirror
from devpictl.mirrors import APT_CATALOG, resolve_apt_mirror
from tests.unit.apt_sources import DEB822, ONE_LINE

SCRIPT = img.template_dir() / "apt-mirror.sh"
MIRROR = "https://apt.example/debian"


class TestResolve:
    def test_names_and_urls(self):
        assert resolve_apt_mirror("TUNA") == APT_CATALOG["tuna"]
        assert resolve_apt_mirror("https://apt.example/debian/") == MIRROR

    @pytest.mark.parametrize("spec", ["https://apt.example/ubuntu", "https://apt.example/debian?x=1", "ftp://apt.example/debian"])
    def test_not_a_debian_archive(self, spec):
        with pytest.raises(MalformedURL):
            resolve_apt_mirror(spec)

    def test_unknown_name_lists_the_catalog(self):
        with pytest.raises(UnknownMirror, match="use one of tuna, ustc"):
            resolve_apt_mirror("nosuch")


class TestBuild:
    def test_dockerfile_runs_the_script_before_apt(self):
        text = img.render_dockerfile(img.BuildOptions(apt_mirror=MIRROR))
        assert f"/usr/local/lib/devpictl/apt-mirror.sh '{MIRROR}' && apt-get update" in text
        assert "apt-mirror" not in img.render_dockerfile(img.BuildOptions())

    def test_context_carries_the_script(self):
        import tarfile

        with tarfile.open(fileobj=img.build_context(img.BuildOptions(apt_mirror=MIRROR))) as tar:
            assert tar.getmember("apt-mirror.sh").mode == 0o755

    def test_the_label_names_the_mirror(self):
        assert img.recipe_labels(img.BuildOptions(apt_mirror=MIRROR))[img.LABEL_APT_MIRROR] == MIRROR


def point(tmp_path: Path, files: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (apt / name).write_text(text)
    result = subprocess.run(["sh", str(SCRIPT), MIRROR + "/"], env={**os.environ, "APT_DIR": str(apt)}, capture_output=True, text=True)
    return result, apt


class TestScript:
    def test_deb822(self, tmp_path):
        result, apt = point(tmp_path, {"sources.list.d/debian.sources": DEB822})
        assert result.returncode == 0, result.stderr
        text = (apt / "sources.list.d/debian.sources").read_text()
        # Every Debian URI is the mirror's; a commented one too, which apt ignores anyway.
        assert text == DEB822.replace("http://deb822.example/debian", MIRROR).replace("http://snapshot.example/archive/debian", MIRROR)

    def test_one_line_lists(self, tmp_path):
        result, apt = point(tmp_path, {"sources.list": ONE_LINE})
        assert result.returncode == 0, result.stderr
        assert (apt / "sources.list").read_text() == (
            f"deb {MIRROR}-security bookworm-security main\n"
            f"# deb {MIRROR} bookworm main\n"
            f"deb [arch=amd64 signed-by=/usr/share/keyrings/debian.gpg] {MIRROR} bookworm main\n"
            "deb https://other.example/ubuntu noble main\n"
        )

    def test_fails_when_there_is_nothing_to_point(self, tmp_path):
        result, _ = point(tmp_path, {"sources.list.d/other.list": "deb https://other.example/ubuntu noble main\n"})
        assert result.returncode == 1
        assert "apt-mirror: no Debian source in" in result.stderr


def test_mirrors_names_the_apt_catalog():
    from typer.testing import CliRunner

    from devpictl.cli import app

    result = CliRunner().invoke(app, ["mirrors"])
    assert result.exit_code == 0, result.output
    assert f"(--apt-mirror): {', '.join(APT_CATALOG)}, or a URL ending in /debian" in result.stdout
