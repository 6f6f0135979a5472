"""pdm's part of pip-config: editing its config.toml without losing what is in it."""

from __future__ import annotations

import tomllib

import pytest

from devpictl.clientconfig import pdm
from devpictl.errors import BadInput
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL

PDM_USER = """\
# pdm
check_update = false

[venv]
backend = "venv"  # keep
"""


class TestEditPdmToml:
    def test_adds_a_pypi_table(self):
        new, added = pdm.edit_toml(PDM_USER, HTTP_URL)
        assert new == PDM_USER + f'\n[pypi]\nurl = "{HTTP_URL}"\nverify_ssl = false\n'
        assert added == {"pypi.verify_ssl": {"was": None}}

    def test_sets_keys_in_the_existing_table_keeping_comments(self):
        old = '[pypi]\nurl = "https://old.example/simple"  # old\nverify_ssl = true\n\n[venv]\nbackend = "venv"\n'
        new, added = pdm.edit_toml(old, HTTP_URL)
        assert new == f'[pypi]\nurl = "{HTTP_URL}"  # old\nverify_ssl = false\n\n[venv]\nbackend = "venv"\n'
        # An https cache puts back what verify_ssl was before devpictl.
        newer, added = pdm.edit_toml(new, HTTPS_URL, added)
        assert newer == old.replace("https://old.example/simple", HTTPS_URL)
        assert added == {}

    def test_https_removes_the_verify_ssl_devpictl_added(self):
        first, added = pdm.edit_toml(PDM_USER, HTTP_URL)
        second, added = pdm.edit_toml(first, HTTPS_URL, added)
        assert second == PDM_USER + f'\n[pypi]\nurl = "{HTTPS_URL}"\n'

    def test_the_users_own_verify_ssl_false_stays(self):
        first, added = pdm.edit_toml("[pypi]\nverify_ssl = false\n", HTTP_URL)
        assert added == {}
        second, _ = pdm.edit_toml(first, HTTPS_URL, added)
        assert tomllib.loads(second)["pypi"]["verify_ssl"] is False

    def test_dotted_keys_stay_dotted(self):
        old = 'pypi.url = "https://old.example/simple"\ncheck_update = false\n\n[venv]\nbackend = "venv"\n'
        new, _ = pdm.edit_toml(old, HTTP_URL)
        assert new == f'pypi.url = "{HTTP_URL}"\npypi.verify_ssl = false\ncheck_update = false\n\n[venv]\nbackend = "venv"\n'

    def test_inline_table_is_refused(self):
        with pytest.raises(BadInput, match=r"cannot change config.toml without rewriting it .*pdm config pypi.url"):
            pdm.edit_toml('pypi = { url = "https://old.example/simple" }\n', HTTP_URL)
