"""devpictl export compose / k8s: a primary, its replicas and a front, for compose or Kubernetes."""

from __future__ import annotations

from pathlib import Path

import typer

from devpictl.cli import options
from devpictl.image import DEFAULT_IMAGE


def register(app: typer.Typer) -> None:
    app.command("export")(export_manifests)


def print_result(result, json_output: bool, here: Path | None) -> None:
    """``here``: the current directory, when no -o was given; the first line says so."""
    from devpictl.cli import ui

    if json_output:
        ui.print_json(result)
        return
    if here is not None:
        ui.out.print(f"Writing into the current directory, {here} (-o DIR writes elsewhere)", markup=False)
    for path in result.files:
        ui.out.print(f"Wrote {path}")
    for path in result.secrets:
        ui.out.print(f"Made {path} (in a directory only you can read; never printed)")
    ui.out.print(f"Next: {result.next_step}")


def export_manifests(
    target: str = typer.Argument(
        ..., metavar="compose|k8s", help="compose: compose.yaml for docker-compose or `docker compose`; k8s: devpi.yaml for Kubernetes."
    ),
    directory: Path = typer.Option(
        None,
        "--dir",
        "-o",
        file_okay=False,
        help="Where to write the manifest and its secrets/ directory; not a symlink, yours [default: here, unless it is a git work tree's top].",
    ),
    replicas: int = typer.Option(2, "--replicas", help="How many replicas follow the primary and serve installers (1-50)."),
    image: str = typer.Option(
        DEFAULT_IMAGE, "--image", envvar="DEVPICTL_IMAGE", help="The image devpictl built (`devpictl build`) that every service runs."
    ),
    mirror: str = typer.Option(
        None,
        "--mirror",
        "-m",
        envvar="DEVPICTL_MIRROR",
        help="The primary's upstream: a catalog name, your entry or an index URL without credentials [default: pypi].",
    ),
    host: str = typer.Option(
        None, "--host", help="compose: host address the front is published on; 0.0.0.0 opens it to your network [default: 127.0.0.1]."
    ),
    port: int = typer.Option(None, "--port", "-p", help="compose: host port the front is published on [default: 3141]."),
    network: list[str] = typer.Option(
        None, "--network", help="compose: an existing Docker network the primary joins too (to reach its upstream); repeatable."
    ),
    name: str = typer.Option(
        None,
        "--name",
        "-n",
        help="k8s: the Service installers use; the StatefulSets, Services and Secret are named after it [default: devpi].",
    ),
    storage: str = typer.Option(None, "--storage", help="k8s: each pod's volume claim, in Kubernetes' notation [default: 20Gi]."),
    tls: str = typer.Option(
        None,
        "--tls",
        metavar="[self-signed|off]",
        help="Installers reach the cache over HTTPS (compose: the front; k8s: the replicas), with a certificate from a new CA (secrets/tls-ca.pem) [default: off].",
    ),
    tls_cert: Path = typer.Option(
        None, "--tls-cert", dir_okay=False, help="Serve HTTPS with this PEM certificate (and chain), with --tls-key."
    ),
    tls_key: Path = typer.Option(None, "--tls-key", dir_okay=False, help="The unencrypted PEM key of --tls-cert (copied into secrets/)."),
    tls_name: list[str] = typer.Option(
        None,
        "--tls-name",
        help="A host name or address installers reach the cache at (repeat it): the certificate is for (or must cover) these.",
    ),
    http: str = typer.Option(
        None, "--http", metavar="[redirect|refuse]", help="With HTTPS: what plain HTTP on the same port gets [default: redirect]."
    ),
    read_auth: bool = typer.Option(
        False, "--read-auth", help="Reading needs a login of one of devpi's users, on the primary and every replica."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a manifest already there (its secrets are kept, so running caches keep working); write into a git work tree's top.",
    ),
    json_output: bool = options.JSON,
) -> None:
    """Write a primary, replicas and a front for compose or Kubernetes.

    Every service runs the image devpictl builds; passwords come from files in
    secrets/ beside the manifest (a Kubernetes Secret made from them), never
    from the manifest. docs/scale-out.md says when to use which.

    Example: devpictl export compose --replicas 3 --mirror tuna -o ./devpi
    """
    from devpictl import export
    from devpictl.errors import BadInput
    from devpictl.mirrors import resolve
    from devpictl.network import check_host
    from devpictl.settings import check_port

    if target not in ("compose", "k8s"):
        raise BadInput(f"cannot export {target!r}: give compose or k8s")
    other = {"--host": host, "--port": port, "--network": network or None} if target == "k8s" else {"--name": name, "--storage": storage}
    given = [flag for flag, value in other.items() if value is not None]
    if given:
        raise BadInput(f"{', '.join(given)} do not apply to `export {target}`: drop them")
    from devpictl import certificates as certs
    from devpictl import precedence
    from devpictl import tls as modes
    from devpictl.settings import Instance

    # The same checks as `up`'s, from the one declaration of each setting (devpictl/precedence.py);
    # nothing is remembered for an export, so the instance only carries the name.
    asked = precedence.ask(Instance(name or "devpi"), tls=tls, tls_cert=tls_cert, tls_key=tls_key, tls_names=tls_name or None, http=http)
    certificate = ca_pem = None
    if asked.tls == modes.GIVEN and tls_cert is not None and tls_key is not None:
        certificate = certs.given_certificate(tls_cert, tls_key, asked.tls_names)
    elif asked.tls == modes.SELF_SIGNED:
        ca_pem, ca_key = certs.make_ca(name or "devpi")
        names = [*asked.tls_names, name or "devpi"] if target == "k8s" else certs.server_names(asked.tls_names, host or "127.0.0.1")
        certificate = certs.issue(ca_pem, ca_key, names)
    opts = export.ExportOptions(
        directory=directory if directory is not None else Path("."),
        image=image,
        replicas=replicas,
        upstream=resolve(mirror) if mirror else None,
        host=check_host(host) if host is not None else "127.0.0.1",
        port=check_port(port) if port is not None else 3141,
        networks=tuple(network or ()),
        name=name if name is not None else "devpi",
        storage=storage if storage is not None else "20Gi",
        force=force,
        certificate=certificate,
        ca_pem=ca_pem,
        http=asked.http,
        read_auth=read_auth,
    )
    result = export.export_compose(opts) if target == "compose" else export.export_k8s(opts)
    print_result(result, json_output, Path.cwd() if directory is None else None)
