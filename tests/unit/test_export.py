"""`devpictl export compose|k8s`: the manifests, checked offline (Kubernetes' own API schemas), and their secrets."""

from __future__ import annotations

import stat

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from devpictl import export
from devpictl.cli import app
from devpictl.mirrors import CATALOG

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 0, result.output
    return result


def documents(path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("version", [export.K8S_OLDEST, export.K8S_NEWEST])
def test_k8s_manifests_pass_the_api_schemas(tmp_path, version):
    run("k8s", "-o", str(tmp_path), "--replicas", "3", "--mirror", "tuna", "--image", "registry.example/devpi:6.20.3")
    docs = documents(tmp_path / export.K8S_FILE)
    assert [d["kind"] for d in docs] == ["StatefulSet", "Service", "StatefulSet", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_k8s_takes_the_passwords_from_a_secret_never_inline(tmp_path):
    run("k8s", "-o", str(tmp_path))
    text = (tmp_path / export.K8S_FILE).read_text()
    for name in (export.ROOT_PASSWORD, export.DEVPI_SECRET):
        assert (tmp_path / "secrets" / name).read_text().strip() not in text
    primary, _, replicas, service = documents(tmp_path / export.K8S_FILE)
    assert "Secret" not in [d["kind"] for d in documents(tmp_path / export.K8S_FILE)]
    pod = primary["spec"]["template"]["spec"]
    assert pod["volumes"][0]["secret"]["secretName"] == "devpi-secrets"
    # a replica gets the shared devpi secret only, never root's password
    assert replicas["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"] == [{"key": "devpi-secret", "path": "devpi-secret"}]
    env = {e["name"]: e["value"] for e in replicas["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DEVPICTL_PRIMARY_URL"] == "http://devpi-primary:3141"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "replica"  # installers go to the replicas
    for doc in (primary, replicas):
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/+api"
        assert container["livenessProbe"]["httpGet"]["path"] == "/+api"
        assert doc["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_compose_has_a_primary_replicas_and_a_front(tmp_path):
    run("compose", "-o", str(tmp_path), "--replicas", "3", "--mirror", "tuna", "--port", "4000")
    [doc] = documents(tmp_path / export.COMPOSE_FILE)
    assert sorted(doc["services"]) == ["front", "primary", "replica-1", "replica-2", "replica-3"]
    assert doc["services"]["primary"]["environment"]["DEVPICTL_MIRROR_URL"] == CATALOG["tuna"].url
    assert doc["services"]["front"]["environment"]["DEVPICTL_BALANCE"] == "replica-1:3141 replica-2:3141 replica-3:3141"
    assert doc["services"]["front"]["ports"] == ["127.0.0.1:4000:3141"]
    assert doc["services"]["replica-1"]["secrets"] == ["devpi-secret"]
    text = (tmp_path / export.COMPOSE_FILE).read_text()
    for name in (export.ROOT_PASSWORD, export.DEVPI_SECRET):
        secret = tmp_path / "secrets" / name
        assert secret.read_text().strip() not in text
        # readable by devpi's user through compose's bind mount; the directory keeps others out
        assert stat.S_IMODE(secret.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_a_second_export_keeps_the_secrets_and_asks_before_replacing(tmp_path):
    run("compose", "-o", str(tmp_path))
    before = (tmp_path / "secrets" / export.ROOT_PASSWORD).read_text()
    again = runner.invoke(app, ["export", "compose", "-o", str(tmp_path)])
    assert again.exit_code == 4 and "pass --force" in again.stderr
    run("compose", "-o", str(tmp_path), "--force", "--replicas", "1")
    assert (tmp_path / "secrets" / export.ROOT_PASSWORD).read_text() == before
