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
- `up` to ready with the image already built, the cache's idle memory, and
  `devpictl --help`.

It writes the table to docs/performance.md and removes everything it created.
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
from dataclasses import dataclass
from pathlib import Path

import httpx

from devpictl.speedtest import default_index_url

ROOT = Path(__file__).resolve().parent.parent
WHEELS = Path(__file__).resolve().parent / "wheels.txt"
AGENT = "pip/24.1.2 devpictl-bench"
CONCURRENCY = 8
LABEL = "devpictl.bench=1"
LINK = re.compile(r'href="([^"#]+)(?:#sha256=([0-9a-f]+))?"')


@dataclass
class Fetch:
    seconds: float
    failures: int
    nbytes: int


def devpictl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devpictl", *args], env=env, capture_output=True, text=True)


def must(result: subprocess.CompletedProcess) -> str:
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, result.args[2:]))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def pinned_wheels(workdir: Path) -> list[Path]:
    """Download the pinned set once (from pip's default index) to learn exact file names."""
    target = workdir / "wheels"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(target), "-r", str(WHEELS)],
        check=True,
        env={**env, "PIP_CONFIG_FILE": os.devnull},
    )
    return sorted(target.glob("*.whl"))


def project_of(wheel: str) -> str:
    return re.sub(r"[-_.]+", "-", wheel.split("-")[0]).lower()


def fetch_set(index_url: str, wheels: list[str], *, verify: bool = True) -> Fetch:
    """Fetch each wheel as pip does: its simple page, then the file; 8 at a time."""
    failures = 0
    nbytes = 0

    def one(client: httpx.Client, wheel: str) -> int:
        page_url = f"{index_url.rstrip('/')}/{project_of(wheel)}/"
        page = client.get(page_url, headers={"User-Agent": AGENT})
        page.raise_for_status()
        for href, digest in LINK.findall(page.text):
            if href.rsplit("/", 1)[-1] == wheel:
                response = client.get(str(page.url.join(href)), headers={"User-Agent": AGENT})
                response.raise_for_status()
                if digest and hashlib.sha256(response.content).hexdigest() != digest:
                    raise ValueError(f"{wheel}: sha256 mismatch")
                return len(response.content)
        raise LookupError(f"{wheel} not listed on {page_url}")

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    start = time.perf_counter()
    with httpx.Client(limits=limits, timeout=120, follow_redirects=True, verify=verify, trust_env=True) as client:
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            for future in [pool.submit(one, client, w) for w in wheels]:
                try:
                    nbytes += future.result()
                except Exception as exc:  # counted, and shown: a benchmark must not hide failures
                    failures += 1
                    print(f"  failed: {exc}", file=sys.stderr)
    return Fetch(time.perf_counter() - start, failures, nbytes)


def median_fetch(index_url: str, wheels: list[str], runs: int) -> Fetch:
    results = [fetch_set(index_url, wheels) for _ in range(runs)]
    return Fetch(statistics.median(r.seconds for r in results), sum(r.failures for r in results), results[0].nbytes)


