"""devpictl/tls.py: certificates made and checked before anything changes, renewal, devpictl's pinned trust."""

from __future__ import annotations

import datetime
import ssl
import stat

import pytest

from devpictl import certificates, precedence, tls
from devpictl.clientconfig.base import IndexURL, hide_passwords
from devpictl.clientconfig.pip import edit_conf
from devpictl.clientconfig.uv import Uv
from devpictl.errors import BadInput
from devpictl.settings import Instance


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVPICTL_DATA_DIR", str(tmp_path / "data"))
    return Instance("default")


def write_pair(tmp_path, certificate: certificates.ServerCertificate, key_pem: bytes | None = None):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(certificate.chain_pem)
    key.write_bytes(key_pem if key_pem is not None else certificate.key_pem)
    return cert, key


def certificate_for(*names: str) -> certificates.ServerCertificate:
    ca, ca_key = certificates.make_ca("test")
    return certificates.issue(ca, ca_key, list(names))


class TestSelfSigned:
    def test_names_given_then_this_machine_and_loopback(self, monkeypatch):
        monkeypatch.setattr(certificates.socket, "gethostname", lambda: "build-7")
        assert certificates.server_names(["Cache.LAN."], "0.0.0.0") == ["cache.lan", "build-7", "localhost", "127.0.0.1", "::1"]
        assert certificates.server_names([], "192.168.1.5")[0] == "192.168.1.5"

    def test_the_ca_key_is_private_and_kept_for_renewal(self, instance):
        first = tls.self_signed(instance, ["cache.lan", "127.0.0.1"])
        assert stat.S_IMODE(tls.ca_key_file(instance).stat().st_mode) == 0o600
        again = tls.self_signed(instance, ["cache.lan"])
        assert first.chain_pem.endswith(tls.ca_file(instance).read_bytes())
        assert again.chain_pem.endswith(tls.ca_file(instance).read_bytes())  # the same CA signs the new one

    def test_renewed_near_its_end_or_for_a_new_name(self, instance, monkeypatch):
        certificate = tls.self_signed(instance, ["cache.lan"])
        tls.keep_served(instance, certificate, self_signed=True)
        assert not tls.needs_renewal(instance, ["cache.lan"])
        assert tls.needs_renewal(instance, ["cache.lan", "other.lan"])
        later = tls.now() + datetime.timedelta(days=certificates.SERVER_DAYS) - tls.RENEW_WITHIN + datetime.timedelta(days=1)
        monkeypatch.setattr(tls, "now", lambda: later)
        assert tls.needs_renewal(instance, ["cache.lan"])

    def test_a_certificate_given_before_is_replaced_by_a_self_signed_one(self, instance):
        tls.ensure_ca(instance)
        tls.keep_served(instance, certificate_for("cache.lan"), self_signed=False)  # another CA's
        assert tls.needs_renewal(instance, ["cache.lan"])

    def test_the_trust_bundle_holds_the_ca_and_this_machines(self, instance, tmp_path, monkeypatch):
        system = tmp_path / "system.pem"
        system.write_text("-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n")
        monkeypatch.setenv("SSL_CERT_FILE", str(system))
        tls.keep_served(instance, tls.self_signed(instance, ["cache.lan"]), self_signed=True)
        bundle = tls.trust_bundle_file(instance).read_bytes()
        assert bundle.startswith(tls.ca_file(instance).read_bytes()) and b"SYSTEM" in bundle


class TestGivenCertificate:
    def test_a_matching_pair_for_the_names(self, tmp_path):
        certificate = certificate_for("cache.lan", "10.0.0.2")
        cert, key = write_pair(tmp_path, certificate)
        assert certificates.given_certificate(cert, key, ["cache.lan", "10.0.0.2"]).not_after == certificate.not_after

    def test_a_key_of_another_certificate(self, tmp_path):
        cert, key = write_pair(tmp_path, certificate_for("cache.lan"), certificate_for("cache.lan").key_pem)
        with pytest.raises(BadInput, match="is not the key of --tls-cert"):
            certificates.given_certificate(cert, key, [])

    def test_another_name(self, tmp_path):
        cert, key = write_pair(tmp_path, certificate_for("cache.lan"))
        with pytest.raises(BadInput, match="not valid for other.lan"):
            certificates.given_certificate(cert, key, ["other.lan"])

    def test_a_wildcard_covers_one_label(self, tmp_path):
        cert, key = write_pair(tmp_path, certificate_for("*.lan.example"))
        certificates.given_certificate(cert, key, ["cache.lan.example"])
        with pytest.raises(BadInput):
            certificates.given_certificate(cert, key, ["a.cache.lan.example"])

    def test_an_expired_certificate(self, tmp_path, monkeypatch):
        cert, key = write_pair(tmp_path, certificate_for("cache.lan"))
        monkeypatch.setattr(certificates, "now", lambda: datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC))
        with pytest.raises(BadInput, match="expired on"):
            certificates.given_certificate(cert, key, [])

    def test_not_pem(self, tmp_path):
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_text("hello")
        key.write_text("hello")
        with pytest.raises(BadInput, match="holds no PEM certificate"):
            certificates.given_certificate(cert, key, [])


