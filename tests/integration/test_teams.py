"""Team indexes on a real engine: index and user made by devpictl, a twine upload with what devpictl wrote,
pip and uv installing the upload and a public dependency through the one URL pip-config wrote, no anonymous
upload, prune keeping the upload, backup and restore keeping index, user and upload, and a replica holding it.

One cache serves every step, in order (CI time is tight): each builds on what the one before left.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.support import (
    RUN_ID,
    cache_env,
    free_port,
    installer_env,
    remove_cache,
    run_cli,
)
from tests.integration.test_replicas import wait_for
from tests.integration.wheels import make_wheel

NAME = f"team{RUN_ID}"
COPY = f"teamcopy{RUN_ID}"
REPLICA = f"teamrep{RUN_ID}"
PROJECT = "dpctl-team"
WHEEL = "dpctl_team-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def team(engine, devpi_image, test_upstream, tmp_path_factory):
    data = tmp_path_factory.mktemp("devpictl-data")
    env = cache_env(NAME, data, devpi_image)
    common = ["--network", test_upstream["network"], "--mirror", test_upstream["url"], "--probe-project", "six"]
    up = run_cli("up", "--port", str(free_port()), *common, "--json", env=env)
    assert up.exit_code == 0, up.output
    home = tmp_path_factory.mktemp("home")
    state = {"env": env, "data": data, "home": home, "common": common, "base": json.loads(up.stdout)["index_url"].split("/root/pypi/")[0]}
    yield state
    for name in (REPLICA, COPY, NAME):
        remove_cache(engine, name, {**env, "DEVPICTL_NAME": name})


def user_env(team) -> dict[str, str]:
    """A user's environment: HOME (and so ~/.pypirc, pip.conf, uv.toml) in the test's directory, no host installer settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_", "XDG_"))}
    home = team["home"]
    return {
        **env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    }


def cli(team, *args: str, name: str = NAME):
    return run_cli(*args, env={**user_env(team), **team["env"], "DEVPICTL_NAME": name})


