"""HTTPS and a login to read (`up --tls self-signed --read-auth`) on a real cache: pip and uv through
https:// with what `pip-config --write` made, no trusted-host; anonymous readers refused.

One cache serves the whole module (CI time is tight); the tests run in order.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import time

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    TRUST_ENV,
    cache_env,
    configured_installer_env,
    configured_pip,
    installer_env,
    one_error_line,
    pip_command,
    remove_cache,
    run_cli,
    up_answer,
)

NAME = f"tls{RUN_ID}"
TLS_NAME = "cache.test"
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data-tls")
    home = tmp_path_factory.mktemp("home-tls")
    env = {
        **cache_env(NAME, data_dir, devpi_image),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "USER": "alice",
        "LOGNAME": "alice",
    }
    try:
        answer = up_answer(env, test_upstream, "--tls", "self-signed", "--tls-name", TLS_NAME, "--read-auth")
        base = answer["index_url"].removesuffix("/root/pypi/+simple/")
        state = data_dir / "caches" / NAME
        yield {
            "env": env,
            "home": home,
            "answer": answer,
            "base": base,
            "index_url": answer["index_url"],
            "ca": state / "tls" / "ca.pem",
            "trust": state / "tls" / "trust.pem",
            "root_password": (state / "root-password").read_text().strip(),
        }
    finally:
        remove_cache(engine, NAME, env)


def trusting(cache) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cache["ca"]))


def test_up_serves_https_on_its_port_and_plain_http_is_redirected(cache):
    assert cache["index_url"].startswith("https://127.0.0.1:")
    plain = httpx.get(cache["base"].replace("https://", "http://") + "/+api", trust_env=False, timeout=30)
    assert plain.status_code == 308
    assert plain.headers["location"] == cache["base"] + "/+api"
    answer = httpx.get(cache["base"] + "/+api", headers=JSON, verify=trusting(cache), trust_env=False, timeout=30)
    assert answer.status_code == 200  # open to all: the health check and logging in need it


def test_the_certificate_names_what_was_asked_and_curl_without_the_ca_fails(cache):
    from cryptography import x509

    served = x509.load_pem_x509_certificates((cache["ca"].parent / "served.pem").read_bytes())[0]
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert TLS_NAME in names
    url = cache["base"] + "/+api"
    without = subprocess.run(["curl", "-sS", "-o", "/dev/null", url], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert without.returncode == 60, without.stderr  # curl: the peer's certificate is not trusted
    with_ca = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--cacert", str(cache["ca"]), url], capture_output=True, text=True)
    assert with_ca.returncode == 0, with_ca.stderr


def test_anonymous_readers_get_401_and_metrics_stay_closed(cache, tmp_path):
    anonymous = subprocess.run(
        pip_command(
            # -vv: pip tells of the answer (401) only among its debug lines
            cache["index_url"],
            "download",
            "-vv",
            "--no-deps",
            "--no-input",
            "-d",
            str(tmp_path / "dl"),
            "--cert",
            str(cache["trust"]),
            "six",
        ),
        capture_output=True,
        text=True,
        env={k: v for k, v in installer_env(tmp_path).items() if k not in TRUST_ENV},
        timeout=300,
    )
    assert anonymous.returncode != 0
    assert "401 Client Error" in anonymous.stdout + anonymous.stderr, anonymous.stdout + anonymous.stderr
    for path in ("/+devpictl/metrics", "/+status", "/root/pypi/+simple/six/", "/", "/+devpictl/"):
        answer = httpx.get(cache["base"] + path, headers=JSON, verify=trusting(cache), trust_env=False, timeout=30)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith("Basic")
    root = ("root", cache["root_password"])
    metrics = httpx.get(cache["base"] + "/+devpictl/metrics", auth=root, verify=trusting(cache), trust_env=False, timeout=30)
    assert metrics.status_code == 200 and "devpictl_requests_total" in metrics.text
    wrong = httpx.get(cache["base"] + "/+status", auth=("root", "wrong"), headers=JSON, verify=trusting(cache), trust_env=False, timeout=30)
    assert wrong.status_code == 401


def test_pip_config_writes_https_the_ca_and_a_login_0600_never_printed(cache):
    result = run_cli("pip-config", "--tool", "pip,uv", "--write", env=cache["env"])
    assert result.exit_code == 0, result.output
    pip_conf = cache["home"] / ".config" / "pip" / "pip.conf"
    text = pip_conf.read_text()
    assert "index-url = https://pip-alice:" in text
    assert "trusted-host" not in text
    assert f"cert = {cache['trust']}" in text
    password = text.split("https://pip-alice:")[1].split("@")[0]
    assert password and password not in result.output
    assert "SSL_CERT_FILE" in result.output  # uv reads its CA from the environment only
    for path in (pip_conf, cache["home"] / ".config" / "uv" / "uv.toml"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    shown = run_cli("pip-config", "--tool", "pip,uv", "--json", env=cache["env"])
    assert shown.exit_code == 0 and password not in shown.output


def test_pip_and_uv_install_through_https_with_the_written_config(cache, tmp_path):
    env = configured_installer_env(tmp_path, cache["home"])
    pip = configured_pip(env, "install", "--no-deps", "--target", str(tmp_path / "pip"), "six")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (tmp_path / "pip" / "six.py").is_file()
    downloaded = configured_pip(env, "download", "--no-deps", "-d", str(tmp_path / "dl"), "six")
    assert downloaded.returncode == 0, downloaded.stdout + downloaded.stderr  # the configured login reads
    shell = run_cli("pip-config", "--tool", "uv", "--shell", env=cache["env"])
    assert shell.exit_code == 2  # it would print the password
    import uv

    uv_env = {**env, "SSL_CERT_FILE": str(cache["trust"])}  # what the note of pip-config says
    done = subprocess.run(
        [uv.find_uv_bin(), "pip", "install", "--no-deps", "--target", str(tmp_path / "uv"), "six"],
        capture_output=True,
        text=True,
        env=uv_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "uv" / "six.py").is_file()


def test_warm_resolves_a_requirements_file_with_pip_through_the_login(cache, tmp_path):
    # pip gets the login in its environment (PIP_INDEX_URL); without it the cache answers pip 401 and warm fails (exit 2).
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("dpctl-util==1.0\n")
    result = run_cli("warm", str(requirements), "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["packages"] == 1 and report["stored"] + report["present"] == 1, report
    assert cache["root_password"] not in result.output


def test_status_shows_the_expiry_and_the_health_check_passes(cache, engine):
    result = run_cli("status", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["https"] == "redirect" and status["read_auth"] is True
    assert status["certificate_expires"][:4].isdigit() and status["upstream_name"] is not None
    container = engine.containers.get(f"devpictl-{NAME}")
    for _ in range(60):
        container.reload()
        if container.attrs["State"]["Health"]["Status"] == "healthy":
            break
        time.sleep(1)
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    inspected = json.dumps(container.attrs)
    assert "PRIVATE KEY" not in inspected and cache["root_password"] not in inspected


def test_a_certificate_for_another_name_is_one_line_and_changes_nothing(cache, tmp_path):
    from devpictl import certificates

    ca, ca_key = certificates.make_ca("other")
    other = certificates.issue(ca, ca_key, ["elsewhere.test"])
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(other.chain_pem)
    key.write_bytes(other.key_pem)
    served = (cache["ca"].parent / "served.pem").read_bytes()
    result = run_cli("up", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-name", TLS_NAME, env=cache["env"])
    assert result.exit_code == 2
    assert "not valid for cache.test" in one_error_line(result)
    assert (cache["ca"].parent / "served.pem").read_bytes() == served