class TestSettings:
    def test_cert_and_key_go_together(self, instance):
        with pytest.raises(BadInput, match="go together"):
            precedence.ask(instance, tls_cert=instance.state_dir / "c.pem")

    def test_a_given_certificate_is_its_own_mode(self, instance, tmp_path):
        asked = precedence.ask(instance, tls_cert=tmp_path / "c", tls_key=tmp_path / "k")
        assert asked.tls == tls.GIVEN and "tls" in asked.asked
        with pytest.raises(BadInput, match="drop --tls"):
            precedence.ask(instance, tls="self-signed", tls_cert=tmp_path / "c", tls_key=tmp_path / "k")

    @pytest.mark.parametrize(("key", "value", "says"), [("tls", "on", "--tls 'on'"), ("http", "drop", "--http 'drop'")])
    def test_unknown_choices(self, instance, key, value, says):
        with pytest.raises(BadInput, match=says):
            precedence.ask(instance, **{key: value})

    def test_https_needs_the_front_server(self, instance):
        with pytest.raises(BadInput, match="front server"):
            tls.prepare(precedence.ask(instance, tls="self-signed", front=False))

    def test_remembered_and_read_back(self, instance):
        settings = precedence.ask(instance, tls="self-signed", tls_names=["cache.lan"], http="refuse", read_auth=True)
        precedence.remember(settings)
        stored = precedence.load_remembered(instance)
        assert (stored["tls"], stored["tls_names"], stored["http"], stored["read_auth"]) == ("self-signed", ("cache.lan",), "refuse", True)


class TestDevpictlsOwnTrust:
    def test_the_served_chain_is_pinned_whatever_its_names(self, instance):
        certificate = tls.self_signed(instance, ["cache.lan"])
        tls.keep_served(instance, certificate, self_signed=True)
        context = tls.local_context(instance)
        assert context.verify_mode == ssl.CERT_REQUIRED and not context.check_hostname
        assert context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
        assert context.cert_store_stats()["x509"] == 2  # the server's and its CA, nothing of the system's

    def test_without_a_kept_certificate_it_says_what_to_do(self, instance):
        with pytest.raises(BadInput, match="devpictl up"):
            tls.local_context(instance)


class TestInstallers:
    def test_pip_gets_cert_and_no_trusted_host_and_loses_only_its_own_cert(self):
        url = IndexURL("https://127.0.0.1:3141/root/pypi/+simple/", "/x/trust.pem")
        text, added = edit_conf("", url)
        assert "cert = /x/trust.pem" in text and "trusted-host" not in text
        assert added == {"cert": "/x/trust.pem"}
        back, added = edit_conf(text, "http://127.0.0.1:3141/root/pypi/+simple/", added)
        assert "cert" not in back and "cert" not in added
        mine, _ = edit_conf("[global]\ncert = /mine.pem\n", "http://127.0.0.1:3141/root/pypi/+simple/", {"cert": "/x/trust.pem"})
        assert "cert = /mine.pem" in mine

    def test_uv_is_told_of_ssl_cert_file(self):
        url = IndexURL("https://127.0.0.1:3141/root/pypi/+simple/", "/x/trust.pem")
        assert Uv().env_vars(url)["SSL_CERT_FILE"] == "/x/trust.pem"
        assert "SSL_CERT_FILE=/x/trust.pem" in (Uv().trust_note(url) or "")
        assert Uv().trust_note("https://cache.lan/root/pypi/+simple/") is None

    def test_passwords_are_hidden_wherever_a_url_is_printed(self):
        assert hide_passwords("index-url = https://pip-alice:s3cr-t_@cache.lan/x") == "index-url = https://pip-alice:****@cache.lan/x"
        assert hide_passwords("https://cache.lan/x") == "https://cache.lan/x"
