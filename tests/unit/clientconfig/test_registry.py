"""The installers pip-config knows: their environment variables, and --tool's list."""

from __future__ import annotations

import pytest

from devpictl.clientconfig import registry
from devpictl.errors import BadInput
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL


class TestEnvironment:
    def test_http(self):
        assert registry.get("pip").env_vars(HTTP_URL) == {"PIP_INDEX_URL": HTTP_URL, "PIP_TRUSTED_HOST": "127.0.0.1"}
        assert registry.get("uv").env_vars(HTTP_URL) == {"UV_DEFAULT_INDEX": HTTP_URL}
        assert registry.get("pdm").env_vars(HTTP_URL) == {"PDM_PYPI_URL": HTTP_URL, "PDM_PYPI_VERIFY_SSL": "false"}
        assert registry.get("poetry").env_vars(HTTP_URL) == {}
        assert registry.get("pipenv").env_vars(HTTP_URL) == {"PIPENV_PYPI_MIRROR": HTTP_URL}

    def test_https_gets_no_exceptions(self):
        for tool in registry.TOOLS:
            assert not any("TRUSTED" in k or "VERIFY" in k or "INSECURE" in k for k in registry.get(tool).env_vars(HTTPS_URL))

    def test_parse_tools(self):
        assert registry.parse_tools(None) == ("pip",)
        assert registry.parse_tools(["uv,pip", "PDM", "uv"]) == ("uv", "pip", "pdm")
        with pytest.raises(BadInput, match="unknown tool 'conda': use pip, uv, pdm, poetry"):
            registry.parse_tools(["pip,conda"])
