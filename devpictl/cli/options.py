"""Options shared by several commands, each with its environment variable."""

from __future__ import annotations

from pathlib import Path

import typer

from devpictl.image import DEFAULT_BASE_IMAGE, DEFAULT_IMAGE, DEVPI_SERVER_VERSION

NAME = typer.Option("default", "--name", "-n", envvar="DEVPICTL_NAME", help="Which cache (several can run side by side).")
JSON = typer.Option(False, "--json", help="Print a JSON result for scripts instead of progress.")
IMAGE = typer.Option(None, "--image", envvar="DEVPICTL_IMAGE", help=f"Image tag to build [default: devpictl/devpi-server:VERSION, e.g. {DEFAULT_IMAGE}].")
DEVPI_VERSION = typer.Option(None, "--devpi-server-version", envvar="DEVPICTL_DEVPI_SERVER_VERSION", help=f"devpi-server release the image pins [default: {DEVPI_SERVER_VERSION}].")
UP_IMAGE = typer.Option(None, "--image", envvar="DEVPICTL_IMAGE", help=f"Image tag to run (built if missing) [default: remembered, else {DEFAULT_IMAGE}].")
BASE_IMAGE = typer.Option(DEFAULT_BASE_IMAGE, "--base-image", envvar="DEVPICTL_BASE_IMAGE", help="Image with python3 (and venv) to build on.")
PIP_MIRROR = typer.Option(None, "--pip-mirror", envvar="DEVPICTL_PIP_MIRROR", help="Index the build's pip installs devpi from: a catalog name or URL (default: pip's default).")
WHEELHOUSE = typer.Option(None, "--wheelhouse", envvar="DEVPICTL_WHEELHOUSE", help="Build offline: pip installs only from this directory of wheels.", file_okay=False)
CA_BUNDLE = typer.Option(None, "--ca-bundle", envvar="DEVPICTL_CA_BUNDLE", help="PEM bundle to trust for HTTPS (a TLS-inspecting proxy's CA), in the build and in the cache.", dir_okay=False)
WEB = typer.Option(False, "--web", help="Also install devpi-web (its search indexer stays off).")
PROBE = typer.Option(None, "--probe-project", envvar="DEVPICTL_PROBE_PROJECT", help="Project whose simple page must list files for the cache to count as ready [default: remembered, else pip].")
CHECK = typer.Option(True, "--check/--no-check", help="Check that a new upstream answers a simple page before switching to it.")
TIMEOUT = typer.Option(180.0, "--timeout", envvar="DEVPICTL_TIMEOUT", help="Seconds to wait for devpi to become ready.")


def build_options(
    base_image: str,
    pip_mirror: str | None,
    wheelhouse: Path | None,
    ca_bundle: Path | None,
    web: bool,
    front: bool = True,
    devpi_server_version: str | None = None,
):
    """The BuildOptions these CLI values ask for."""
    from devpictl.image import BuildOptions, check_version
    from devpictl.mirrors import resolve
    from devpictl.settings import extra_labels

    return BuildOptions(
        base_image=base_image,
        devpi_server_version=check_version(devpi_server_version or DEVPI_SERVER_VERSION),
        pip_index=resolve(pip_mirror) if pip_mirror else None,
        web=web,
        wheelhouse=wheelhouse,
        ca_bundle=ca_bundle,
        front=front,
        labels=extra_labels(),
    )
