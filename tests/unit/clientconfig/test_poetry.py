"""poetry's part of pip-config: editing pyproject.toml's sources without losing what is in it."""

from __future__ import annotations

import tomllib

from devpictl.clientconfig import poetry
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL

PYPROJECT = """\
[project]
name = "demo"  # the name
version = "0.1.0"
dependencies = [
    "requests",  # http
]

[[tool.poetry.source]]
name = "corp"
url = "https://corp.example/simple/"
priority = "supplemental"

[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"
"""


class TestEditPoetryPyproject:
    def test_appends_a_primary_source(self):
        new = poetry.edit_pyproject(PYPROJECT, HTTP_URL)
        block = f'[[tool.poetry.source]]\nname = "devpictl"\nurl = "{HTTP_URL}"\npriority = "primary"\n'
        assert new == PYPROJECT.replace("[build-system]", block + "\n[build-system]")
        sources = tomllib.loads(new)["tool"]["poetry"]["source"]
        assert [s["name"] for s in sources] == ["corp", "devpictl"]

    def test_replaces_its_own_source(self):
        once = poetry.edit_pyproject(PYPROJECT, HTTP_URL)
        assert poetry.edit_pyproject(once, HTTPS_URL) == once.replace(HTTP_URL, HTTPS_URL)
