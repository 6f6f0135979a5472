"""`devpictl export compose|k8s`: the manifests, checked offline (Kubernetes' own API schemas), and their secrets."""

from __future__ import annotations

import os
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


def test_k8s_secrets_are_0600_in_a_0700_directory(tmp_path):
    run("k8s", "-o", str(tmp_path))
    for name in (export.ROOT_PASSWORD, export.DEVPI_SECRET):
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


@pytest.mark.parametrize("target", ["compose", "k8s"])
def test_without_o_the_first_line_says_where(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    result = run(target)
    assert result.stdout.splitlines()[0] == f"Writing into the current directory, {tmp_path} (-o DIR writes elsewhere)"


@pytest.mark.parametrize("target", ["compose", "k8s"])
def test_a_git_work_trees_top_is_refused_without_force(tmp_path, monkeypatch, target):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")  # a worktree's .git is a file
    monkeypatch.chdir(repo)
    refused = runner.invoke(app, ["export", target])
    assert refused.exit_code == 4, refused.output
    assert "is the top of a git work tree" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in repo.iterdir()) == [".git"]
    run(target, "--force")
    assert (repo / "secrets").is_dir()


def test_a_symlinked_secrets_directory_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "etc"
    target.mkdir(mode=0o755)
    out = tmp_path / "out"
    out.mkdir()
    (out / "secrets").symlink_to(target)
    result = runner.invoke(app, ["export", "k8s", "-o", str(out)])
    assert result.exit_code == 4, result.output
    assert "is a symlink" in result.stderr
    assert list(target.iterdir()) == [] and stat.S_IMODE(target.stat().st_mode) == 0o755
    assert not (out / export.K8S_FILE).exists()


@pytest.mark.parametrize("planted", [export.ROOT_PASSWORD, export.DEVPI_SECRET, export.COMPOSE_FILE])
def test_a_symlinked_secret_or_manifest_is_refused(tmp_path, planted):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    (out / "secrets").mkdir(parents=True)
    (out / ("secrets/" + planted if planted != export.COMPOSE_FILE else planted)).symlink_to(victim)
    result = runner.invoke(app, ["export", "compose", "-o", str(out), "--force"])
    assert result.exit_code == 4, result.output
    assert "is a symlink" in result.stderr
    assert victim.read_text() == "keep me\n"


def test_a_symlink_planted_after_the_check_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "out" / "secrets").mkdir(parents=True)
    (tmp_path / "out" / "secrets" / export.ROOT_PASSWORD).symlink_to(victim)
    with pytest.raises(export.Conflict, match="is not a regular file"):
        export.ensure_secrets(tmp_path / "out", 0o600)
    assert victim.read_text() == "keep me\n"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "secrets").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(export.Conflict, match="is not a directory of yours"):
        export.ensure_secrets(tmp_path / "out2", 0o600)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user takes root")
def test_a_directory_of_another_user_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, 12345, 12345)
    result = runner.invoke(app, ["export", "k8s", "-o", str(out)])
    assert result.exit_code == 4, result.output
    assert "belongs to another user (uid 12345)" in result.stderr
    assert list(out.iterdir()) == []


def test_values_are_yaml_strings_whatever_they_hold(tmp_path, monkeypatch):
    """The serializer holds even for a value the checks let through, or one they never saw."""
    evil = "1Gi\n  evil: x"
    docs = [d for d in yaml.safe_load_all(export.render_k8s(export.ExportOptions(tmp_path, image="a\nb: c", storage=evil))) if d]
    claims = [d["spec"]["volumeClaimTemplates"][0] for d in docs if d["kind"] == "StatefulSet"]
    assert [c["spec"]["resources"]["requests"] for c in claims] == [{"storage": evil}, {"storage": evil}]
    assert {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs if d["kind"] == "StatefulSet"} == {"a\nb: c"}
    monkeypatch.setenv("DEVPICTL_LABELS", 'team=a"b\nx: y')
    [doc] = [d for d in yaml.safe_load_all(export.render_compose(export.ExportOptions(tmp_path, image="i", networks=("n: x",)))) if d]
    assert doc["services"]["front"]["labels"] == {"team": 'a"b\nx: y'}
    assert list(doc["networks"]) == ["n: x"] and "x" not in doc


