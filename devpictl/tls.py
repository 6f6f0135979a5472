"""HTTPS for the front server: the certificate `up` hands a cache (devpictl's own CA's with `--tls self-signed`,
or one the user gives: devpictl/certificates.py makes and checks them), what devpictl keeps of it, and how
devpictl itself trusts the cache.

The server's key goes into the cache's volume (0600, devpi's user) and nowhere else;
the CA's key stays in devpictl's state dir (0600) so `up` can renew.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from devpictl import layout
from devpictl.certificates import ServerCertificate, covered, given_certificate, issue, make_ca, not_after, now, server_names
from devpictl.errors import BadInput
from devpictl.files import write_atomic
from devpictl.settings import Instance

if TYPE_CHECKING:
    from docker import DockerClient

    from devpictl.cache import Cache
    from devpictl.precedence import CacheSettings
    from devpictl.reporter import Reporter

SELF_SIGNED = "self-signed"
OFF = "off"
GIVEN = "cert"  # the certificate --tls-cert gave, kept in the volume
MODES = (SELF_SIGNED, OFF)  # what --tls takes; --tls-cert makes GIVEN
REDIRECT = "redirect"
REFUSE = "refuse"
HTTP_CHOICES = (REDIRECT, REFUSE)  # what plain HTTP on the HTTPS port gets (--http)
RENEW_WITHIN = datetime.timedelta(days=30)  # `up` makes a new self-signed server certificate this close to its end


def ca_file(instance: Instance) -> Path:
    """devpictl's CA for the cache (public): what installers are told to trust."""
    return instance.tls_dir / "ca.pem"


def ca_key_file(instance: Instance) -> Path:
    return instance.tls_dir / "ca-key.pem"


def served_file(instance: Instance) -> Path:
    """The certificate chain the cache serves (public): devpictl pins it to reach the cache, `status` reads its end."""
    return instance.tls_dir / "served.pem"


def trust_bundle_file(instance: Instance) -> Path:
    """The CA and this machine's trust bundle in one file: pip's `cert` and uv's SSL_CERT_FILE replace the bundle they use."""
    return instance.tls_dir / "trust.pem"


def ensure_ca(instance: Instance) -> bytes:
    """The cache's CA certificate, made (with its key, 0600) on first use."""
    if ca_file(instance).is_file() and ca_key_file(instance).is_file():
        return ca_file(instance).read_bytes()
    cert, key = make_ca(instance.name)
    write_atomic(ca_key_file(instance), key, 0o600)
    write_atomic(ca_file(instance), cert, 0o644)
    return cert


def self_signed(instance: Instance, names: Sequence[str]) -> ServerCertificate:
    """A new server certificate for ``names`` from the cache's CA (made if missing)."""
    ca = ensure_ca(instance)
    return issue(ca, ca_key_file(instance).read_bytes(), names)


# --------------------------------------------------------------------------
# The certificate a cache serves, as devpictl keeps it on the host


def served_expiry(instance: Instance) -> datetime.datetime | None:
    """When the certificate the cache serves ends; None when devpictl keeps none for it."""
    try:
        return not_after(served_file(instance).read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def needs_renewal(instance: Instance, names: Sequence[str]) -> bool:
    """Whether a self-signed certificate must be made anew: none yet, not from the cache's CA (one given before),
    close to its end, or not for every name now wanted."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificates(served_file(instance).read_bytes())[0]
        ca = x509.load_pem_x509_certificate(ca_file(instance).read_bytes())
    except (FileNotFoundError, ValueError):
        return True
    if leaf.issuer != ca.subject:
        return True
    return leaf.not_valid_after_utc - now() < RENEW_WITHIN or not all(covered(leaf, n) for n in names)


def keep_served(instance: Instance, certificate: ServerCertificate, *, self_signed: bool) -> None:
    """Keep what the cache now serves (public parts only), and the trust bundle installers are pointed at."""
    write_atomic(served_file(instance), certificate.chain_pem, 0o644)
    if self_signed:
        write_atomic(trust_bundle_file(instance), ca_file(instance).read_bytes() + system_bundle(), 0o644)
    else:
        trust_bundle_file(instance).unlink(missing_ok=True)  # the user's CA is one installers trust already


def system_bundle() -> bytes:
    """This machine's trust bundle (the one $SSL_CERT_FILE or OpenSSL's default names), or nothing."""
    import os

    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return b"\n" + Path(candidate).read_bytes()
    return b""


def files_to_hand_in(certificate: ServerCertificate) -> dict[str, bytes]:
    """The run dir's files that carry ``certificate`` into the volume (the entrypoint moves them, 0600)."""
    return {layout.TLS_CERT_FILE: certificate.chain_pem, layout.TLS_KEY_FILE: certificate.key_pem}


