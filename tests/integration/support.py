"""Helpers the integration tests share: running the CLI, free ports, pip and uv without host settings, the test
upstreams, one cache per module. conftest.py holds the fixtures."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from typer.testing import CliRunner

from devpictl import layout
from devpictl.cli import app
from devpictl.devpi import INSTALLER_AGENT

TEST_LABEL = "devpictl.test=1"  # on everything the tests create
RUN_ID = f"{os.getpid()}"  # in every name the tests give, so parallel runs do not meet


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result


def host_pip_env() -> dict[str, str]:
    """For pip on the host fetching test inputs: pip's defaults, but the host's trust bundle (PIP_CERT)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    return {**env, "PIP_CONFIG_FILE": os.devnull}


def compose_upstream(
    docker_services, project_name: str, service: str, probe: str, status: int = 200, path: str = "/simple"
) -> dict[str, str]:
    """A compose service of the test, once it answers ``probe``'s page with ``status``: its URL on the
    compose network, its host URL, and its network."""
    import httpx

    port = docker_services.port_for(service, 8080)
    host_url = f"http://127.0.0.1:{port}{path}"

    def answers() -> bool:
        try:
            return httpx.get(f"{host_url}/{probe}/", timeout=2, trust_env=False).status_code == status
        except httpx.HTTPError:
            return False

    docker_services.wait_until_responsive(check=answers, timeout=60, pause=0.5)
    return {
        "url": f"http://{service}:8080{path}",
        "host_url": host_url,
        "network": f"{project_name}_default",
        "service": service,
    }


def status_json(env: dict[str, str], name: str | None = None) -> dict:
    """`devpictl status --json` of the cache that ``env`` (or ``name``) selects."""
    result = run_cli("status", *(["--name", name] if name else []), "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def installer_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which pip sees no host settings, only the flags a test gives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_CACHE_DIR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HOME"] = str(tmp_path)
    return env


# What would make an installer trust a CA other than the one its config names: pip's requests takes these
# over any cert (pip-config notes it), uv takes SSL_CERT_FILE. None comes from the host.
TRUST_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def configured_installer_env(tmp_path: Path, home: Path) -> dict[str, str]:
    """pip and uv as a user whose config files in ``home`` pip-config wrote: no PIP_CONFIG_FILE, no UV_NO_CONFIG, no trust from the environment."""
    env = installer_env(tmp_path)
    env.pop("PIP_CONFIG_FILE")
    env = {k: v for k, v in env.items() if not k.startswith("UV_") and k not in TRUST_ENV}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), UV_NO_CACHE="1", UV_PYTHON=sys.executable)
    return env


def configured_pip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``pip ARGS`` as that user (``configured_installer_env``), never asking for input."""
    return subprocess.run([sys.executable, "-m", "pip", *args, "--no-input"], capture_output=True, text=True, env=env, timeout=300)


def uv_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """uv with no cache, no configuration and no host settings: only what ``args`` say."""
    import uv

    env = installer_env(tmp_path)
    env = {k: v for k, v in env.items() if not k.startswith("UV_")}
    env.update(UV_NO_CACHE="1", UV_NO_CONFIG="1", UV_PYTHON=sys.executable)
    return subprocess.run([uv.find_uv_bin(), *args], capture_output=True, text=True, env=env, timeout=300)


def uv_install(index_url: str, requirement: str, tmp_path: Path) -> subprocess.CompletedProcess:
    target = tmp_path / f"uv-target-{hashlib.md5(requirement.encode()).hexdigest()[:8]}"
    return uv_run(tmp_path, "pip", "install", "--no-deps", "--target", str(target), "--index-url", index_url, requirement)


def pip_install(index_url: str, requirement: str, tmp_path: Path) -> subprocess.CompletedProcess:
    target = tmp_path / f"target-{hashlib.md5(requirement.encode()).hexdigest()[:8]}"
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), "--index-url", index_url, requirement],
        capture_output=True,
        text=True,
        env=installer_env(tmp_path),
        timeout=300,
    )


def cache_env(name: str, data_dir: Path, image: str) -> dict[str, str]:
    return {"DEVPICTL_DATA_DIR": str(data_dir), "DEVPICTL_IMAGE": image, "DEVPICTL_NAME": name}


def up_answer(env: dict[str, str], test_upstream: dict[str, str], *options: str, probe: str = "six") -> dict:
    """`up --json` of a cache on a test upstream (joined to its network, probing ``probe``), with ``options`` too."""
    result = run_cli(
        "up",
        "--port",
        str(free_port()),
        "--network",
        test_upstream["network"],
        "--mirror",
        test_upstream["url"],
        "--probe-project",
        probe,
        *options,
        "--json",
        env=env,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def up_on_test_upstream(env: dict[str, str], test_upstream: dict[str, str], *options: str) -> str:
    """`up` a cache on the test upstream; its index URL."""
    return up_answer(env, test_upstream, *options)["index_url"]


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
def upstream_stopped(engine, *services: str) -> Iterator[None]:
    """Cut the test upstreams ``services`` (the test upstream by default) for the block; they run again afterwards, whatever happens."""
    upstreams = [upstream_container(engine, service) for service in services or ("upstream",)]
    for upstream in upstreams:
        upstream.stop(timeout=2)
    try:
        yield
    finally:
        for upstream in upstreams:
            upstream.start()


def file_url(index_url: str, project: str, filename: str) -> tuple[str, str]:
    """(absolute URL, sha256 from the link) of ``filename`` on the project's simple page."""
    page = httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
    page.raise_for_status()
    match = re.search(rf'href="([^"]*{re.escape(filename)})#sha256=([0-9a-f]+)"', page.text)
    assert match, page.text
    return str(httpx.URL(f"{index_url}{project}/").join(match.group(1))), match.group(2)