def test_a_name_yaml_reads_as_a_boolean_stays_a_string(tmp_path):
    run("k8s", "-o", str(tmp_path), "--name", "yes")
    docs = documents(tmp_path / export.K8S_FILE)
    assert {d["metadata"]["labels"]["app.kubernetes.io/name"] for d in docs} == {"yes"}
    for doc in docs:
        kubernetes_validate.validate(doc, export.K8S_NEWEST, strict=True)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["k8s", "--storage", "1Gi\n  evil: x"], "--storage '1Gi\\n  evil: x' is not a Kubernetes quantity"),
        (["k8s", "--storage", "nan"], "--storage 'nan' is not a Kubernetes quantity"),
        (["k8s", "--storage", "0"], "is not a Kubernetes quantity"),
        (["compose", "--image", "devpi:1\n    privileged: true"], "is not an image reference"),
        (["compose", "--network", "a b"], "--network 'a b' is not a Docker network's name"),
        (["compose", "--port", "0"], "port 0 is out of range"),
        (["compose", "--port", "65536"], "port 65536 is out of range"),
    ],
)
def test_values_the_manifests_cannot_hold_are_refused(tmp_path, args, fragment):
    result = runner.invoke(app, ["export", *args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert not (tmp_path / "out").exists()


def test_image_references_the_engine_takes_pass(tmp_path):
    for image in ("devpi", "registry.example:5000/team/devpi:6.20.3", "localhost/devpi@sha256:" + "a" * 64, "ghcr.io/o/devpi-server:1_2"):
        export.check_options(export.ExportOptions(tmp_path, image=image))


def test_compose_carries_https_and_read_auth(tmp_path):
    result = run("compose", "-o", str(tmp_path), "--replicas", "2", "--tls", "self-signed", "--tls-name", "cache.lan", "--read-auth")
    [doc] = documents(tmp_path / export.COMPOSE_FILE)
    front = doc["services"]["front"]
    assert front["environment"]["DEVPICTL_TLS"] == "redirect"
    assert front["environment"]["DEVPICTL_TLS_KEY_FILE"] == "/run/secrets/tls-key"
    assert front["secrets"] == ["tls-cert", "tls-key"]
    for service in ("primary", "replica-1", "replica-2"):
        assert doc["services"][service]["environment"]["DEVPICTL_READ_AUTH"] == "1"
        assert "DEVPICTL_TLS" not in doc["services"][service]["environment"]  # HTTPS ends at the front
    key = (tmp_path / "secrets" / export.TLS_KEY).read_bytes()
    assert b"PRIVATE KEY" in key and key.decode() not in (tmp_path / export.COMPOSE_FILE).read_text()
    assert (tmp_path / "secrets" / export.TLS_CA).is_file() and "https://127.0.0.1:3141/" in result.output


@pytest.mark.parametrize("version", [export.K8S_OLDEST, export.K8S_NEWEST])
def test_k8s_replicas_serve_https_and_every_pod_needs_a_login(tmp_path, version):
    from devpictl import certificates

    ca, ca_key = certificates.make_ca("test")
    certificate = certificates.issue(ca, ca_key, ["devpi.example"])
    (tmp_path / "c.pem").write_bytes(certificate.chain_pem)
    (tmp_path / "k.pem").write_bytes(certificate.key_pem)
    out = tmp_path / "out"
    result = run("k8s", "-o", str(out), "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem"), "--read-auth")
    assert "--from-file=tls-key=secrets/tls-key" in result.output
    primary, _, replicas, _ = docs = documents(out / export.K8S_FILE)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    replica = replicas["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in replica["env"]}
    assert env["DEVPICTL_TLS"] == "redirect" and env["DEVPICTL_READ_AUTH"] == "1"
    assert replica["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    items = replicas["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"]
    assert {"key": "tls-key", "path": "tls-key"} in items
    primary_env = {e["name"]: e["value"] for e in primary["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert primary_env["DEVPICTL_READ_AUTH"] == "1" and "DEVPICTL_TLS" not in primary_env
    assert (out / "secrets" / export.TLS_KEY).read_bytes() == certificate.key_pem
    assert not (out / "secrets" / export.TLS_CA).exists()  # the user's CA is theirs to hand out


def test_a_certificate_for_another_name_is_refused_before_anything_is_written(tmp_path):
    from devpictl import certificates

    ca, ca_key = certificates.make_ca("test")
    certificate = certificates.issue(ca, ca_key, ["devpi.example"])
    (tmp_path / "c.pem").write_bytes(certificate.chain_pem)
    (tmp_path / "k.pem").write_bytes(certificate.key_pem)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "export",
            "compose",
            "-o",
            str(out),
            "--tls-cert",
            str(tmp_path / "c.pem"),
            "--tls-key",
            str(tmp_path / "k.pem"),
            "--tls-name",
            "other.example",
        ],
    )
    assert result.exit_code == 2 and "not valid for other.example" in result.output
    assert not out.exists()
