#!/usr/bin/env python3
"""Benchmark a devpictl cache against its references, in one run, as ratios.

    python bench/bench.py --base-image IMG [--ca-bundle FILE] [--runs 5]

It starts its own caches with `devpictl up` (name prefix ``bench``), fetches a pinned set
of real wheels (bench/wheels.txt) the way pip does (simple page with an installer
user agent, then the file, 8 at a time) and measures:

- cold: a fresh cache (official index upstream) against fetching from the official
  index directly; failed requests are counted;
- warm: the cache against nginx serving byte-identical pages and files from disk
  (the static limit) and against devpi alone (`up --no-front`);
- resolution: `uv pip compile` and `pip install --dry-run` of bench/resolve.txt through
  a fresh cache, directly, and through the warm cache; what the fresh cache stored, the CPU
  it and the installer used, and how many warm requests nginx passed to devpi; the newest
  pip too, in a venv of its own (the bench's pip may be old);
- 12 concurrent requests for one file a cache does not hold: bytes from the upstream;
- `up` to ready with the image already built, the cache's idle memory, and
  `devpictl --help` (against fixed targets: nothing to measure them against).

Every reference is measured in the same run; the cold runs go first, on caches nothing has
touched. It writes docs/performance.md and removes everything it created.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devpictl import layout, simplepage
from devpictl.pip import default_index_url

ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(__file__).resolve().parent / "wheels.txt"
RESOLVE = Path(__file__).resolve().parent / "resolve.txt"
PROBE = "tqdm"  # the caches' readiness probe: in neither set, so it warms nothing measured
COLD_CLIENTS = 12
COLD_FILE = "botocore==1.35.0"  # a 12.5 MB pure-Python wheel in neither set
AGENT = "pip/24.1.2 devpictl-bench"
CONCURRENCY = 8
LABEL = "devpictl.bench=1,devpictl.test=1"
SECTION = "<!-- section: "  # starts a section of docs/performance.md that another script writes
# docs/performance.md's section that bench/warm_speed.py writes; a run of this script keeps it.
WARM_BEGIN = "<!-- warm: written by bench/warm_speed.py -->"
WARM_END = "<!-- end of warm -->"


@dataclass
class Fetch:
    seconds: float
    failures: int
    nbytes: int
    names: list[str] = field(default_factory=list)  # the wheel files fetched, as the pages named them


def devpictl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devpictl", *args], env=env, capture_output=True, text=True)


def up(name: str, probe: str, *flags: str, env: dict[str, str]) -> str:
    """`devpictl up --json` of cache ``name`` on a free port, ready once ``probe``'s page lists files; its index URL."""
    out = must(devpictl("up", "--name", name, "--port", str(free_port()), "--probe-project", probe, "--json", *flags, env=env))
    return json.loads(out)["index_url"]


def bench_env(work: Path, image: str) -> dict[str, str]:
    """The environment the bench runs devpictl in: its own data and config under ``work``, the bench's label (and $DEVPICTL_LABELS), ``image``."""
    return {
        **os.environ,
        "DEVPICTL_DATA_DIR": str(work / "data"),
        "DEVPICTL_CONFIG_DIR": str(work / "config"),
        "DEVPICTL_LABELS": ",".join(filter(None, [LABEL, os.environ.get("DEVPICTL_LABELS")])),  # the bench's, and the caller's
        "DEVPICTL_IMAGE": image,
    }


def add_image_options(parser: argparse.ArgumentParser, *, base_image: bool = True) -> None:
    """--base-image and --ca-bundle, from DEVPICTL_BASE_IMAGE and DEVPICTL_CA_BUNDLE as devpictl takes them."""
    if base_image:
        given = os.environ.get("DEVPICTL_BASE_IMAGE")
        parser.add_argument("--base-image", default=given, required=not given, help="the image to build on [env: DEVPICTL_BASE_IMAGE]")
    parser.add_argument(
        "--ca-bundle",
        default=os.environ.get("DEVPICTL_CA_BUNDLE"),
        help="CA bundle the cache trusts for its upstream [env: DEVPICTL_CA_BUNDLE]",
    )


def make_tree(root: Path, names: list[str], releases: tuple[str, ...] = ("1.0",), content=str.encode) -> list[str]:
    """A static index under ``root`` (simple/NAME/index.html, files/): each project's ``releases`` as wheels of ``content(wheel)``.

    Readable by every user, so a static server in a container serves it; returns ``names``.
    """
    (root / "files").mkdir(parents=True)
    for name in names:
        page = root / "simple" / name
        page.mkdir(parents=True)
        links = []
        for release in releases:
            wheel = f"{name.replace('-', '_')}-{release}-py3-none-any.whl"
            data = content(wheel)
            (root / "files" / wheel).write_bytes(data)
            links.append(f'<a href="../../files/{wheel}#sha256={hashlib.sha256(data).hexdigest()}">{wheel}</a>')
        (page / "index.html").write_text("\n".join(links) + "\n")
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return names


