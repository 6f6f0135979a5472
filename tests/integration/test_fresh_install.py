"""devpictl installs as a stranger installs it: on a bare Debian with the distribution's Python.

The container is the bare test base image (python3 and venv, nothing of devpictl's).
Everything it installs comes from a wheelhouse made here from devpictl's declared
dependencies, with no network in the container: a dependency devpictl imports but does
not declare is missing there, and the commands fail.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from devpictl import __version__
from tests.integration.support import RUN_ID, TEST_LABEL, host_pip_env

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# What the README tells a new user to run, before `devpictl up`.
README_INSTALL = "pipx install ."


def container_python(engine, image: str) -> str:
    """X.Y of the image's python3."""
    out = engine.containers.run(
        image,
        ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        remove=True,
        network_mode="none",
        labels={"devpictl.test": "1"},
    )
    return out.decode().strip()


@pytest.fixture(scope="module")
def wheelhouse(engine, base_image, tmp_path_factory) -> Path:
    """devpictl's wheel, its dependencies for the image's Python, and the build backend for `pipx install .`."""
    house = tmp_path_factory.mktemp("wheelhouse")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(house), str(ROOT)], check=True, env=host_pip_env())
    (wheel,) = house.glob("devpictl-*.whl")
    version = container_python(engine, base_image)
    subprocess.run(
        [*pip, "download", "-q", "--only-binary=:all:", "--python-version", version, "-d", str(house), str(wheel), "hatchling"],
        check=True,
        env=host_pip_env(),
    )
    return house


def run_offline(engine, image: str, script: str, wheelhouse: Path, source: Path | None = None) -> str:
    """Run ``script`` with sh in ``image`` with no network, the wheelhouse at /wh; return its output."""
    volumes = {str(wheelhouse): {"bind": "/wh", "mode": "ro"}}
    if source is not None:
        volumes[str(source)] = {"bind": "/src", "mode": "ro"}
    container = engine.containers.create(
        image,
        ["sh", "-ec", script],
        network_mode="none",
        volumes=volumes,
        labels={"devpictl.test": "1"},
        # pip (also pip inside pipx) finds everything in the wheelhouse, or fails.
        environment={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wh", "HOME": "/root"},
    )
    try:
        container.start()
        status = container.wait(timeout=600)["StatusCode"]
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True, v=True)
    assert status == 0, output
    return output


def check_commands(output: str) -> None:
    assert f"devpictl {__version__}\n" in output
    assert "Stand up a devpi-server PyPI cache in Docker" in output  # --help
    assert "FROM " in output and "devpi-server==" in output  # build --print: the template came in the wheel


def test_the_wheel_installs_into_a_bare_venv_and_runs(engine, base_image, wheelhouse):
    output = run_offline(
        engine,
        base_image,
        """
        python3 -m venv /opt/devpictl
        /opt/devpictl/bin/pip install -q devpictl
        cd /
        /opt/devpictl/bin/devpictl --version
        /opt/devpictl/bin/devpictl --help
        /opt/devpictl/bin/devpictl build --print
    """,
        wheelhouse,
    )
    check_commands(output)


@pytest.fixture(scope="module")
def pipx_image(engine, base_image) -> str:
    """The base image plus Debian's own pipx, as a new user gets it with apt."""
    tag = f"devpictl-test/pipx:{RUN_ID}"
    dockerfile = (
        f"FROM {base_image}\n"
        f"LABEL {TEST_LABEL}\n"
        "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pipx >/dev/null\n"
    )
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, forcerm=True, labels={"devpictl.test": "1"})
    yield tag
    engine.images.remove(tag, force=True)


def test_readme_install_command_works_with_debians_python_and_pipx(engine, pipx_image, wheelhouse, tmp_path):
    assert README_INSTALL in README.read_text(), "README no longer says how it installs: update this test"
    # A checkout of the repository as git has it (no .venv, no caches).
    source = tmp_path / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True).stdout
    files = [name for name in archive.decode().split("\0") if name]
    subprocess.run(["tar", "-C", str(ROOT), "-cf", str(tmp_path / "src.tar"), *files], check=True)
    subprocess.run(["tar", "-C", str(source), "-xf", str(tmp_path / "src.tar")], check=True)
    output = run_offline(
        engine,
        pipx_image,
        f"""
        test -f /usr/lib/python3*/EXTERNALLY-MANAGED   # the system Python refuses pip install (PEP 668)
        cp -r /src /tmp/devpictl && cd /tmp/devpictl
        {README_INSTALL}
        cd /
        ~/.local/bin/devpictl --version
        ~/.local/bin/devpictl --help
        ~/.local/bin/devpictl build --print
    """,
        wheelhouse,
        source,
    )
    check_commands(output)