def test_index_and_user_are_made_and_twine_uploads_with_what_devpictl_wrote(team, tmp_path):
    made = cli(team, "index", "create", "team/dev", "--json")
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert answer["bases"] == ["root/pypi"] and answer["upload_by"] == ["team"] and answer["user_created"] == "team"
    assert answer["index_url"] == f"{team['base']}/team/dev/+simple/"
    user = cli(team, "user", "create", "ci", "--upload-to", "team/dev", "--json")
    assert user.exit_code == 0, user.output
    kept = Path(json.loads(user.stdout)["password_file"])
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    secret = kept.read_text().strip()
    assert secret not in made.output + user.output

    written = cli(team, "upload-config", "--index", "team/dev", "--user", "ci", "--write")
    assert written.exit_code == 0, written.output
    assert secret not in written.output
    pypirc = team["home"] / ".pypirc"
    assert stat.S_IMODE(pypirc.stat().st_mode) == 0o600

    wheel = make_wheel(tmp_path, PROJECT, "1.0", ["six"])  # ours, needing a public project from the mirror
    twine = [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar", "-r", "devpictl-team-dev", str(wheel)]
    env = {**user_env(team), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    uploaded = subprocess.run(twine, capture_output=True, text=True, env=env, timeout=120)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert secret not in uploaded.stdout + uploaded.stderr
    shown = cli(team, "index", "show", "team/dev", "--json")
    assert json.loads(shown.stdout)["projects"] == [PROJECT], shown.output


def test_anonymous_uploads_are_refused(team, tmp_path):
    wheel = make_wheel(tmp_path, "dpctl-anon", "1.0", [])
    answer = httpx.post(
        f"{team['base']}/team/dev/",
        data={":action": "file_upload", "name": "dpctl-anon", "version": "1.0"},
        files={"content": (wheel.name, wheel.read_bytes())},
        trust_env=False,
        timeout=60,
    )
    assert answer.status_code in (401, 403), (answer.status_code, answer.text)
    shown = cli(team, "index", "show", "team/dev", "--json")
    assert json.loads(shown.stdout)["projects"] == [PROJECT]


def installed(team, tmp_path, tool: str) -> subprocess.CompletedProcess:
    """``tool`` (pip or uv) installing the upload with nothing but the files pip-config wrote in HOME."""
    target = tmp_path / f"{tool}-target"
    if tool == "pip":
        command = [sys.executable, "-m", "pip", "install", "--target", str(target), PROJECT]
        env = user_env(team)
    else:
        import uv

        command = [uv.find_uv_bin(), "pip", "install", "--target", str(target), PROJECT]
        env = {**user_env(team), "UV_NO_CACHE": "1", "UV_PYTHON": sys.executable}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_pip_and_uv_install_the_upload_and_its_public_dependency_through_the_one_url(team, tmp_path):
    written = cli(team, "pip-config", "--index", "team/dev", "--tool", "pip,uv", "--write", "--json")
    assert written.exit_code == 0, written.output
    assert json.loads(written.stdout)["index_url"] == f"{team['base']}/team/dev/+simple/"
    pip = installed(team, tmp_path, "pip")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert "Successfully installed dpctl-team-1.0 six-1.16.0" in pip.stdout, pip.stdout
    uv = installed(team, tmp_path, "uv")
    assert uv.returncode == 0, uv.stdout + uv.stderr
    assert "dpctl-team==1.0" in uv.stderr and "six==1.16.0" in uv.stderr, uv.stderr


def test_prune_leaves_the_upload(team, engine, tmp_path):
    pruned = cli(team, "prune", "--max-size", "0", "--json")
    assert pruned.exit_code == 0, pruned.output
    assert all("/team/dev/" not in item["file"] for item in json.loads(pruned.stdout)["removed"])
    found = engine.containers.get(f"devpictl-{NAME}").exec_run(["find", "/data/server/+files/team/dev", "-name", WHEEL])
    assert found.output.decode().strip().endswith(WHEEL), found.output
    again = installed(team, tmp_path, "pip")  # six comes from the upstream again, the upload from the disk
    assert again.returncode == 0, again.stdout + again.stderr


def test_backup_and_restore_into_a_new_cache_keep_index_user_and_upload(team, devpi_image, tmp_path):
    archive = tmp_path / "team.tar.gz"
    backup = cli(team, "backup", str(archive))
    assert backup.exit_code == 0, backup.output
    restored = cli(team, "restore", str(archive), "--image", devpi_image, name=COPY)
    assert restored.exit_code == 0, restored.output
    up = cli(team, "up", "--port", str(free_port()), *team["common"], "--json", name=COPY)
    assert up.exit_code == 0, up.output
    base = json.loads(up.stdout)["index_url"].split("/root/pypi/")[0]
    indexes = json.loads(cli(team, "index", "ls", "--json", name=COPY).stdout)["indexes"]
    assert [i["upload_by"] for i in indexes if i["index"] == "team/dev"] == [["team", "ci"]], indexes
    users = {u["user"]: u for u in json.loads(cli(team, "user", "ls", "--json", name=COPY).stdout)["users"]}
    assert users["ci"]["upload_to"] == ["team/dev"] and users["ci"]["password_file"], users  # its password came along
    password = Path(users["ci"]["password_file"]).read_text().strip()
    login = httpx.post(f"{base}/+login", json={"user": "ci", "password": password}, headers={"Accept": "application/json"}, trust_env=False)
    assert login.status_code == 200, login.text
    target = tmp_path / "copy-target"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--target", str(target), "--index-url", f"{base}/team/dev/+simple/", PROJECT],
        capture_output=True,
        text=True,
        env=installer_env(tmp_path),
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "dpctl_team").is_dir() or any(target.glob("dpctl_team*")), list(target.iterdir())


def test_the_upload_is_on_a_replica(team, engine, tmp_path):
    secret = team["data"] / "primary.secret"
    exported = cli(team, "password", "--replica-secret", str(secret))
    assert exported.exit_code == 0, exported.output
    replica = cli(
        team,
        "up",
        "--port",
        str(free_port()),
        "--network",
        team["common"][1],
        "--replica-of",
        f"http://devpictl-{NAME}:3141",
        "--replica-secret",
        str(secret),
        "--probe-project",
        "six",
        "--json",
        name=REPLICA,
    )
    assert replica.exit_code == 0, replica.output
    base = json.loads(replica.stdout)["index_url"].split("/root/pypi/")[0]
    listed = json.loads(cli(team, "index", "ls", "--json", name=REPLICA).stdout)["indexes"]
    assert "team/dev" in [i["index"] for i in listed], listed
    refused = cli(team, "index", "create", "team/other", name=REPLICA)
    assert refused.exit_code == 4 and "is a replica of" in refused.stderr, refused.output

    def held() -> bool:
        found = engine.containers.get(f"devpictl-{REPLICA}").exec_run(["find", "/data/server/+files/team/dev", "-name", WHEEL])
        return WHEEL in found.output.decode()

    wait_for("the upload on the replica's disk", held)
    page = httpx.get(f"{base}/team/dev/+simple/{PROJECT}/", headers={"User-Agent": "pip/24.0"}, trust_env=False, timeout=30)
    assert WHEEL in page.text, page.text
