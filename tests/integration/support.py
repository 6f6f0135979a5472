"""Helpers shared by the reliability tests (security, outage, load): one cache per module, the test upstream."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.conftest import RUN_ID, free_port, installer_env, run_cli


def cache_env(name: str, data_dir: Path, image: str) -> dict[str, str]:
    return {"DEVPICTL_DATA_DIR": str(data_dir), "DEVPICTL_IMAGE": image, "DEVPICTL_NAME": name}


def up_on_test_upstream(env: dict[str, str], test_upstream: dict[str, str]) -> str:
    """`up` a cache on the test upstream (joined to its network, probing six); its index URL."""
    result = run_cli(
        "up", "--port", str(free_port()), "--network", test_upstream["network"],
        "--mirror", test_upstream["url"], "--probe-project", "six", "--json", env=env,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["index_url"]


def labelled(engine, name: str) -> tuple[list, list]:
    """(containers, volumes) labelled as the cache ``name``'s."""
    label = {"label": f"devpictl.instance={name}"}
    return engine.containers.list(all=True, filters=label), engine.volumes.list(filters=label)


def leftovers(engine, name: str) -> list[str]:
    """Names of every container and volume the cache ``name`` still has."""
    containers, volumes = labelled(engine, name)
    return [c.name for c in containers] + [v.name for v in volumes]


def remove_cache(engine, name: str, env: dict[str, str]) -> None:
    """`down --volumes`, then whatever is still labelled with the cache's name."""
    run_cli("down", "--volumes", "--yes", "--name", name, env=env)
    containers, volumes = labelled(engine, name)
    for container in containers:
        container.remove(force=True)
    for volume in volumes:
        volume.remove(force=True)


def one_error_line(result) -> str:
    """The command failed with exactly one `error:` line on stderr and no traceback."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output, result.output
    return errors[0]


def upstream_container(engine, service: str = "upstream"):
    """A pytest-docker test upstream of this run (the compose service ``service``)."""
    found = [
        c
        for c in engine.containers.list(all=True, filters={"label": f"com.docker.compose.service={service}"})
        if c.labels.get("com.docker.compose.project", "").endswith(RUN_ID)
    ]
    assert found, f"test upstream container {service!r} not found"
    return found[0]


def upstream_requests(engine, service: str, path: str) -> int:
    """How many GETs of ``path`` the test upstream ``service`` has answered (its http.server log)."""
    log = upstream_container(engine, service).logs(stdout=False, stderr=True).decode(errors="replace")
    return sum(f'"GET {path} HTTP/' in line for line in log.splitlines())


@contextlib.contextmanager
def upstream_stopped(engine) -> Iterator[None]:
    """Cut the test upstream for the block; it runs again afterwards, whatever happens."""
    upstream = upstream_container(engine)
    upstream.stop(timeout=2)
    try:
        yield
    finally:
        upstream.start()


def file_url(index_url: str, project: str, filename: str) -> tuple[str, str]:
    """(absolute URL, sha256 from the link) of ``filename`` on the project's simple page."""
    page = httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
    page.raise_for_status()
    match = re.search(rf'href="([^"]*{re.escape(filename)})#sha256=([0-9a-f]+)"', page.text)
    assert match, page.text
    return str(httpx.URL(f"{index_url}{project}/").join(match.group(1))), match.group(2)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pip_command(index_url: str, *args: str) -> list[str]:
    # No retries: an answer that fails must fail now, not after pip's back-off.
    return [sys.executable, "-m", "pip", *args, "--index-url", index_url, "--retries", "0", "--timeout", "30"]


def pip_run(index_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pip_command(index_url, *args), capture_output=True, text=True, env=installer_env(tmp_path), timeout=300
    )


def processes_args() -> str:
    """Every command line on this host."""
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout


def container_processes(container) -> str:
    """The command lines and environments of every process in the container."""
    script = (
        "import os\n"
        "for p in filter(str.isdigit, os.listdir('/proc')):\n"
        "    for f in ('cmdline', 'environ'):\n"
        "        try: print(open(f'/proc/{p}/{f}', 'rb').read().replace(b'\\0', b' ').decode('utf-8', 'replace'))\n"
        "        except OSError: pass\n"
    )
    result = container.exec_run(["/opt/devpi/bin/python", "-c", script], user="root")
    assert result.exit_code == 0, result.output
    return result.output.decode(errors="replace")
