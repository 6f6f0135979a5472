"""A backup with --include-files of a cache holding a long-named wheel restores into a new cache that keeps its settings.

The new cache comes up with the CA bundle the first was given, and serves the wheel with the upstream stopped.
The tests run in order.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from devpictl import layout
from tests.integration.support import RUN_ID, free_port, pip_install, remove_cache, run_cli, up_answer, upstream_stopped
from tests.integration.wheels import LONG_NAMED

ORIGINAL = f"lng{RUN_ID}"
COPY = f"lngcopy{RUN_ID}"
PROJECT, VERSION = LONG_NAMED[0], LONG_NAMED[1]
WHEEL = f"{PROJECT.replace('-', '_')}-{VERSION}-py3-none-any.whl"


@pytest.fixture(scope="module")
def state(engine, devpi_image, ca_bundle, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devpictl-data-restore")
    info = {"env": {"DEVPICTL_DATA_DIR": str(data_dir), "DEVPICTL_IMAGE": devpi_image}, "dir": tmp_path_factory.mktemp("backups")}
    yield info
    for name in (ORIGINAL, COPY):
        remove_cache(engine, name, info["env"])


def test_a_cache_holding_a_long_named_wheel(state, test_upstream, ca_bundle, tmp_path):
    answer = up_answer({**state["env"], "DEVPICTL_NAME": ORIGINAL}, test_upstream, "--ca-bundle", ca_bundle)
    done = pip_install(answer["index_url"], f"{PROJECT}=={VERSION}", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_backup_include_files_stores_the_long_name_under_the_export(state):
    archive = state["dir"] / "full.tar.gz"
    result = run_cli("backup", str(archive), "--name", ORIGINAL, "--include-files", env=state["env"])
    assert result.exit_code == 0, result.output
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    [stored] = [n for n in names if n.endswith(WHEEL)]
    assert stored.startswith("devpi-export/") and len(stored) > 100, stored


def test_restore_into_a_new_cache_that_comes_up_with_its_ca_bundle(state, engine, ca_bundle):
    result = run_cli("restore", "--name", COPY, str(state["dir"] / "full.tar.gz"), env=state["env"])
    assert result.exit_code == 0, result.output
    assert "kept the settings of cache" in result.stdout and "ca_bundle" in result.stdout, result.stdout
    # The original still publishes its port: the copy takes another.
    up = run_cli("up", "--name", COPY, "--port", str(free_port()), "--json", env=state["env"])
    assert up.exit_code == 0, up.output
    state["index_url"] = json.loads(up.stdout)["index_url"]
    container = engine.containers.get(f"devpictl-{COPY}")
    code, handed = container.exec_run(["cat", f"{layout.RUN_DIR}/{layout.CA_BUNDLE}"])
    assert code == 0 and handed == Path(ca_bundle).read_bytes()


def test_the_copy_serves_the_wheel_with_the_upstream_stopped(state, engine, tmp_path):
    with upstream_stopped(engine):
        done = pip_install(state["index_url"], f"{PROJECT}=={VERSION}", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
