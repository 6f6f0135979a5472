"""`build --wheelhouse` builds with no network at all, from the template."""

from __future__ import annotations

import subprocess
import sys

from devpictl.image import DEVPI_SERVER_VERSION
from tests.integration.support import RUN_ID, host_pip_env, run_cli


def test_wheelhouse_build_needs_no_network(engine, base_image, tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "-d",
            str(wheelhouse),
            f"devpi-server=={DEVPI_SERVER_VERSION}",
        ],
        check=True,
        env=host_pip_env(),
    )
    tag = f"devpictl-test/devpi-offline:{RUN_ID}"
    try:
        # The engine builds with network_mode=none: any index access would fail the build.
        result = run_cli("build", "--image", tag, "--base-image", base_image, "--wheelhouse", str(wheelhouse), "--no-front")
        assert result.exit_code == 0, result.output
        image = engine.images.get(tag)
        assert image.labels.get("devpictl.test") == "1"
        container = engine.containers.create(tag, entrypoint=["devpi-server", "--version"], labels={"devpictl.test": "1"})
        try:
            container.start()
            assert container.wait(timeout=60)["StatusCode"] == 0
            assert DEVPI_SERVER_VERSION in container.logs().decode()
        finally:
            container.remove(v=True, force=True)  # v: the image's VOLUME /data made an anonymous volume
    finally:
        try:
            engine.images.remove(tag, force=True)
        except Exception:
            pass