# --------------------------------------------------------------------------
# devpictl reaching its own cache


def local_context(instance: Instance) -> ssl.SSLContext:
    """Trust exactly the certificate chain devpictl handed the cache, whatever names it carries.

    devpictl reaches the cache at 127.0.0.1, which a certificate the user gave need not
    name: the pinned chain (partial-chain verification, no system CAs) stands in for the
    name check, so only a server holding the key devpictl handed in is trusted.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        context.load_verify_locations(cadata=served_file(instance).read_text("ascii"))
    except (FileNotFoundError, ssl.SSLError, ValueError):
        raise BadInput(
            f"devpictl keeps no certificate for cache {instance.name!r} in {served_file(instance)}: run `devpictl up --name {instance.name}` again"
        ) from None
    return context


# --------------------------------------------------------------------------
# What `up` does


IMAGE_LABEL = "devpictl.tls"  # on images whose entrypoint and front server know HTTPS and --read-auth


def wanted_switch(settings: CacheSettings) -> str | None:
    """The container's ENV_TLS for ``settings``: what plain HTTP gets, or None for a plain-HTTP cache."""
    return None if settings.tls == OFF else settings.http


def prepare(settings: CacheSettings) -> ServerCertificate | None:
    """The certificate `up` must hand the cache, checked or made before anything changes; None: it keeps the one it has.

    A self-signed one is made anew when none was made yet, when it ends within
    RENEW_WITHIN, or when it lacks a name now asked for.
    """
    if (settings.tls != OFF or settings.read_auth) and not settings.front:
        raise BadInput("HTTPS and --read-auth are the front server's: drop --no-front, or drop --tls and --read-auth")
    if settings.tls == GIVEN:
        if settings.tls_cert is None or settings.tls_key is None:
            if not served_file(settings.instance).is_file():
                raise BadInput("this cache has no certificate yet: give --tls-cert FILE --tls-key FILE, or use --tls self-signed")
            return None
        return given_certificate(settings.tls_cert, settings.tls_key, settings.tls_names)
    if settings.tls == SELF_SIGNED:
        names = server_names(settings.tls_names, settings.host)
        if needs_renewal(settings.instance, names):
            return self_signed(settings.instance, names)
    return None


def check_image(labels: dict[str, str] | None, image: str) -> None:
    """Refuse an image whose entrypoint knows neither HTTPS nor --read-auth (built by an older devpictl)."""
    if labels is not None and labels.get(IMAGE_LABEL) != "1":
        raise BadInput(
            f"image {image} was built by an older devpictl, without HTTPS and --read-auth: rebuild it with `devpictl build --image {image}`"
        )


def fresh_certificate(settings: CacheSettings) -> ServerCertificate:
    """The certificate for a new volume: a new self-signed one; a given one must be given again."""
    if settings.tls != SELF_SIGNED:
        raise BadInput("a new volume needs the certificate again: give --tls-cert FILE --tls-key FILE, or use --tls self-signed")
    return self_signed(settings.instance, server_names(settings.tls_names, settings.host))


def for_new_container(engine: DockerClient, settings: CacheSettings, certificate: ServerCertificate | None) -> ServerCertificate | None:
    """The certificate a new container gets: ``certificate``, or for a new volume a new self-signed one;
    an image whose entrypoint knows neither HTTPS nor --read-auth is refused first."""
    from devpictl import container as ctr

    if settings.tls != OFF or settings.read_auth:
        check_image(ctr.image_labels(engine, settings.image), settings.image)
    if certificate is None and settings.tls != OFF and not ctr.volume_exists(engine, settings.instance):
        # A new volume holds no certificate, whatever devpictl kept of an earlier one.
        return fresh_certificate(settings)
    return certificate


def renew_certificate(cache: Cache, settings: CacheSettings, certificate: ServerCertificate, reporter: Reporter) -> list[str]:
    """Give a cache a new certificate: into its run dir, then a restart, at which the entrypoint moves it into the volume."""
    valid_until = f"{certificate.not_after:%Y-%m-%d}"
    reporter.step(f"Giving cache {settings.instance.name!r} a new certificate (valid until {valid_until})")
    cache.hand_in_files(files_to_hand_in(certificate))
    keep_served(settings.instance, certificate, self_signed=settings.tls == SELF_SIGNED)
    cache.restart()
    return [f"gave the cache a new certificate, valid until {valid_until}"]
