"""`devpictl build` through CliRunner (devpictl/cli/build.py): what --print shows."""

from __future__ import annotations

from tests.unit.clihelp import invoke

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


class TestBuildPrint:
    def test_prints_the_dockerfile_without_the_engine(self, engine_calls):
        result = invoke("build", "--print", "--base-image", "registry.local/python:3.11")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("# Rendered by devpictl")
        lines = result.stdout.splitlines()
        assert "FROM registry.local/python:3.11 AS install" in lines
        assert "FROM registry.local/python:3.11" in lines
        assert engine_calls == []

    def test_pip_mirror_and_web(self):
        result = invoke("build", "--print", "--pip-mirror", "tuna", "--web")
        assert result.exit_code == 0, result.output
        assert "--index-url https://pypi.tuna.tsinghua.edu.cn/simple" in result.stdout
        assert "'devpi-web==5.1.1'" in result.stdout

    def test_base_image_from_the_environment(self):
        result = invoke("build", "--print", env={"DEVPICTL_BASE_IMAGE": "envbase:1"})
        assert "FROM envbase:1 AS install" in result.stdout

    def test_labels_from_the_environment_are_checked(self):
        result = invoke("build", "--print", env={"DEVPICTL_LABELS": "team=ci"})
        assert result.exit_code == 0, result.output
        result = invoke("build", "--print", env={"DEVPICTL_LABELS": "teamci"})
        assert result.exit_code == 2, result.output

    def test_wheelhouse_and_ca_bundle(self, tmp_path):
        wheels = tmp_path / "wheels"
        wheels.mkdir()
        (wheels / "devpi_server-6.20.3-py3-none-any.whl").write_bytes(b"x")
        ca = tmp_path / "ca.pem"
        ca.write_text(PEM)
        result = invoke("build", "--print", "--wheelhouse", str(wheels), "--ca-bundle", str(ca))
        assert result.exit_code == 0, result.output
        assert "--no-index --find-links /tmp/devpictl/wheelhouse" in result.stdout
        assert "ENV PIP_CERT=/tmp/devpictl/ca-bundle.pem" in result.stdout