def simple_files(index_url: str, project: str) -> list[str]:
    """The file names the cache's simple page of ``project`` lists, sorted, as an installer asks."""
    response = httpx.get(f"{index_url}{project}/", headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=30)
    response.raise_for_status()
    return sorted(re.findall(r">([^<]+\.(?:whl|tar\.gz|zip))</a>", response.text))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pip_command(index_url: str, *args: str) -> list[str]:
    # No retries: an answer that fails must fail now, not after pip's back-off.
    return [sys.executable, "-m", "pip", *args, "--index-url", index_url, "--retries", "0", "--timeout", "30"]


def pip_run(index_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(pip_command(index_url, *args), capture_output=True, text=True, env=installer_env(tmp_path), timeout=300)


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


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian's; tests/run.sh installs it), long enough for the page's own requests."""
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: tests/run.sh installs it with apt"
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def stored_files(container) -> list[str]:
    """Every file devpi has stored in the cache's volume."""
    result = container.exec_run(["find", "/data/server/+files", "-type", "f"])
    return sorted(result.output.decode().split()) if result.exit_code == 0 else []


def installer_requests(container, agent: str) -> list[str]:
    """The front server's access log lines of the requests whose user agent starts with ``agent`` (``"pip/"``, ``"uv/"``)."""
    log = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return [line for line in log.splitlines() if " front " in line and f'"{agent}' in line]


def devpi_page(container, project: str, accept: str) -> tuple[int, bytes]:
    """devpi's own answer for the page, asked on its port inside the container (nginx and first_pages.py left out)."""
    script = (
        "import sys, urllib.request, urllib.error\n"
        f"r = urllib.request.Request('http://127.0.0.1:{layout.DEVPI_PORT}/root/pypi/+simple/{project}/',"
        f" headers={{'Accept': {accept!r}, 'User-Agent': {INSTALLER_AGENT!r}}})\n"
        "try:\n"
        "    a = urllib.request.urlopen(r, timeout=30); sys.stdout.buffer.write(b'200 ' + a.read())\n"
        "except urllib.error.HTTPError as e:\n"
        "    sys.stdout.buffer.write(str(e.code).encode() + b' ')\n"
    )
    done = container.exec_run([layout.PYTHON, "-c", script])
    status, _, body = done.output.partition(b" ")
    return int(status), body


def recorded(container) -> set[str]:
    """The projects devpi has recorded pages of: its own list of them, on its port."""
    script = (
        "import json, urllib.request\n"
        f"r = urllib.request.Request('http://127.0.0.1:{layout.DEVPI_PORT}/root/pypi', headers={{'Accept': 'application/json'}})\n"
        "print(json.dumps(sorted(json.load(urllib.request.urlopen(r, timeout=30))['result']['projects'])))\n"
    )
    return set(json.loads(container.exec_run([layout.PYTHON, "-c", script]).output))


def wait_recorded(container, project: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while project not in recorded(container):
        assert time.monotonic() < deadline, f"devpi never recorded {project}"
        time.sleep(0.5)
