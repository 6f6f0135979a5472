"""The lock files `warm` reads (uv.lock, pylock.toml, poetry.lock, pdm.lock): the pinned files and their hashes."""

from __future__ import annotations

import hashlib

import pytest

from devpictl import lockfiles
from devpictl.errors import BadInput

SHA_WHEEL = hashlib.sha256(b"wheel bytes" * 100).hexdigest()
SHA_SDIST = hashlib.sha256(b"sdist bytes").hexdigest()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


class TestLockFiles:
    def test_uv_lock(self, tmp_path):
        path = write(
            tmp_path,
            "uv.lock",
            f"""
version = 1
[[package]]
name = "demo"
version = "0.1"
source = {{ editable = "." }}

[[package]]
name = "Six"
version = "1.16.0"
source = {{ registry = "https://index.example/simple" }}
sdist = {{ url = "https://files.example/six-1.16.0.tar.gz", hash = "sha256:{SHA_SDIST}", size = 11 }}
wheels = [{{ url = "https://files.example/six-1.16.0-py2.py3-none-any.whl", hash = "sha256:{SHA_WHEEL}", size = 1100 }}]
""",
        )
        assert lockfiles.read_lock(path) == [
            lockfiles.Pin(
                "six",
                "1.16.0",
                frozenset({"six-1.16.0.tar.gz", "six-1.16.0-py2.py3-none-any.whl"}),
                frozenset({SHA_SDIST, SHA_WHEEL}),
            )
        ]

    def test_pylock(self, tmp_path):
        path = write(
            tmp_path,
            "pylock.toml",
            f"""
lock-version = "1.0"
created-by = "test"
[[packages]]
name = "six"
version = "1.16.0"
wheels = [{{ name = "six-1.16.0-py2.py3-none-any.whl", url = "https://files.example/six.whl", hashes = {{ sha256 = "{SHA_WHEEL}" }} }}]
[[packages]]
name = "local"
directory = {{ path = "." }}
""",
        )
        assert lockfiles.read_lock(path) == [
            lockfiles.Pin("six", "1.16.0", frozenset({"six-1.16.0-py2.py3-none-any.whl"}), frozenset({SHA_WHEEL}))
        ]

    @pytest.mark.parametrize("name", ["poetry.lock", "pdm.lock"])
    def test_poetry_and_pdm(self, tmp_path, name):
        path = write(
            tmp_path,
            name,
            f"""
[[package]]
name = "six"
version = "1.16.0"
files = [{{ file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:{SHA_WHEEL}" }}]

[[package]]
name = "mine"
version = "0.1"
[package.source]
type = "git"
url = "https://git.example/mine.git"
""",
        )
        assert lockfiles.read_lock(path) == [
            lockfiles.Pin("six", "1.16.0", frozenset({"six-1.16.0-py2.py3-none-any.whl"}), frozenset({SHA_WHEEL}))
        ]

    def test_bad_lock_is_one_clear_error(self, tmp_path):
        with pytest.raises(BadInput, match="uv.lock is not valid TOML"):
            lockfiles.read_lock(write(tmp_path, "uv.lock", "[[package]\n"))
        with pytest.raises(BadInput, match="does not look like a poetry.lock lock"):
            lockfiles.read_lock(write(tmp_path, "poetry.lock", "[[package]]\nversion = '1'\n"))

    def test_a_requirements_file_is_not_a_lock(self, tmp_path):
        assert lockfiles.lock_reader(tmp_path / "requirements.txt") is None
        assert lockfiles.lock_reader(tmp_path / "pylock.dev.toml") is lockfiles.read_pylock
