"""devpictl build: render templates/Dockerfile.j2 and build the image."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from devpictl.cli import options


def register(app: typer.Typer) -> None:
    app.command("build")(build)


def build(
    image: str = options.IMAGE,
    devpi_server_version: str = options.DEVPI_VERSION,
    base_image: str = options.BASE_IMAGE,
    pip_mirror: str = options.PIP_MIRROR,
    apt_mirror: str = options.APT_MIRROR,
    wheelhouse: Path = options.WHEELHOUSE,
    ca_bundle: Path = options.CA_BUNDLE,
    web: bool = options.WEB,
    front: bool = typer.Option(
        True, "--front/--no-front", help="Install nginx as the front server (needs apt in the build unless the base image has nginx)."
    ),
    print_only: bool = typer.Option(False, "--print", help="Show the rendered Dockerfile and build nothing."),
    json_output: bool = options.JSON,
    verbose: bool = options.VERBOSE,
) -> None:
    """Render the Dockerfile template and build the devpi-server image.

    Example: devpictl build --base-image python:3.12-slim --pip-mirror tuna
    """
    from devpictl import image as img

    opts = options.build_options(
        base_image, pip_mirror, wheelhouse, ca_bundle, web, front=front, devpi_server_version=devpi_server_version, apt_mirror=apt_mirror
    )
    image = image or img.variant_image(opts)
    img.check_inputs(opts)
    if print_only:
        typer.echo(img.render_dockerfile(opts), nl=False)
        return
    from devpictl.cli import ui
    from devpictl.container import connect

    engine = connect()
    with ui.reporter(json_output, verbose) as rep:
        rep.step(f"Building {image} from {opts.base_image}")
        image_id = img.build_image(engine.api, opts, image, dict(os.environ), rep.log)
    if json_output:
        ui.print_json(img.Built(image, image_id))
    else:
        ui.out.print(f"Built {image}")