def mirror_static_tree(index_url: str, wheels: list[str], tree: Path) -> None:
    """Copy the cache's installer pages and files to disk, at their URL paths."""
    with httpx.Client(trust_env=False, timeout=60) as client:
        for wheel in wheels:
            page_url = f"{index_url}{project_of(wheel)}/"
            page = client.get(page_url, headers={"User-Agent": AGENT})
            path = tree / httpx.URL(page_url).path.lstrip("/") / "index.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(page.content)
            for href, _digest in LINK.findall(page.text):
                if href.rsplit("/", 1)[-1] == wheel:
                    file_url = page.url.join(href)
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
        labels={"devpictl.bench": "1"},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="devpictl-bench/devpi:latest", help="image tag to build and run")
    parser.add_argument("--base-image", default=os.environ.get("DEVPICTL_BASE_IMAGE", "python:3.12-slim"))
    parser.add_argument("--ca-bundle", default=os.environ.get("DEVPICTL_CA_BUNDLE"), help="CA bundle for a TLS-inspecting network")
    parser.add_argument("--runs", type=int, default=5, help="warm runs per target (median)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-"))
    env = {**os.environ, "DEVPICTL_DATA_DIR": str(work / "data"), "DEVPICTL_LABELS": LABEL, "DEVPICTL_IMAGE": args.image}
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []
    names = ["bench", "bench-stock", "bench-up"]
    static = None
    try:
        print("• pinned wheels", file=sys.stderr)
        wheels = [w.name for w in pinned_wheels(work)]
        print(f"• building {args.image}", file=sys.stderr)
        must(devpictl("build", "--image", args.image, "--base-image", args.base_image, *ca, env=env))

        print("• up to ready (image built, fresh volume)", file=sys.stderr)
        start = time.perf_counter()
        must(devpictl("up", "--name", "bench-up", "--port", str(free_port()), *ca, env=env))
        up_seconds = time.perf_counter() - start
        must(devpictl("down", "--name", "bench-up", "--volumes", "--yes", env=env))

        print("• cold: through a fresh cache, and the official index directly before and after", file=sys.stderr)
        out = must(devpictl("up", "--name", "bench", "--port", str(free_port()), "--json", *ca, env=env))
        cache_url = json.loads(out)["index_url"]
        official = default_index_url()
        if official is None:
            sys.exit("bench: pip's default index is unknown (is pip installed?)")
        direct_before = fetch_set(official, wheels)
        cold = fetch_set(cache_url, wheels)
        direct_after = fetch_set(official, wheels)
        # The faster direct run is the reference: a proxy on the way may cache too.
        direct = min(direct_before, direct_after, key=lambda f: f.seconds)

        print("• devpi alone (--no-front)", file=sys.stderr)
        out = must(devpictl("up", "--name", "bench-stock", "--no-front", "--port", str(free_port()), "--json", *ca, env=env))
        stock_url = json.loads(out)["index_url"]
        fetch_set(stock_url, wheels)  # warm it

        print("• static limit: nginx serving identical pages and files from disk", file=sys.stderr)
        tree = work / "static"
        mirror_static_tree(cache_url, wheels, tree)
        static_port = free_port()
        static = run_static_nginx(engine, args.image, tree, static_port)
        static_url = f"http://127.0.0.1:{static_port}/root/pypi/+simple/"
        wait_http(static_url)

        print(f"• warm: {args.runs} runs each, interleaved", file=sys.stderr)
        warm = {"static": [], "cache": [], "stock": []}
        for _ in range(args.runs):
            for key, url in (("static", static_url), ("cache", cache_url), ("stock", stock_url)):
                warm[key].append(fetch_set(url, wheels))
        median = {k: statistics.median(r.seconds for r in v) for k, v in warm.items()}
        warm_failures = sum(r.failures for v in warm.values() for r in v)

        time.sleep(10)
        idle_mb = memory_mb(engine, "devpictl-bench")
        help_s = help_seconds()
    finally:
        for name in names:
            devpictl("down", "--name", name, "--volumes", "--yes", env=env)
        if static is not None:
            static.remove(force=True)
        shutil.rmtree(work, ignore_errors=True)

    size_mb = cold.nbytes / 1e6
    rows = [
        ("warm, 8 concurrent: cache (nginx front + devpi)", f"{median['cache']:.3f} s", f"static nginx {median['static']:.3f} s", median["cache"] / median["static"], "≤ 1.2"),
        ("warm, 8 concurrent: devpi alone (`--no-front`)", f"{median['stock']:.3f} s", f"static nginx {median['static']:.3f} s", median["stock"] / median["static"], "(reference)"),
        ("cold, 8 concurrent: fresh cache", f"{cold.seconds:.2f} s, {cold.failures} failed", f"official index directly {direct.seconds:.2f} s, {direct.failures} failed", cold.seconds / direct.seconds, "≤ 1.3, 0 failed"),
        ("`devpictl up` to ready, image built", f"{up_seconds:.1f} s", "target 10 s", up_seconds / 10, "≤ 1.0"),
        ("idle memory of the cache", f"{idle_mb:.0f} MB", "target 250 MB", idle_mb / 250, "≤ 1.0"),
        ("`devpictl --help`", f"{help_s:.3f} s", "target 0.3 s", help_s / 0.3, "≤ 1.0"),
    ]
    table = ["| measure | devpictl | reference | ratio | target |", "|---|---|---|---|---|"]
    table += [f"| {m} | {v} | {r} | {ratio:.2f} | {t} |" for m, v, r, ratio, t in rows]
    print("\n".join(table))
    write_report(Path(args.out), table, len(wheels), size_mb, args, warm_failures)


def write_report(path: Path, table: list[str], count: int, size_mb: float, args, warm_failures: int) -> None:
    text = f"""# Performance

Measured by `bench/bench.py` in one run on this project's test machine (2 cores, 24 GiB,
loopback; the official index reached through a TLS-inspecting proxy). Each ratio divides
devpictl's figure by its reference from the same run.

{chr(10).join(table)}

The set: {count} pinned real wheels from `bench/wheels.txt` ({size_mb:.1f} MB). A fetch is what pip
does: the project's simple page with an installer user agent, then the file, checked against
the page's sha256; {CONCURRENCY} at a time. Warm figures are medians of {args.runs} interleaved runs
(failed warm requests: {warm_failures}). The static limit is nginx serving byte-identical copies
of the cache's pages and files from disk.

## Reproduce

    pip install -e . && python bench/bench.py --base-image IMG [--ca-bundle "$SSL_CERT_FILE"]

It builds the image, starts its own caches with `devpictl up` (`bench`, `bench-stock`,
`bench-up`), and removes them, their volumes and the static server when done.
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    main()