def must(result: subprocess.CompletedProcess) -> str:
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, result.args[2:]))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def pins() -> list[str]:
    """The pinned set (bench/wheels.txt) as NAME==VERSION lines."""
    return [line.strip() for line in WHEELS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def project_of(wheel: str) -> str:
    return re.sub(r"[-_.]+", "-", wheel.split("-")[0]).lower()


def wheel_matches(filename: str, wanted: str) -> bool:
    """True when ``filename`` is the file ``wanted`` names: a wheel's file name, or NAME==VERSION's pure-Python wheel."""
    if "==" not in wanted:
        return filename == wanted
    project, version = wanted.split("==")
    prefix = f"{re.sub(r'[-_.]+', '_', project)}-{version}-".lower()
    return filename.lower().startswith(prefix) and filename.endswith("none-any.whl")


def fetch_set(index_url: str, wheels: list[str], *, verify: bool = True) -> Fetch:
    """Fetch each wheel as pip does: its simple page, then the file; 8 at a time.

    ``wheels`` are file names or NAME==VERSION pins; the pages say which file a pin is,
    so nothing needs fetching beforehand.
    """
    failures = 0
    nbytes = 0
    sizes: dict[str, int] = {}

    def one(client: httpx.Client, wanted: str) -> tuple[str, int]:
        project = wanted.split("==")[0] if "==" in wanted else wanted.split("-")[0]
        page_url = f"{index_url.rstrip('/')}/{re.sub(r'[-_.]+', '-', project).lower()}/"
        page = client.get(page_url, headers={"User-Agent": AGENT})
        page.raise_for_status()
        for link in simplepage.parse(page.text, str(page.url)):
            if wheel_matches(link.filename, wanted):
                response = client.get(link.url, headers={"User-Agent": AGENT})
                response.raise_for_status()
                if link.sha256 and hashlib.sha256(response.content).hexdigest() != link.sha256:
                    raise ValueError(f"{link.filename}: sha256 mismatch")
                return link.filename, len(response.content)
        raise LookupError(f"{wanted} not listed on {page_url}")

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    start = time.perf_counter()
    with httpx.Client(limits=limits, timeout=120, follow_redirects=True, verify=verify, trust_env=True) as client:
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            for future in [pool.submit(one, client, w) for w in wheels]:
                try:
                    name, size = future.result()
                    sizes[name] = size
                    nbytes += size
                except Exception as exc:  # counted, and shown: a benchmark must not hide failures
                    failures += 1
                    print(f"  failed: {exc}", file=sys.stderr)
    return Fetch(time.perf_counter() - start, failures, nbytes, sorted(sizes))


def median_fetch(index_url: str, wheels: list[str], runs: int) -> Fetch:
    results = [fetch_set(index_url, wheels) for _ in range(runs)]
    return Fetch(statistics.median(r.seconds for r in results), sum(r.failures for r in results), results[0].nbytes)


def official_simple_url() -> str:
    """pip's default index, as pip states it: the bench names no index host."""
    url = default_index_url()
    if url is None:
        sys.exit("bench: pip's default index is unknown (is pip installed?)")
    return url


def mirror_static_tree(index_url: str, wheels: list[str], tree: Path) -> None:
    """Copy the cache's installer pages and files to disk, at their URL paths."""
    with httpx.Client(trust_env=False, timeout=60) as client:
        for wheel in wheels:
            page_url = f"{index_url}{project_of(wheel)}/"
            page = client.get(page_url, headers={"User-Agent": AGENT})
            path = tree / httpx.URL(page_url).path.lstrip("/") / "index.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(page.content)
            for link in simplepage.parse(page.text, str(page.url)):
                if link.filename == wheel:
                    file_url = httpx.URL(link.url)
                    target = tree / file_url.path.lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(client.get(str(file_url)).content)


STATIC_CONF = """
worker_processes auto;
pid /tmp/nginx-static.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    client_body_temp_path /tmp/b; proxy_temp_path /tmp/p; fastcgi_temp_path /tmp/f; uwsgi_temp_path /tmp/u; scgi_temp_path /tmp/s;
    server { listen 8080; root /static; index index.html; }
}
"""


def run_static_nginx(engine, image: str, tree: Path, port: int):
    conf = tree.parent / "static-nginx.conf"
    conf.write_text(STATIC_CONF)
    os.chmod(tree.parent, 0o755)
    for path in [tree, *tree.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(conf, 0o644)
    return engine.containers.run(
        image,
        entrypoint=["nginx", "-e", "stderr", "-c", "/etc/static-nginx.conf", "-g", "daemon off;"],
        detach=True,
        labels={"devpictl.bench": "1", "devpictl.test": "1"},
        ports={"8080/tcp": ("127.0.0.1", port)},
        volumes={str(tree): {"bind": "/static", "mode": "ro"}, str(conf): {"bind": "/etc/static-nginx.conf", "mode": "ro"}},
        user="3141",
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, trust_env=False, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit(f"bench: {url} did not answer")


def memory_mb(engine, container_name: str) -> float:
    stats = engine.containers.get(container_name).stats(stream=False)
    usage = stats["memory_stats"]["usage"]
    cache = stats["memory_stats"].get("stats", {}).get("inactive_file", 0)
    return (usage - cache) / 1e6


def help_seconds(runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([shutil.which("devpictl") or "devpictl", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def clean_env(workdir: Path) -> dict[str, str]:
    """An environment in which pip and uv see no host settings and keep no cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(
        HOME=str(workdir),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CACHE="1",
        UV_NO_CONFIG="1",
        UV_PYTHON=sys.executable,
    )
    if os.environ.get("SSL_CERT_FILE"):
        env["PIP_CERT"] = os.environ["SSL_CERT_FILE"]  # pip trusts only certifi's bundle otherwise
    return env


@dataclass
class Resolution:
    seconds: float
    client_cpu: float  # user + system seconds of the installer: what no cache can take away

    def __str__(self) -> str:
        return f"{self.seconds:.2f} s (client CPU {self.client_cpu:.1f} s)"


def resolve(tool: str, index_url: str, workdir: Path, python: str = sys.executable) -> Resolution:
    """One resolution of bench/resolve.txt through ``index_url``: `uv pip compile` or ``python``'s `pip install --dry-run`."""
    if tool == "uv":
        import uv

        command = [uv.find_uv_bin(), "pip", "compile", "--quiet", "--index-url", index_url, "-o", os.devnull, str(RESOLVE)]
    else:
        command = [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--index-url",
            index_url,
            "-r",
            str(RESOLVE),
        ]
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(command, env=clean_env(workdir), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        sys.exit(f"bench: {tool} resolution through {index_url} failed:\n{done.stdout}{done.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Resolution(seconds, cpu)


def median_resolution(tool: str, index_url: str, workdir: Path, runs: int, python: str = sys.executable) -> Resolution:
    results = [resolve(tool, index_url, workdir, python) for _ in range(runs)]
    return Resolution(statistics.median(r.seconds for r in results), statistics.median(r.client_cpu for r in results))


def newest_pip(workdir: Path) -> tuple[str, str]:
    """(python, pip version) of a venv holding the newest pip: the bench's own pip may be old."""
    venv = workdir / "newest-pip"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=clean_env(workdir), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"upgrading pip failed: {(done.stdout + done.stderr).strip().splitlines()[-1:]}")
    return python, pip_version_of(python)


def local_metadata_index(tree: Path, workdir: Path) -> int:
    """Fill ``tree`` with a PEP 503 index of the wheels bench/resolve.txt resolves to (and the
    probe project), each with its ``.metadata`` announced with its sha256 (PEP 658/714), taken
    from the official index; return how many wheels it holds.

    The official index as some networks reach it announces no core metadata; this upstream
    does, so the benchmark shows what a cache gains from it wherever it runs.
    """
    import uv

    env = clean_env(workdir)
    lock = workdir / "resolved.txt"
    official = official_simple_url()
    for command in (
        [uv.find_uv_bin(), "pip", "compile", "--quiet", "--index-url", official, "-o", str(lock), str(RESOLVE)],
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--index-url",
            official,
            "-d",
            str(tree / "files"),
            "-r",
            str(lock),
            PROBE,
        ],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"making the local upstream failed: {(done.stdout + done.stderr).strip().splitlines()[-1:]}")
    projects: dict[str, list[str]] = {}
    for wheel in sorted((tree / "files").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1))
        (tree / "files" / f"{wheel.name}.metadata").write_bytes(metadata)
        digest, metadata_digest = hashlib.sha256(wheel.read_bytes()).hexdigest(), hashlib.sha256(metadata).hexdigest()
        projects.setdefault(project_of(wheel.name), []).append(
            f'<a href="../../files/{wheel.name}#sha256={digest}" data-dist-info-metadata="sha256={metadata_digest}" '
            f'data-core-metadata="sha256={metadata_digest}">{wheel.name}</a><br>'
        )
    for project, links in projects.items():
        page = tree / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return sum(len(links) for links in projects.values())


def stored_bytes(engine, container_name: str, path: str = "/data/server/+files") -> int:
    """Bytes of the files devpi has stored in the cache's volume (or of another directory there)."""
    result = engine.containers.get(container_name).exec_run(["du", "-sb", path])
    return int(result.output.split()[0]) if result.exit_code == 0 else 0


def range_bytes(engine, container_name: str) -> int:
    """Bytes of the ranges of files the front keeps (uv reading wheels the cache does not hold)."""
    return stored_bytes(engine, container_name, layout.RANGE_CACHE)


def cpu_seconds(engine, container_name: str) -> float:
    """CPU seconds the container (devpi and nginx) has used since it started."""
    stats = engine.containers.get(container_name).stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def front_requests(engine, container_name: str) -> list[str]:
    """The front server's access log lines of installers' requests (health checks left out)."""
    logs = engine.containers.get(container_name).logs(stdout=False, stderr=True).decode(errors="replace").splitlines()
    return [line for line in logs if " front " in line and "devpictl-healthcheck" not in line]


def passed_to_devpi(lines: list[str]) -> int:
    """How many of these requests nginx did not answer from its caches or the volume's disk."""
    return sum(1 for line in lines if "cache=HIT" not in line and "disk=disk" not in line)


def received_bytes(engine, container_name: str) -> int:
    """Bytes the container has received on its network interfaces (its upstream traffic)."""
    stats = engine.containers.get(container_name).stats(stream=False)
    return sum(net["rx_bytes"] for net in stats.get("networks", {}).values())


def wheel_link(index_url: str, pin: str) -> tuple[str, str]:
    """(URL, sha256) of ``pin``'s wheel on the index's page for it."""
    page = httpx.get(f"{index_url}{project_of(pin.split('==')[0])}/", headers={"User-Agent": AGENT}, trust_env=False, timeout=120)
    link = next(link for link in simplepage.parse(page.text, str(page.url)) if wheel_matches(link.filename, pin))
    return link.url, link.sha256 or ""


def concurrent_cold_file(url: str, digest: str, clients: int) -> tuple[list[bool], int]:
    """``clients`` GETs at once of a file the cache does not hold: (whether each got the right bytes, its size)."""

    def one(_: int) -> tuple[bool, int]:
        with httpx.Client(trust_env=False, timeout=600) as client:
            response = client.get(url, headers={"User-Agent": AGENT})
            return response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == digest, len(response.content)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(one, range(clients)))
    return [ok for ok, _ in answers], max(size for _, size in answers)


def pip_version_of(python: str) -> str:
    return subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split()[1]


def machine() -> str:
    """The machine, as it describes itself."""
    import platform

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    engine = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
    import uv

    uv_version = subprocess.run([uv.find_uv_bin(), "--version"], capture_output=True, text=True).stdout.strip()
    pip_version = f"pip {pip_version_of(sys.executable)}"
    proxy = (
        "an HTTPS proxy from the environment"
        if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy"))
        else "no proxy in the environment"
    )
    load = os.getloadavg()[1]  # other work on the machine skews every figure; say how much there was
    return (
        f"{os.cpu_count()} CPUs ({cpu}), load average {load:.1f} over the 5 minutes before the run, "
        f"{mem_kb / 2**20:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Docker Engine {engine}, Python {platform.python_version()}, {uv_version}, {pip_version}; "
        f"upstream: the official index, {proxy}"
    )


LOADS: list[float] = []  # the 1-minute load average at each stage of the run


def stage(message: str) -> None:
    """Say what the run does now, and note how busy the machine is."""
    LOADS.append(os.getloadavg()[0])
    print(f"{message} (load {LOADS[-1]:.1f})", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="devpictl-bench/devpi:latest", help="image tag to build and run")
    add_image_options(parser)
    parser.add_argument("--runs", type=int, default=5, help="warm runs per target (median)")
    parser.add_argument("--resolve-runs", type=int, default=3, help="direct and warm resolutions per tool (median)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument(
        "--https-only", action="store_true", help="measure only warm serving over HTTPS against HTTP, into its own section of --out"
    )
    parser.add_argument(
        "--name-prefix", default="bench", help="the caches' names start with this (another run of the bench may be using the default)"
    )
    args = parser.parse_args()
    if args.https_only:
        https_main(args)
        return

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-"))
    env = bench_env(work, args.image)
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []
    p = args.name_prefix
    names = [p, f"{p}-stock", f"{p}-up", f"{p}-uv", f"{p}-pip", f"{p}-local"]
    static = local = network = None

    def up_cache(name: str, *flags: str) -> str:
        # The readiness probe is a project outside both sets, so it warms nothing measured.
        return up(name, PROBE, *flags, *ca, env=env)

    try:
        description = machine()
        stage(f"• building {args.image}")
        must(devpictl("build", "--image", args.image, "--base-image", args.base_image, *ca, env=env))

        stage("• up to ready (image built, fresh volume)")
        start = time.perf_counter()
        must(devpictl("up", "--name", f"{p}-up", "--port", str(free_port()), *ca, env=env))
        up_seconds = time.perf_counter() - start
        must(devpictl("down", "--name", f"{p}-up", "--volumes", "--yes", env=env))

        # Cold first, on a cache nothing has touched; the direct reference after it (a
        # caching proxy on the way would then favour the reference, not devpictl).
        stage("• cold: through a fresh cache, then the official index directly")
        cache_url = up_cache(p)
        cold = fetch_set(cache_url, pins())
        wheels = cold.names
        direct = fetch_set(official_simple_url(), wheels)

        stage("• resolution: uv pip compile, pip install --dry-run (fresh cache, direct, warm cache)")
        resolution = {}
        cache_cpu = {}  # CPU seconds the cache spent on the cold resolution
        warm_passed = {}  # what the warm runs asked of devpi (the access log)
        urls = {}
        for tool in ("uv", "pip"):
            name = f"{p}-{tool}"
            url = urls[tool] = up_cache(name)
            stored_before, cpu_before = stored_bytes(engine, f"devpictl-{name}"), cpu_seconds(engine, f"devpictl-{name}")
            cold_run = resolve(tool, url, work)
            stored = stored_bytes(engine, f"devpictl-{name}") - stored_before
            ranges = range_bytes(engine, f"devpictl-{name}")
            cache_cpu[tool] = cpu_seconds(engine, f"devpictl-{name}") - cpu_before
            direct_run = median_resolution(tool, official_simple_url(), work, args.resolve_runs)
            seen = len(front_requests(engine, f"devpictl-{name}"))
            warm_run = median_resolution(tool, url, work, args.resolve_runs)
            warm_lines = front_requests(engine, f"devpictl-{name}")[seen:]
            resolution[tool] = (cold_run, direct_run, warm_run, stored, ranges)
            warm_passed[tool] = f"{passed_to_devpi(warm_lines)} of {len(warm_lines)} requests passed to devpi"

        # The bench's own pip may be old; the newest behaves differently (labelled row).
        stage("• resolution with the newest pip: official index directly, warm cache")
        try:
            pip_python, pip_version = newest_pip(work)
            newest_direct = median_resolution("pip", official_simple_url(), work, args.resolve_runs, pip_python)
            seen = len(front_requests(engine, f"devpictl-{p}-pip"))
            newest_warm = median_resolution("pip", urls["pip"], work, args.resolve_runs, pip_python)
            warm_lines = front_requests(engine, f"devpictl-{p}-pip")[seen:]
            newest = (
                pip_version,
                newest_direct,
                newest_warm,
                f"{passed_to_devpi(warm_lines)} of {len(warm_lines)} requests passed to devpi",
            )
        except (RuntimeError, subprocess.CalledProcessError) as exc:  # reported in the table, not hidden
            print(f"  {exc}", file=sys.stderr)
            newest = str(exc)

        stage(f"• {COLD_CLIENTS} concurrent cold requests for {COLD_FILE}")
        cold_url, cold_digest = wheel_link(urls["uv"], COLD_FILE)  # the page's bytes are not the file's
        received_before = received_bytes(engine, f"devpictl-{p}-uv")
        oks, size = concurrent_cold_file(cold_url, cold_digest, COLD_CLIENTS)
        received = received_bytes(engine, f"devpictl-{p}-uv") - received_before

        stage("• resolution against a local upstream that serves core metadata")
        local_tree = work / "local-index"
        try:
            local_wheels = local_metadata_index(local_tree, work)
        except RuntimeError as exc:  # reported in the table, not hidden
            print(f"  {exc}", file=sys.stderr)
            local_wheels, local_problem = 0, str(exc)
        if local_wheels:
            network = engine.networks.create(f"devpictl-bench-{os.getpid()}", labels={"devpictl.bench": "1", "devpictl.test": "1"})
            local_port = free_port()
            local = run_static_nginx(engine, args.image, local_tree, local_port)
            network.connect(local, aliases=["localindex"])
            local_direct_url = f"http://127.0.0.1:{local_port}/simple/"
            wait_http(local_direct_url)
            local_url = up_cache(f"{p}-local", "--network", network.name, "--mirror", "http://localindex:8080/simple")
            stored_before, cpu_before = stored_bytes(engine, f"devpictl-{p}-local"), cpu_seconds(engine, f"devpictl-{p}-local")
            local_cold = resolve("uv", local_url, work)
            local_stored = stored_bytes(engine, f"devpictl-{p}-local") - stored_before
            local_cpu = cpu_seconds(engine, f"devpictl-{p}-local") - cpu_before
            local_direct = median_resolution("uv", local_direct_url, work, args.resolve_runs)
            local_warm = median_resolution("uv", local_url, work, args.resolve_runs)

        stage("• devpi alone (--no-front)")
        stock_url = up_cache(f"{p}-stock", "--no-front")
        fetch_set(stock_url, wheels)  # warm it

        stage("• static limit: nginx serving identical pages and files from disk")
        tree = work / "static"
        mirror_static_tree(cache_url, wheels, tree)
        static_port = free_port()
        static = run_static_nginx(engine, args.image, tree, static_port)
        static_url = f"http://127.0.0.1:{static_port}/root/pypi/+simple/"
        wait_http(static_url)

        stage(f"• warm: {args.runs} runs each, interleaved")
        warm = {"static": [], "cache": [], "stock": []}
        for _ in range(args.runs):
            for key, url in (("static", static_url), ("cache", cache_url), ("stock", stock_url)):
                warm[key].append(fetch_set(url, wheels))
        median = {k: statistics.median(r.seconds for r in v) for k, v in warm.items()}
        warm_failures = sum(r.failures for v in warm.values() for r in v)

        time.sleep(10)
        idle_mb = memory_mb(engine, f"devpictl-{p}")
        stock_mb = memory_mb(engine, f"devpictl-{p}-stock")
        help_s = help_seconds()
    finally:
        for name in names:
            devpictl("down", "--name", name, "--volumes", "--yes", env=env)
        for container in (static, local):
            if container is not None:
                container.remove(force=True, v=True)  # and the anonymous volume of the image's VOLUME
        if network is not None:
            network.remove()
        shutil.rmtree(work, ignore_errors=True)

    def row(measure: str, value: str, reference: str, ratio: float, target: str) -> str:
        return f"| {measure} | {value} | {reference} | {ratio:.2f} | {target} |"

    uv_cold, uv_direct, uv_warm, uv_stored, uv_ranges = resolution["uv"]
    pip_cold, pip_direct, pip_warm, pip_stored, pip_ranges = resolution["pip"]
    bench_pip = pip_version_of(sys.executable)
    ratios = [
        "| measure | devpictl | reference, same run | ratio | target |",
        "|---|---|---|---|---|",
        row(
            "resolve, `uv pip compile`: fresh cache",
            f"{uv_cold}, cache CPU {cache_cpu['uv']:.1f} s, stored {uv_stored / 1e6:.1f} MB of files"
            f" (and {uv_ranges / 1e6:.1f} MB of ranges kept by the front)",
            f"official index directly {uv_direct}",
            uv_cold.seconds / uv_direct.seconds,
            "≤ 2, ≤ 5 MB stored",
        ),
        row(
            "resolve, `uv pip compile`: warm cache",
            f"{uv_warm}, {warm_passed['uv']}",
            f"official index directly {uv_direct}",
            uv_warm.seconds / uv_direct.seconds,
            "≤ 0.8",
        ),
        row(
            f"resolve, `pip install --dry-run` (pip {bench_pip}): fresh cache",
            f"{pip_cold}, cache CPU {cache_cpu['pip']:.1f} s, stored {pip_stored / 1e6:.1f} MB of files"
            f" (and {pip_ranges / 1e6:.1f} MB of ranges kept by the front)",
            f"official index directly {pip_direct}",
            pip_cold.seconds / pip_direct.seconds,
            "(reference)",
        ),
        row(
            f"resolve, `pip install --dry-run` (pip {bench_pip}): warm cache",
            f"{pip_warm}, {warm_passed['pip']}",
            f"official index directly {pip_direct}",
            pip_warm.seconds / pip_direct.seconds,
            "≤ 0.7",
        ),
    ]
    if isinstance(newest, tuple):
        version, newest_direct, newest_warm, newest_passed = newest
        ratios.append(
            row(
                f"resolve, `pip install --dry-run` (pip {version}, the newest, own venv): warm cache",
                f"{newest_warm}, {newest_passed}",
                f"official index directly {newest_direct}",
                newest_warm.seconds / newest_direct.seconds,
                "≤ 1.0",
            )
        )
    else:
        ratios.append(f"| resolve, newest pip | not measured: {newest} | | | |")
    if local_wheels:
        ratios += [
            row(
                "resolve, `uv pip compile`, upstream with core metadata: fresh cache",
                f"{local_cold}, cache CPU {local_cpu:.1f} s, stored {local_stored / 1e6:.1f} MB of files",
                f"that upstream directly {local_direct}",
                local_cold.seconds / local_direct.seconds,
                "≤ 1.5, no wheel stored",
            ),
            row(
                "resolve, `uv pip compile`, upstream with core metadata: warm cache",
                f"{local_warm}",
                f"that upstream directly {local_direct}",
                local_warm.seconds / local_direct.seconds,
                "(reference: a static server on this machine)",
            ),
        ]
    else:
        ratios.append(f"| resolve, upstream with core metadata | not measured: {local_problem} | | | |")
    ratios += [
        row(
            f"{COLD_CLIENTS} concurrent cold requests for one file: bytes from the upstream",
            f"{received / 1e6:.1f} MB, {oks.count(True)} of {COLD_CLIENTS} right",
            f"the file, {size / 1e6:.1f} MB",
            received / size,
            "≤ 1.1",
        ),
        row(
            "warm, 8 concurrent: cache (nginx front + devpi)",
            f"{median['cache']:.3f} s",
            f"static nginx {median['static']:.3f} s",
            median["cache"] / median["static"],
            "≤ 1.2",
        ),
        row(
            "warm, 8 concurrent: devpi alone (`--no-front`)",
            f"{median['stock']:.3f} s",
            f"static nginx {median['static']:.3f} s",
            median["stock"] / median["static"],
            "(reference)",
        ),
        row(
            "cold, 8 concurrent: fresh cache",
            f"{cold.seconds:.2f} s, {cold.failures} failed",
            f"official index directly {direct.seconds:.2f} s, {direct.failures} failed",
            cold.seconds / direct.seconds,
            "≤ 1.3, 0 failed",
        ),
        row(
            "idle memory: cache (nginx front + devpi)",
            f"{idle_mb:.0f} MB",
            f"devpi alone {stock_mb:.0f} MB",
            idle_mb / stock_mb,
            "(reference)",
        ),
    ]
    targets = [
        "| measure | devpictl | target |",
        "|---|---|---|",
        f"| `devpictl up` to ready, image built | {up_seconds:.1f} s | ≤ 10 s |",
        f"| idle memory of the cache | {idle_mb:.0f} MB | ≤ 250 MB |",
        f"| `devpictl --help` | {help_s:.3f} s | ≤ 0.3 s |",
    ]
    print("\n".join(ratios + [""] + targets))
    write_report(Path(args.out), ratios, targets, description, len(wheels), cold.nbytes / 1e6, args, warm_failures, local_wheels)


HTTPS_START = "<!-- section: bench/bench.py --https-only -->"  # a section write_report keeps
HTTPS_END = "<!-- end of section -->"


def https_main(args) -> None:
    """Warm serving of the pinned set by a cache over HTTPS (`up --tls self-signed`) against one over HTTP, same image, one run."""
    import ssl

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-"))
    env = bench_env(work, args.image)
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []
    names = ("bench-http", "bench-https")
    try:
        description = machine()
        stage(f"• building {args.image}")
        must(devpictl("build", "--image", args.image, "--base-image", args.base_image, *ca, env=env))
        stage("• two caches of the same image: HTTP, and HTTPS with devpictl's CA")
        http_url = up(names[0], PROBE, *ca, env=env)
        https_url = up(names[1], PROBE, "--tls", "self-signed", *ca, env=env)
        trust = ssl.create_default_context(cafile=str(work / "data" / "caches" / names[1] / "tls" / "ca.pem"))
        stage("• warming both from the upstream")
        wheels = fetch_set(http_url, pins()).names
        fetch_set(https_url, wheels, verify=trust)
        stage(f"• warm: {args.runs} runs each, interleaved")
        warm: dict[str, list[Fetch]] = {"http": [], "https": []}
        cpu: dict[str, list[tuple[float, float]]] = {"http": [], "https": []}  # (client, cache) CPU seconds of each run
        for _ in range(args.runs):
            for key, name, url, verify in (("http", names[0], http_url, True), ("https", names[1], https_url, trust)):
                before, cache_before = os.times(), cpu_seconds(engine, f"devpictl-{name}")
                warm[key].append(fetch_set(url, wheels, verify=verify))
                after = os.times()
                client = (after.user - before.user) + (after.system - before.system)
                cpu[key].append((client, cpu_seconds(engine, f"devpictl-{name}") - cache_before))
    finally:
        for name in names:
            devpictl("down", "--name", name, "--volumes", "--yes", env=env)
        shutil.rmtree(work, ignore_errors=True)
    median = {k: statistics.median(r.seconds for r in v) for k, v in warm.items()}
    failures = sum(r.failures for v in warm.values() for r in v)
    used = {k: (statistics.median(c for c, _ in v), statistics.median(s for _, s in v)) for k, v in cpu.items()}

    def described(key: str) -> str:
        return f"{median[key]:.3f} s (client CPU {used[key][0]:.2f} s, cache CPU {used[key][1]:.2f} s)"

    table = [
        "| measure | devpictl | reference, same run | ratio | target |",
        "|---|---|---|---|---|",
        f"| warm, 8 concurrent: cache over HTTPS (`up --tls self-signed`) | {described('https')} | "
        f"the same cache over HTTP {described('http')} | {median['https'] / median['http']:.2f} | ≤ 1.2 |",
    ]
    print("\n".join(table))
    section = "\n".join(
        [
            HTTPS_START,
            "## Warm serving over HTTPS",
            "",
            f"Measured by `bench/bench.py --https-only` in one run on {description}; 1-minute load average",
            f"{min(LOADS):.1f}–{max(LOADS):.1f}. Two caches of the same image, one plain HTTP and one with",
            f"`--tls self-signed` (TLS 1.3, a P-256 key), fetch the {len(wheels)} pinned wheels of `bench/wheels.txt` as",
            f"pip does, {CONCURRENCY} at a time over kept-alive connections; medians of {args.runs} interleaved runs",
            f"after one run that warmed both (failed warm requests: {failures}). CPU figures are medians per run: the",
            "client's (this script's fetching threads, Python's TLS) and the cache container's (nginx and devpi).",
            "HTTPS costs CPU on both sides (no sendfile: nginx reads and encrypts each file), so where other work",
            "keeps the CPUs busy the ratio grows with the load.",
            "",
            *table,
            "",
            '    python bench/bench.py --https-only --base-image IMG [--ca-bundle "$SSL_CERT_FILE"]',
            HTTPS_END,
            "",
        ]
    )
    path = Path(args.out)
    old = path.read_text() if path.exists() else ""
    if HTTPS_START in old:
        start = old.index(HTTPS_START)
        old = old[:start] + old[old.index(HTTPS_END, start) + len(HTTPS_END) :].lstrip("\n")
    path.write_text(old.rstrip("\n") + "\n\n" + section)


def warm_section(text: str) -> str:
    """The section bench/warm_speed.py wrote into ``text``, markers and the newline after them included; "" if none."""
    if WARM_BEGIN not in text:
        return ""
    return text[text.index(WARM_BEGIN) : text.index(WARM_END) + len(WARM_END) + 1]


def write_report(
    path: Path,
    ratios: list[str],
    targets: list[str],
    description: str,
    count: int,
    size_mb: float,
    args,
    warm_failures: int,
    local_wheels: int,
) -> None:
    requirements = ", ".join(line for line in RESOLVE.read_text().splitlines() if line and not line.startswith("#"))
    kept = warm_section(path.read_text()) if path.exists() else ""
    text = f"""# Performance

Measured by `bench/bench.py` in one run. The machine, as it describes itself: {description};
1-minute load average {min(LOADS):.1f}–{max(LOADS):.1f} at the stages of the run (other work on its
CPUs makes every time longer, and ratios noisier).
Caches and clients talk over loopback.

## Against references measured in the same run

Each ratio divides devpictl's figure by its reference, measured in the same run.

{chr(10).join(ratios)}

- **Resolution**: `uv pip compile` and `pip install --dry-run --ignore-installed` of
  `bench/resolve.txt` ({requirements}; unpinned, so the resolved set follows the index), with
  no client cache. "Fresh cache" is a cache nothing has touched (its readiness probe is
  `{PROBE}`, outside both sets); "direct" and "warm" are medians of {args.resolve_runs} runs
  after it. "Stored" is what the cache's volume gained during the fresh run: whole files
  devpi downloaded. pip fetches the wheels it chose even for `--dry-run`
  ([core-metadata.md](core-metadata.md)). Whether the official index serves core metadata
  depends on how this machine reaches it: `devpictl mirrors test` shows it, and the cache
  announces metadata only if it does.
- **What the figures beside the times are**: "client CPU" is the user and system time of the
  installer itself (median over the runs), work no cache can take away; "cache CPU" is what
  the cache's container (devpi and nginx) spent during the fresh run; "requests passed to
  devpi" counts the warm runs' requests that nginx did not answer from its caches or the
  volume's disk, read from its access log. Where the time goes, and why some targets are not
  met: [core-metadata.md](core-metadata.md#measured).
- **Upstream with core metadata**: the {local_wheels} wheels that set resolves to (for this
  machine's Python), each with its `.metadata` announced with its sha256, served by nginx from
  disk in a container on a Docker network the cache joins; "directly" is uv against that
  server over loopback, so the warm ratio compares the cache with a static server, not with
  a remote index.
- **Concurrent cold requests**: {COLD_CLIENTS} clients ask the uv cache at once for the wheel of
  `{COLD_FILE}`, in neither set, so not held; bytes are counted on the container's network
  interfaces.
- **Fetching the pinned set**: {count} real wheels from `bench/wheels.txt` ({size_mb:.1f} MB),
  fetched as pip does: the project's simple page with an installer user agent, then the file,
  checked against the page's sha256; {CONCURRENCY} at a time. The cold run goes first, on a
  fresh cache, and the direct reference after it. Warm figures are medians of {args.runs}
  interleaved runs (failed warm requests: {warm_failures}). The static limit is nginx serving
  byte-identical copies of the cache's pages and files from disk.

{kept + chr(10) if kept else ""}## Against fixed targets

These have no reference to measure; the targets are the project's own.

{chr(10).join(targets)}

## Reproduce

    pip install -e '.[test]' && python bench/bench.py --base-image IMG [--ca-bundle "$SSL_CERT_FILE"]

It builds the image, starts its own caches with `devpictl up` (`bench`, `bench-stock`,
`bench-up`, `bench-uv`, `bench-pip`, `bench-local`), and removes them, their volumes, the
static servers and its Docker network when done. uv comes from the test extras.
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Sections other scripts write (bench/switch.py) stay after this report.
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(SECTION) :] if SECTION in old else ""
    path.write_text(text + ("\n" + kept if kept else ""))


if __name__ == "__main__":
    main()
