"""`devpictl export compose|k8s`: a primary, its replicas and a load-balancing front, for the orchestrator a team runs.

Both run the image devpictl builds (its entrypoint knows every role: primary,
replica, front) and read the passwords from secret files, never from the manifests.
docs/scale-out.md says when to use which.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devpictl import __version__, layout
from devpictl import image as img
from devpictl.errors import BadInput, Conflict
from devpictl.files import write_atomic
from devpictl.mirrors import Upstream
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


@dataclass
class Exported:
    files: list[Path]
    secrets: list[Path]  # created by this run; kept ones are not listed
    next_step: str

    def as_dict(self) -> dict[str, object]:
        return {"files": [str(p) for p in self.files], "secrets_created": [str(p) for p in self.secrets], "next_step": self.next_step}


def check_options(opts: ExportOptions) -> None:
    if not 1 <= opts.replicas <= 50:
        raise BadInput(f"--replicas {opts.replicas} is out of range: give 1 to 50")
    if opts.upstream is not None and opts.upstream.credentials is not None:
        raise BadInput(
            "the upstream URL carries a user or password, which would sit in the manifests: give an upstream without credentials"
        )
    if not NAME_PATTERN.fullmatch(opts.name) or "." in opts.name or "_" in opts.name:
        raise BadInput(
            f"--name {opts.name!r} is not a Kubernetes name: use lowercase letters, digits and '-', starting with a letter or digit"
        )


def ensure_secrets(directory: Path) -> list[Path]:
    """secrets/root-password and secrets/devpi-secret, made once and kept: a re-export must not lock anyone out.

    The directory is 0700 (only you reach them); the files are 0644 so that devpi's
    user in the container can read the bind mount compose makes of them.
    """
    folder = directory / SECRETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    made = []
    for name, value in ((ROOT_PASSWORD, new_root_password()), (DEVPI_SECRET, secrets.token_urlsafe(48))):
        path = folder / name
        if not path.exists():
            write_atomic(path, (value + "\n").encode(), 0o644)
            made.append(path)
    return made


def write_manifest(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise Conflict(f"{path} exists: pass --force to replace it (the secrets beside it are kept)")
    write_atomic(path, text.encode())


def mirror_url(opts: ExportOptions) -> str | None:
    return opts.upstream.public_url if opts.upstream is not None else None


def render_compose(opts: ExportOptions) -> str:
    return img.render_template(
        "compose.yaml.j2",
        devpictl_version=__version__,
        image=opts.image,
        replicas=opts.replicas,
        host=opts.host,
        port=opts.port,
        mirror_url=mirror_url(opts),
        networks=list(opts.networks),
        labels=extra_labels(),
    )


def render_k8s(opts: ExportOptions) -> str:
    return img.render_template(
        "k8s.yaml.j2",
        devpictl_version=__version__,
        image=opts.image,
        replicas=opts.replicas,
        app=opts.name,
        secret=f"{opts.name}-secrets",
        storage=opts.storage,
        mirror_url=mirror_url(opts),
        oldest=K8S_OLDEST.rsplit(".", 1)[0],
        newest=K8S_NEWEST.rsplit(".", 1)[0],
    )


def write_out(opts: ExportOptions, file_name: str, render: Callable[[ExportOptions], str]) -> tuple[Path, list[Path]]:
    """Check ``opts``, write the manifest ``render`` makes, and make the secrets it needs: (the manifest, the secrets made)."""
    check_options(opts)
    path = opts.directory / file_name
    write_manifest(path, render(opts), opts.force)
    return path, ensure_secrets(opts.directory)


def export_compose(opts: ExportOptions) -> Exported:
    path, made = write_out(opts, COMPOSE_FILE, render_compose)
    return Exported(
        [path], made, f"cd {opts.directory} && docker-compose up -d; installers use http://{opts.host}:{opts.port}/root/pypi/+simple/"
    )


def export_k8s(opts: ExportOptions) -> Exported:
    path, made = write_out(opts, K8S_FILE, render_k8s)
    secret = (
        f"kubectl create secret generic {opts.name}-secrets --from-file={ROOT_PASSWORD}={SECRETS_DIR}/{ROOT_PASSWORD} "
        f"--from-file={DEVPI_SECRET}={SECRETS_DIR}/{DEVPI_SECRET}"
    )
    return Exported([path], made, f"cd {opts.directory} && {secret} && kubectl apply -f {K8S_FILE}")
