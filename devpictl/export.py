"""`devpictl export compose|k8s`: a primary, its replicas and a load-balancing front, for the orchestrator a team runs.

Both run the image devpictl builds (its entrypoint knows every role: primary,
replica, front) and read the passwords from secret files, never from the manifests.
docs/scale-out.md says when to use which.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devpictl import __version__, certificates, layout, tls
from devpictl import image as img
from devpictl.errors import BadInput, Conflict
from devpictl.files import write_atomic
from devpictl.mirrors import Upstream
from devpictl.network import is_ip
from devpictl.settings import NAME_PATTERN, extra_labels, new_root_password

# The Kubernetes versions `export k8s` is checked against (tests/unit/test_export.py), oldest and newest.
K8S_OLDEST = "1.25.0"
K8S_NEWEST = "1.37.0"
COMPOSE_FILE = "compose.yaml"
K8S_FILE = "devpi.yaml"
SECRETS_DIR = "secrets"
# secrets/ holds the files the entrypoint reads from its run dir under devpictl, as secret mounts here.
ROOT_PASSWORD = layout.ROOT_PASSWORD
DEVPI_SECRET = layout.REPLICA_SECRET
TLS_CERT = "tls-cert"  # --tls: the front's certificate, its key, and (self-signed) the CA installers trust
TLS_KEY = "tls-key"
TLS_CA = "tls-ca.pem"
# Each value the manifests take is checked against these, then written through yaml_values.
STORAGE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?)(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")  # a Kubernetes quantity of bytes
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
# the engine's reference grammar: [registry/]path[:tag][@digest]
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?"
)
NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # what the engine accepts for a network's name


@dataclass(frozen=True)
class ExportOptions:
    directory: Path  # where the manifests and the secrets/ directory go
    image: str
    replicas: int = 2
    upstream: Upstream | None = None  # None: devpi's default, the official index
    host: str = "127.0.0.1"  # compose: where the front is published
    port: int = layout.CONTAINER_PORT
    networks: tuple[str, ...] = ()  # compose: external networks the primary joins (to reach its upstream)
    name: str = "devpi"  # k8s: the Service installers use; the rest is named after it
    storage: str = "20Gi"  # k8s: each pod's volume claim
    force: bool = False  # overwrite manifests already there (the secrets are kept)
    # HTTPS where installers connect (compose: the front; k8s: the replicas behind Service NAME),
    # with this certificate (tls.py; kept in secrets/ once made); plain HTTP there is "redirect"-ed or "refuse"-d.
    certificate: certificates.ServerCertificate | None = None
    ca_pem: bytes | None = None  # the CA that signed a self-signed one: secrets/tls-ca.pem, for installers
    http: str = tls.REDIRECT
    read_auth: bool = False  # reading needs a login, on the primary and every replica


@dataclass
class Exported:
    files: list[Path]
    secrets: list[Path]  # created by this run; kept ones are not listed
    next_step: str

    def as_dict(self) -> dict[str, object]:
        return {"files": [str(p) for p in self.files], "secrets_created": [str(p) for p in self.secrets], "next_step": self.next_step}


def check_options(opts: ExportOptions) -> None:
    """Refuse any value the manifests cannot hold as given, before anything is written."""
    if isinstance(opts.replicas, bool) or not isinstance(opts.replicas, int) or not 1 <= opts.replicas <= 50:
        raise BadInput(f"--replicas {opts.replicas} is out of range: give 1 to 50")
    if opts.upstream is not None and opts.upstream.credentials is not None:
        raise BadInput(
            "the upstream URL carries a user or password, which would sit in the manifests: give an upstream without credentials"
        )
    if not NAME_PATTERN.fullmatch(opts.name) or "." in opts.name or "_" in opts.name:
        raise BadInput(
            f"--name {opts.name!r} is not a Kubernetes name: use lowercase letters, digits and '-', starting with a letter or digit"
        )
    if len(opts.image) > 255 or not IMAGE_REFERENCE.fullmatch(opts.image):
        raise BadInput(f"--image {opts.image!r} is not an image reference: give one such as registry.example/devpi:6.20.3")
    if not STORAGE.fullmatch(opts.storage) or float(re.sub(r"[A-Za-z]+$", "", opts.storage)) <= 0:
        raise BadInput(f"--storage {opts.storage!r} is not a Kubernetes quantity of bytes: give one such as 20Gi or 500Mi")
    if isinstance(opts.port, bool) or not isinstance(opts.port, int) or not 1 <= opts.port <= 65535:
        raise BadInput(f"--port {opts.port} is out of range: give 1 to 65535")
    if not is_ip(opts.host):
        raise BadInput(f"--host {opts.host!r} is not an IP address: give one such as 127.0.0.1")
    for network in opts.networks:
        if not NETWORK_NAME.fullmatch(network):
            raise BadInput(f"--network {network!r} is not a Docker network's name: use letters, digits, '_', '.' and '-'")


def yaml_values(values: dict[str, object]) -> dict[str, object]:
    """``values`` for a manifest: every string as a YAML double-quoted scalar, in mappings and lists too.

    JSON's string literals are YAML's double-quoted scalars, so no value can end its
    line, start a key, or turn into a number, a boolean or null (``yes``, ``1e3``).
    """

    def scalar(value: object) -> object:
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, dict):
            return {scalar(k): scalar(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scalar(v) for v in value]
        if value is None or isinstance(value, bool | int):
            return value
        raise TypeError(f"{value!r} is not a manifest value")

    return {name: scalar(value) for name, value in values.items()}


def ensure_secrets(
    directory: Path, mode: int, certificate: certificates.ServerCertificate | None = None, ca_pem: bytes | None = None
) -> list[Path]:
    """secrets/root-password and secrets/devpi-secret, made once and kept: a re-export must not lock anyone out.

    secrets/ is a directory of ours (no symlink, nobody else's) made 0700; each file is
    created exclusively beside it and linked in, so no link planted there is followed
    and no secret already there is replaced. ``mode`` is 0600, or 0644 where compose
    bind-mounts the files for devpi's user in the container. With ``certificate``, its
    files too (and the CA's, public); one already there is kept: delete it to replace it.
    """
    folder = directory / SECRETS_DIR
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # check_output refused a symlink; a swap since fails here
    except OSError as exc:
        raise Conflict(f"{folder} is not a directory of yours ({exc.strerror}): remove it, then export again") from None
    try:
        own(os.fstat(fd), folder)
        os.fchmod(fd, 0o700)
        made = []
        for name, value in ((ROOT_PASSWORD, new_root_password()), (DEVPI_SECRET, secrets.token_urlsafe(48))):
            if create_secret(fd, name, (value + "\n").encode(), mode):
                made.append(folder / name)
        if certificate is not None:
            files = [(TLS_CERT, certificate.chain_pem, mode), (TLS_KEY, certificate.key_pem, mode)]
            for name, data, file_mode in files + ([(TLS_CA, ca_pem, 0o644)] if ca_pem else []):
                if create_secret(fd, name, data, file_mode):
                    made.append(folder / name)
        return made
    finally:
        os.close(fd)


def create_secret(folder_fd: int, name: str, data: bytes, mode: int) -> bool:
    """Write secret ``name`` into the directory ``folder_fd`` unless it is there; whether it was made."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise Conflict(f"{SECRETS_DIR}/{name} is not a regular file: remove it, then export again")
        return False
    tmp = f".{name}.{secrets.token_hex(8)}.devpictl-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=folder_fd)
    try:
        try:
            os.fchmod(fd, mode)  # whatever the umask
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=False)  # fails if one appeared meanwhile
    finally:
        os.unlink(tmp, dir_fd=folder_fd)
    return True


def own(st: os.stat_result, path: Path) -> None:
    if st.st_uid != os.geteuid():
        raise Conflict(f"{path} belongs to another user (uid {st.st_uid}): export into a directory of your own")


def is_git_top(directory: Path) -> bool:
    return (directory / ".git").exists()


def check_output(directory: Path, file_name: str, force: bool) -> None:
    """Refuse an output path that is a symlink or someone else's, or a git work tree's top (without --force), before writing."""
    for path in (
        directory,
        directory / SECRETS_DIR,
        directory / file_name,
        *(directory / SECRETS_DIR / n for n in (ROOT_PASSWORD, DEVPI_SECRET, TLS_CERT, TLS_KEY, TLS_CA)),
    ):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise Conflict(f"{path} is a symlink: export writes no secret or manifest through one; give -o a directory of your own")
        own(st, path)
    if is_git_top(directory) and not force:
        raise Conflict(
            f"{directory.resolve()} is the top of a git work tree, where secrets/ would sit beside your code: "
            "give -o DIR (outside the repository, or ignored by git), or --force to write here"
        )


def write_manifest(path: Path, text: str, force: bool) -> None:
    if os.path.lexists(path) and not force:
        raise Conflict(f"{path} exists: pass --force to replace it (the secrets beside it are kept)")
    write_atomic(path, text.encode())


def mirror_url(opts: ExportOptions) -> str | None:
    return opts.upstream.public_url if opts.upstream is not None else None


def render_compose(opts: ExportOptions) -> str:
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    return img.render_template(
        "compose.yaml.j2",
        devpictl_version=__version__,
        replicas=opts.replicas,
        port=opts.port,
        **yaml_values(
            {
                "image": opts.image,
                "published": f"{host}:{opts.port}:{layout.CONTAINER_PORT}",
                "mirror_url": mirror_url(opts),
                "networks": list(opts.networks),
                "labels": extra_labels(),
                "tls": opts.http if opts.certificate is not None else None,
            }
        ),
        read_auth=opts.read_auth,
        tls_cert_secret=TLS_CERT,
        tls_key_secret=TLS_KEY,
    )


def render_k8s(opts: ExportOptions) -> str:
    return img.render_template(
        "k8s.yaml.j2",
        devpictl_version=__version__,
        replicas=opts.replicas,
        oldest=K8S_OLDEST.rsplit(".", 1)[0],
        newest=K8S_NEWEST.rsplit(".", 1)[0],
        **yaml_values(
            {
                "image": opts.image,
                "app": opts.name,
                "primary": f"{opts.name}-primary",
                "replica_set": f"{opts.name}-replica",
                "primary_url": f"http://{opts.name}-primary:{layout.CONTAINER_PORT}",
                "secret": f"{opts.name}-secrets",
                "storage": opts.storage,
                "mirror_url": mirror_url(opts),
                "tls": opts.http if opts.certificate is not None else None,
            }
        ),
        read_auth=opts.read_auth,
        tls_cert_secret=TLS_CERT,
        tls_key_secret=TLS_KEY,
    )


def write_out(opts: ExportOptions, file_name: str, render: Callable[[ExportOptions], str], secret_mode: int) -> tuple[Path, list[Path]]:
    """Check ``opts`` and the output path, write the manifest ``render`` makes, and make the secrets it needs: (the manifest, the secrets made)."""
    check_options(opts)
    check_output(opts.directory, file_name, opts.force)
    text = render(opts)
    path = opts.directory / file_name
    opts.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_manifest(path, text, opts.force)
    return path, ensure_secrets(opts.directory, secret_mode, opts.certificate, opts.ca_pem)


def export_compose(opts: ExportOptions) -> Exported:
    # compose bind-mounts file secrets as they are, and devpi runs as its own user: 0644, in the 0700 directory
    path, made = write_out(opts, COMPOSE_FILE, render_compose, 0o644)
    scheme = "https" if opts.certificate is not None else "http"
    trust = f" (trusting {SECRETS_DIR}/{TLS_CA})" if opts.ca_pem else ""
    return Exported(
        [path],
        made,
        f"cd {opts.directory} && docker-compose up -d; installers use {scheme}://{opts.host}:{opts.port}/root/pypi/+simple/{trust}",
    )


def export_k8s(opts: ExportOptions) -> Exported:
    # kubectl reads them as you: 0600, as every other secret devpictl makes
    path, made = write_out(opts, K8S_FILE, render_k8s, 0o600)
    names = (ROOT_PASSWORD, DEVPI_SECRET, *((TLS_CERT, TLS_KEY) if opts.certificate is not None else ()))
    secret = f"kubectl create secret generic {opts.name}-secrets " + " ".join(f"--from-file={n}={SECRETS_DIR}/{n}" for n in names)
    return Exported([path], made, f"cd {opts.directory} && {secret} && kubectl apply -f {K8S_FILE}")
