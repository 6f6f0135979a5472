"""The blog workflow end to end on a real engine: up, install, switch upstream, restart, down.

The tests in this module run in order and share one cache.
"""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import (
    RUN_ID,
    cache_env,
    chromium,
    file_url,
    free_port,
    leftovers,
    one_error_line,
    pip_install,
    remove_cache,
    run_cli,
    sha256,
    simple_files,
    upstream_stopped,
    uv_install,
)

NAME = f"wf{RUN_ID}"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, ca_bundle, tmp_path_factory):
    """One cache on the official index, also attached to the test upstream's network."""
    data_dir = tmp_path_factory.mktemp("devpictl-data")
    env = cache_env(NAME, data_dir, devpi_image)
    info = {"env": env, "port": free_port(), "data_dir": data_dir}
    yield info
    remove_cache(engine, NAME, env)


def test_up_on_official_index_then_pip_install(cache, ca_bundle, test_upstream, tmp_path):
    result = run_cli(
        "up",
        "--port",
        str(cache["port"]),
        "--ca-bundle",
        ca_bundle,
        "--network",
        test_upstream["network"],
        "--json",
        env=cache["env"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["upstream"]["name"] == "pypi"
    assert out["index_url"] == f"http://127.0.0.1:{cache['port']}/root/pypi/+simple/"
    cache["index_url"] = out["index_url"]

    installed = pip_install(cache["index_url"], "six", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Successfully installed six" in installed.stdout
    installed = uv_install(cache["index_url"], "six", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "+ six==1.17.0" in installed.stderr, installed.stderr


def test_second_up_changes_nothing(cache):
    result = run_cli("up", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["changed"] is False, out
    assert out["upstream"]["name"] == "pypi"


def test_front_server_serves_stored_files_from_disk(cache, engine):
    url, digest = file_url(cache["index_url"], "six", "six-1.17.0-py2.py3-none-any.whl")
    response = httpx.get(url, trust_env=False)
    assert response.status_code == 200
    assert response.headers.get("X-Devpictl-Served-From") == "disk"
    assert sha256(response.content) == digest
    on_disk = engine.containers.get(f"devpictl-{NAME}").exec_run(["sha256sum", "/data/server/+files" + httpx.URL(url).path])
    assert on_disk.exit_code == 0 and on_disk.output.decode().split()[0] == digest


def test_front_server_caches_installer_pages(cache):
    url = f"{cache['index_url']}six/"
    first = httpx.get(url, headers={"User-Agent": INSTALLER_AGENT}, trust_env=False)
    second = httpx.get(url, headers={"User-Agent": INSTALLER_AGENT}, trust_env=False)
    assert second.headers.get("X-Devpictl-Cache") == "HIT", (first.headers, second.headers)
    assert second.text == first.text


def test_logs_show_the_front_servers_requests(cache):
    result = run_cli("logs", "--tail", "1000", env=cache["env"])
    assert result.exit_code == 0, result.output
    front = [line for line in result.stdout.splitlines() if " front " in line and "/root/pypi/+simple/six/" in line]
    assert any("cache=HIT" in line for line in front), result.stdout[-2000:]
    assert any("cache=MISS" in line for line in front), result.stdout[-2000:]
    assert "devpictl-healthcheck" not in result.stdout


def test_stats_count_the_front_servers_hits_and_misses(cache):
    result = run_cli("stats", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["pages"]["local"] >= 1 and data["pages"]["fetched"] >= 1  # the HIT and the MISS above
    assert data["files"]["local"] >= 1  # six's wheel from disk
    assert {"project": "six", "requests": data["top_projects"][0]["requests"]} == data["top_projects"][0]
    assert data["index_bytes"]["root/pypi"] > 10_000


def test_login_and_upload_reach_devpi_through_the_front(cache, upstream_root, tmp_path):
    base = cache["index_url"].split("/root/pypi/")[0]
    password = (cache["data_dir"] / "caches" / NAME / "root-password").read_text().strip()
    auth = ("root", password)
    json_headers = {"Accept": "application/json"}
    login = httpx.post(f"{base}/+login", json={"user": "root", "password": password}, headers=json_headers, trust_env=False)
    assert login.status_code == 200 and login.json()["result"]["password"]
    created = httpx.put(f"{base}/root/dev", json={"type": "stage", "bases": []}, auth=auth, headers=json_headers, trust_env=False)
    assert created.status_code in (200, 201), created.text
    wheel = next((upstream_root / "files").glob("six-1.16.0-*.whl"))
    upload = httpx.post(
        f"{base}/root/dev/",
        data={":action": "file_upload", "name": "six", "version": "1.16.0"},
        files={"content": (wheel.name, wheel.read_bytes())},
        auth=auth,
        trust_env=False,
    )
    assert upload.status_code == 200, upload.text
    # A private index's page is never cached: the upload shows at once.
    assert simple_files(f"{base}/root/dev/+simple/", "six") == [wheel.name]
    installed = pip_install(f"{base}/root/dev/+simple/", "six==1.16.0", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr


def test_status_reports_the_cache(cache):
    result = run_cli("status", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)
    assert st["state"] == "running"
    assert st["upstream_name"] == "pypi"
    assert st["devpi_version"] == "6.20.3"
    assert st["index_url"] == cache["index_url"]
    assert st["cache_bytes"] > 10_000  # six's wheel is stored
    assert st["front_server"] is True
    # `up` measured the official index's core metadata; the pages say what status says.
    page = httpx.get(f"{cache['index_url']}six/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
    assert ('data-core-metadata="true"' in page.text) is st["core_metadata"], (st, page.text)


def listed(cache) -> dict:
    """This cache's entry in `devpictl ls --json` (other caches on the engine may be listed too)."""
    result = run_cli("ls", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    (entry,) = [c for c in json.loads(result.stdout) if c["name"] == NAME]
    return entry


def test_ls_lists_the_running_cache(cache):
    entry = listed(cache)
    assert entry["state"] == "running"
    assert entry["index_url"] == cache["index_url"]
    assert entry["upstream_name"] == "pypi"
    assert entry["volume"] == f"devpictl-{NAME}-data"


def test_a_person_at_the_cache_url_sees_how_to_use_it(cache, tmp_path):
    root = cache["index_url"].removesuffix("root/pypi/+simple/")
    dom = chromium(tmp_path, "--dump-dom", root)
    assert dom.returncode == 0, dom.stderr
    page = " ".join(re.sub(r"<[^>]+>", " ", dom.stdout).split())
    assert "PyPI cache" in page
    assert f"Index URL {cache['index_url']}" in page
    assert f"pip config set global.index-url {cache['index_url']}" in page
    assert f"export UV_DEFAULT_INDEX={cache['index_url']}" in page
    assert "poetry source add --priority=primary devpictl" in page
    # Filled in by the page from devpi and the front server, after it loaded.
    assert re.search(r"Upstream https://\S+ Cache size", page), page
    assert re.search(r"Cache size \d+(\.\d+)? [kMG]B \(counted ", page), page
    # The pip and uv installs above, counted in the container: the hit ratio and a bar for this hour.
    assert re.search(r"Hit ratio \d+% of \d+ pages, files and metadata served from the cache, since ", page), page
    assert '<figure id="hourly">' in dom.stdout and 'class="hour"' in dom.stdout, dom.stdout[-3000:]
    shot = tmp_path / "cache-page.png"
    taken = chromium(tmp_path, "--window-size=1000,1300", f"--screenshot={shot}", root)
    assert taken.returncode == 0 and shot.stat().st_size > 20_000, taken.stderr
    # Scripts and devpi's own clients still get devpi's answer at /.
    answer = httpx.get(root, headers={"Accept": "application/json"}, trust_env=False)
    assert answer.headers["content-type"].startswith("application/json"), answer.text[:200]


def test_root_password_is_nowhere_to_be_seen(cache, engine):
    password = (cache["data_dir"] / "caches" / NAME / "root-password").read_text().strip()
    assert len(password) >= 24
    container = engine.containers.get(f"devpictl-{NAME}")
    inspect = json.dumps(container.attrs)
    assert password not in inspect
    assert password not in container.logs().decode(errors="replace")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert password not in ps
    # ... and the image does not run devpi as root.
    # The uid of every devpi-server process (not the exec user): from /proc, which needs no ps in the image.
    uids = (
        container.exec_run(
            [
                "sh",
                "-c",
                "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^[^ ]*python[^ ]* [^ ]*devpi-server' && awk '/^Uid:/ {print $2}' $p/status; done",
            ],
            user="root",
        )
        .output.decode()
        .split()
    )
    assert uids and set(uids) == {"3141"}, uids
    # anonymous users may not create users (restrict-modify root)
    response = httpx.put(
        f"http://127.0.0.1:{cache['port']}/intruder",
        json={"password": "x"},
        headers={"Accept": "application/json"},
        trust_env=False,
    )
    assert response.status_code in (401, 403), response.text


def test_set_upstream_refreshes_a_cached_project(cache, test_upstream, tmp_path):
    before = simple_files(cache["index_url"], "six")
    assert "six-1.17.0-py2.py3-none-any.whl" in before  # cached from the official index

    result = run_cli("set-upstream", test_upstream["url"], "--probe-project", "six", "--json", env=cache["env"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["previous"]["name"] == "pypi"
    assert out["upstream"]["url"] == test_upstream["url"]

    # At once, not after mirror_cache_expiry: the page lists the new upstream's files only,
    # and the front server's cached copy of the old page is gone.
    assert simple_files(cache["index_url"], "six") == ["six-1.16.0-py2.py3-none-any.whl"]
    # An unpinned install now resolves the new upstream's version, not the cached newer one.
    installed = pip_install(cache["index_url"], "six", tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Successfully installed six-1.16.0" in installed.stdout, installed.stdout


def test_set_upstream_refuses_a_dead_upstream(cache):
    result = run_cli("set-upstream", "http://127.0.0.1:9/simple", env=cache["env"])
    assert result.exit_code == 5, result.output
    assert "--no-check" in one_error_line(result)
    st = json.loads(run_cli("status", "--json", env=cache["env"]).stdout)
    assert st["upstream"] == "http://upstream:8080/simple"  # unchanged


def test_down_then_up_serves_cached_files_with_the_upstream_gone(cache, engine, test_upstream, tmp_path):
    result = run_cli("down", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert engine.volumes.get(f"devpictl-{NAME}-data")  # the cache survives `down`
    entry = listed(cache)
    assert (entry["state"], entry["volume"]) == ("down", f"devpictl-{NAME}-data")
    assert entry["next_step"] == f"down, data kept: devpictl up --name {NAME} brings it back"

    with upstream_stopped(engine):
        # Port, network and CA bundle come back from what the first `up` remembered.
        result = run_cli("up", "--probe-project", "six", "--timeout", "120", "--json", env=cache["env"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["index_url"] == cache["index_url"]
        installed = pip_install(cache["index_url"], "six==1.16.0", tmp_path)
        assert installed.returncode == 0, installed.stdout + installed.stderr


def test_down_volumes_deletes_the_cache(cache, engine):
    result = run_cli("down", "--volumes", "--yes", env=cache["env"])
    assert result.exit_code == 0, result.output
    assert leftovers(engine, NAME) == []
    assert not (cache["data_dir"] / "caches" / NAME / "root-password").exists()
