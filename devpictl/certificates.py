"""Server certificates, made and checked on the host with the ``cryptography`` library: a CA for one cache,
the certificates it signs, and a certificate the user gives (`--tls-cert`, `--tls-key`) checked before anything changes."""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devpictl.errors import BadInput

CA_DAYS = 3650
SERVER_DAYS = 365
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")  # devpictl and this machine's installers reach the cache there


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class ServerCertificate:
    """What the front server serves: its certificate (with the chain), its key, and when it ends."""

    chain_pem: bytes
    key_pem: bytes
    not_after: datetime.datetime


# --------------------------------------------------------------------------
# Names


def check_name(name: str) -> str:
    """A DNS name or an IP address a certificate can be made for."""
    name = name.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if not name or len(name) > 253 or not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
        raise BadInput(f"--tls-name {name!r} is not a host name or IP address: give e.g. --tls-name cache.lan or --tls-name 192.168.1.5")
    return name


def server_names(names: Iterable[str], host: str) -> list[str]:
    """The names a self-signed certificate is made for: those given, this machine's name, the published address, loopback."""
    wanted = [check_name(n) for n in names]
    with_host = [host] if host not in ("0.0.0.0", "::", "") else []
    machine = socket.gethostname()
    for extra in (*with_host, machine, *LOCAL_NAMES):
        try:
            extra = check_name(extra)
        except BadInput:
            continue  # a machine name no certificate can carry
        if extra not in wanted:
            wanted.append(extra)
    return wanted


def _general_names(names: Sequence[str]):
    from cryptography import x509

    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def covered(cert, name: str) -> bool:
    """Whether ``cert`` (an x509.Certificate) is valid for ``name``, as a client checks: its subject alternative names."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    for pattern in san.get_values_for_type(x509.DNSName):
        pattern = pattern.lower().rstrip(".")
        if pattern == name or (pattern.startswith("*.") and name.partition(".")[2] == pattern[2:] and "." in pattern[2:]):
            return True
    return False


# --------------------------------------------------------------------------
# Making certificates


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    # P-256: what every installer's TLS stack takes, and a handshake as cheap as any.
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(cache_name: str) -> tuple[bytes, bytes]:
    """(certificate, key) in PEM of a new CA for one cache, allowed to sign server certificates only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"devpictl CA for cache {cache_name}")])
    start = now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(ca_pem: bytes, ca_key_pem: bytes, names: Sequence[str]) -> ServerCertificate:
    """A server certificate for ``names``, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = _new_key()
    start = now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_pem
    return ServerCertificate(chain, _pem_key(key), cert.not_valid_after_utc)


# --------------------------------------------------------------------------
# Checking a certificate the user gives


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist: give the path of a PEM file") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path} ({exc.strerror}): fix its permissions, or run as its owner") from None


def given_certificate(cert_path: Path, key_path: Path, names: Sequence[str]) -> ServerCertificate:
    """The certificate and key --tls-cert and --tls-key name, checked: a pair, valid now, for every name in ``names``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_pem, key_pem = _read(cert_path, "--tls-cert"), _read(key_path, "--tls-key")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise BadInput(f"--tls-cert {cert_path} holds no PEM certificate: give the server certificate (and its chain) in PEM") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise BadInput(
            f"--tls-key {key_path} is not an unencrypted PEM private key: give the key of {cert_path}, without a passphrase"
        ) from None
    leaf = chain[0]
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != leaf.public_key().public_bytes(*public):
        raise BadInput(f"--tls-key {key_path} is not the key of --tls-cert {cert_path}: give the key the certificate was made for")
    moment = now()
    if leaf.not_valid_after_utc <= moment:
        raise BadInput(f"--tls-cert {cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}: renew it, or use --tls self-signed")
    if leaf.not_valid_before_utc > moment:
        raise BadInput(
            f"--tls-cert {cert_path} is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this machine's clock"
        )
    missing = [name for name in (check_name(n) for n in names) if not covered(leaf, name)]
    if missing:
        raise BadInput(
            f"--tls-cert {cert_path} is not valid for {', '.join(missing)}: give a certificate for that name, or drop it from --tls-name"
        )
    return ServerCertificate(cert_pem, key_pem, leaf.not_valid_after_utc)


def not_after(chain_pem: bytes) -> datetime.datetime:
    """When the first certificate in ``chain_pem`` ends."""
    from cryptography import x509

    return x509.load_pem_x509_certificates(chain_pem)[0].not_valid_after_utc
