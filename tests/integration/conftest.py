"""Fixtures for tests against a real Docker engine and a real devpi-server.

Docker tests skip where no engine answers, but FAIL when DEVPICTL_REQUIRE_DOCKER=1
(as .ci/run sets), so a green CI cannot hide a skipped suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.mirror_roots import make_bad_root, make_fallback_root
from tests.integration.support import RUN_ID, TEST_LABEL, compose_upstream, free_port, host_pip_env, run_cli
from tests.integration.wheels import LONG_NAMED, make_project_set, make_wheel, wheel_metadata

HERE = Path(__file__).parent
# A pinned real wheel the test upstream serves; the official index has newer ones.
UPSTREAM_WHEELS = ["six==1.16.0"]


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine():
    import docker
    import docker.errors

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        message = f"no Docker engine answers: {exc}"
        if os.environ.get("DEVPICTL_REQUIRE_DOCKER") == "1":
            pytest.fail(message + " (DEVPICTL_REQUIRE_DOCKER=1 makes this a failure)")
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def remove_install_stages(engine):
    """Builds keep their install stage (devpictl.stage=install) for the next build; the tests remove theirs."""
    import docker.errors

    stages = {"label": "devpictl.stage=install"}
    before = {image.id for image in engine.images.list(all=True, filters=stages)}
    yield
    for image in engine.images.list(all=True, filters=stages):
        if image.id not in before:
            with contextlib.suppress(docker.errors.APIError):
                engine.images.remove(image.id, force=True)


@pytest.fixture(scope="session")
def base_image(engine):
    name = os.environ.get("DEVPICTL_TEST_BASE_IMAGE", "devpictl-test-base:bookworm")
    try:
        engine.images.get(name)
    except Exception:
        pytest.fail(f"base image {name} is missing: run `bash tests/images/make-base-image.sh {name}` (tests/run.sh does)")
    return name


@pytest.fixture(scope="session")
def ca_bundle():
    """The host's trust bundle; on a TLS-inspecting network it holds the proxy's CA."""
    path = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return path


@pytest.fixture(scope="session", autouse=True)
def label_everything():
    """Everything devpictl creates in these tests carries devpictl.test=1."""
    old = os.environ.get("DEVPICTL_LABELS")
    os.environ["DEVPICTL_LABELS"] = TEST_LABEL
    yield
    if old is None:
        os.environ.pop("DEVPICTL_LABELS", None)
    else:
        os.environ["DEVPICTL_LABELS"] = old


@pytest.fixture(scope="session")
def devpi_image(engine, base_image, ca_bundle):
    """The devpictl image, built once from the template with --ca-bundle; removed at the end."""
    tag = f"devpictl-test/devpi:{RUN_ID}"
    result = run_cli("build", "--image", tag, "--base-image", base_image, "--ca-bundle", ca_bundle)
    assert result.exit_code == 0, result.output
    yield tag
    engine.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def made_wheels(tmp_path_factory) -> list[Path]:
    """Small wheels made here (tests/integration/wheels.py): a dependency tree, and one of a few MB."""
    return make_project_set(tmp_path_factory.mktemp("made-wheels"))


@pytest.fixture(scope="session")
def upstream_root(tmp_path_factory, made_wheels):
    """A PEP 503 tree of real wheels for the test upstream to serve; no core metadata files."""
    root = tmp_path_factory.mktemp("upstream")
    files = root / "files"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(files), *UPSTREAM_WHEELS],
        check=True,
        env=host_pip_env(),
    )
    for wheel in made_wheels:
        shutil.copy(wheel, files / wheel.name)
    make_wheel(files, *LONG_NAMED)
    write_simple_index(root)
    return root


@pytest.fixture(scope="session")
def metadata_upstream_root(tmp_path_factory, made_wheels):
    """The same made wheels, each with its <wheel>.metadata (PEP 658), announced with its sha256."""
    root = tmp_path_factory.mktemp("metadata-upstream")
    files = root / "files"
    files.mkdir()
    for wheel in made_wheels:
        shutil.copy(wheel, files / wheel.name)
        (files / f"{wheel.name}.metadata").write_bytes(wheel_metadata(wheel))
    write_simple_index(root, core_metadata=True)
    return root


def write_simple_index(root: Path, core_metadata: bool = False) -> None:
    simple = root / "simple"
    shutil.rmtree(simple, ignore_errors=True)
    projects: dict[str, list[Path]] = {}
    for wheel in sorted((root / "files").glob("*.whl")):
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        projects.setdefault(name, []).append(wheel)

    def link(wheel: Path) -> str:
        attrs = ""
        if core_metadata:
            digest = hashlib.sha256((wheel.parent / f"{wheel.name}.metadata").read_bytes()).hexdigest()
            attrs = f' data-dist-info-metadata="sha256={digest}" data-core-metadata="sha256={digest}"'
        return f'<a href="../../files/{wheel.name}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"{attrs}>{wheel.name}</a><br>'

    for name, wheels in projects.items():
        page = simple / name
        page.mkdir(parents=True)
        links = "\n".join(link(w) for w in wheels)
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}\n</body></html>\n")
    (simple / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n" + "\n".join(f'<a href="{n}/">{n}</a>' for n in projects) + "\n</body></html>\n"
    )


# --- pytest-docker: the test upstream ---------------------------------------


@pytest.fixture(scope="session")
def docker_compose_command():
    return "docker-compose" if shutil.which("docker-compose") else "docker compose"


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(HERE / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name():
    return f"devpictltest{RUN_ID}"


@pytest.fixture(scope="session")
def fallback_roots(tmp_path_factory, upstream_root) -> tuple[Path, Path]:
    """The trees of the fallback test upstreams (tests/integration/mirror_roots.py): (fallback, bad)."""
    fallback = make_fallback_root(tmp_path_factory.mktemp("fallback"), upstream_root / "files", "http://fallback:8080")
    return fallback, make_bad_root(tmp_path_factory.mktemp("bad-fallback"), fallback)


@pytest.fixture(scope="session")
def docker_setup(base_image, upstream_root, metadata_upstream_root, fallback_roots):
    # docker-compose.yml reads these.
    os.environ["DEVPICTL_TEST_UPSTREAM_ROOT"] = str(upstream_root)
    os.environ["DEVPICTL_TEST_METADATA_UPSTREAM_ROOT"] = str(metadata_upstream_root)
    os.environ["DEVPICTL_TEST_FALLBACK_ROOT"] = str(fallback_roots[0])
    os.environ["DEVPICTL_TEST_BAD_FALLBACK_ROOT"] = str(fallback_roots[1])
    os.environ["DEVPICTL_TEST_BASE_IMAGE"] = base_image
    os.environ["DEVPICTL_TEST_UPSTREAM_PORT"] = str(free_port())
    # docker-compose v1 has no `up --wait`; readiness is checked below.
    return ["up -d"]


@pytest.fixture(scope="session")
def docker_cleanup():
    return ["down -v --remove-orphans"]


@pytest.fixture(scope="session")
def test_upstream(docker_services, docker_compose_project_name):
    """The test upstream (six, and the made wheels without core metadata files)."""
    return compose_upstream(docker_services, docker_compose_project_name, "upstream", "six")


@pytest.fixture(scope="session")
def metadata_upstream(docker_services, docker_compose_project_name):
    """The second test upstream: the made wheels with their core metadata files, announced."""
    return compose_upstream(docker_services, docker_compose_project_name, "upstream-meta", "dpctl-app")


@pytest.fixture(scope="session")
def ranged_upstream(docker_services, docker_compose_project_name):
    """`upstream`'s index, answering ranges and HEADs with Accept-Ranges as real file hosts do."""
    return compose_upstream(docker_services, docker_compose_project_name, "upstream-ranges", "six")


@pytest.fixture(scope="session")
def fallback_upstreams(docker_services, docker_compose_project_name) -> tuple[dict[str, str], dict[str, str]]:
    """The fallback test upstreams (tests/integration/mirror_roots.py): (a release behind, at
    /pypi/web/simple; corrupt files)."""
    fallback = compose_upstream(docker_services, docker_compose_project_name, "fallback", "six", path="/pypi/web/simple")
    return fallback, compose_upstream(docker_services, docker_compose_project_name, "fallback-bad", "six")
