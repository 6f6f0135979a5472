"""pipenv's part of pip-config: editing the Pipfile's sources without losing what is in it."""

from __future__ import annotations

import tomllib

import pytest

from devpictl.clientconfig import pipenv
from devpictl.errors import BadInput
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL

PIPFILE = """\
# my project
[[source]]
url = "https://pypi.example/simple"
verify_ssl = true
name = "pypi"  # the default

[packages]
requests = "*"
"""


class TestEditPipfile:
    def test_puts_its_source_first_keeping_everything_else(self):
        new = pipenv.edit_pipfile(PIPFILE, HTTP_URL)
        block = f'[[source]]\nname = "devpictl"\nurl = "{HTTP_URL}"\nverify_ssl = false\n\n'
        assert new == PIPFILE.replace("[[source]]\n", block + "[[source]]\n", 1)
        assert [s["name"] for s in tomllib.loads(new)["source"]] == ["devpictl", "pypi"]

    def test_replaces_its_own_source_in_place(self):
        once = pipenv.edit_pipfile(PIPFILE, HTTP_URL)
        again = pipenv.edit_pipfile(once, HTTPS_URL)
        assert again == once.replace(HTTP_URL, HTTPS_URL).replace("verify_ssl = false", "verify_ssl = true", 1)
        assert pipenv.edit_pipfile(again, HTTPS_URL) == again

    def test_moves_its_source_ahead_of_one_added_before_it(self):
        once = pipenv.edit_pipfile(PIPFILE, HTTPS_URL)
        other = '[[source]]\nname = "corp"\nurl = "https://corp.example/simple"\nverify_ssl = true\n\n'
        new = pipenv.edit_pipfile(other + once.split("\n", 1)[1], HTTPS_URL)
        assert [s["name"] for s in tomllib.loads(new)["source"]] == ["devpictl", "corp", "pypi"]

    def test_a_pipfile_without_sources(self):
        new = pipenv.edit_pipfile('[packages]\nrequests = "*"\n', HTTPS_URL)
        assert tomllib.loads(new) == {
            "packages": {"requests": "*"},
            "source": [{"name": "devpictl", "url": HTTPS_URL, "verify_ssl": True}],
        }

    def test_inline_array_is_refused_not_rewritten(self):
        with pytest.raises(BadInput, match=r"cannot change Pipfile without rewriting it .*inline array.*by hand"):
            pipenv.edit_pipfile('source = [{name = "a", url = "https://a.example/simple", verify_ssl = true}]\n', HTTP_URL)

    def test_invalid_toml_names_the_file(self):
        with pytest.raises(BadInput, match=r"^/p/Pipfile is not valid TOML"):
            pipenv.edit_pipfile("[[source]\n", HTTP_URL, where="/p/Pipfile")
