#!/usr/bin/env python3
"""Benchmark failover (`--fallback`): a cold fetch of a set through a cache whose primary is down, vs healthy.

    python bench/failover.py --image IMG [--projects 40]

A static test upstream on a Docker network serves N projects (one 200 kB file each) under
the names `primary` and `fallback`. Three fresh caches fetch the whole set cold, the way
pip does (page with an installer user agent, then the file, checked against the page's
sha256, 8 at a time): one whose primary answers; one whose primary was stopped (its name no
longer resolves); one whose primary accepts connections and never answers (the worst case:
each uncached request waits out the read timeout). It prints a markdown table of times and
ratios against the healthy cache, measured in the same run, and removes what it created.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# Run as a script, bench/ is on sys.path: bench.py's helpers.
from bench import bench_env, make_tree, up
from devpictl import simplepage

AGENT = "pip/24.1.2 devpictl-bench"
SILENT = "import socket, time\ns = socket.socket()\ns.bind(('0.0.0.0', 8080))\ns.listen(1000)\ntime.sleep(10**6)\n"


def fetch_set(index_url: str, names: list[str]) -> tuple[float, int]:
    """(seconds, failures) to fetch every project's page and file, 8 at a time."""
    with httpx.Client(trust_env=False, timeout=120, headers={"User-Agent": AGENT}, follow_redirects=True) as client:

        def one(name: str) -> bool:
            try:
                page = client.get(f"{index_url}{name}/")
                link = simplepage.parse(page.text, str(page.url))[0]
                data = client.get(link.url).content
                return hashlib.sha256(data).hexdigest() == link.sha256
            except (httpx.HTTPError, IndexError):
                return False

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, names))
        return time.perf_counter() - start, results.count(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="a devpictl image (devpictl build) to run the caches on")
    parser.add_argument("--projects", type=int, default=40, help="projects in the set")
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-failover-"))
    env = bench_env(work, args.image)
    os.chmod(work, 0o755)
    names = make_tree(work / "tree", [f"bench-f{i:03d}" for i in range(args.projects)], content=lambda wheel: os.urandom(200_000))
    network = engine.networks.create(f"devpictl-bench-failover-{os.getpid()}", labels={"devpictl.bench": "1"})
    containers = []

    def serve(aliases: list[str], entrypoint: list[str]):
        container = engine.containers.run(
            args.image,
            entrypoint=entrypoint,
            detach=True,
            labels={"devpictl.bench": "1"},
            volumes={str(work / "tree"): {"bind": "/srv", "mode": "ro"}},
        )
        containers.append(container)
        network.connect(container, aliases=aliases)
        return container

    rows = []
    caches = []
    try:
        http = ["python", "-m", "http.server", "8080", "--directory", "/srv"]
        serve(["primary", "fallback"], http)
        gone = serve(["gone"], http)  # answers the check at `up`, then is stopped
        serve(["silent"], ["python", "-c", SILENT])
        for label, primary in (("healthy primary", "primary"), ("primary stopped", "gone"), ("primary silent", "silent")):
            cache = f"benchfo-{primary}"
            caches.append(cache)
            check = [] if primary != "silent" else ["--no-check"]
            index_url = up(
                cache,
                names[0],
                "--network",
                network.name,
                "--mirror",
                f"http://{primary}:8080/simple",
                "--fallback",
                "http://fallback:8080/simple",
                *check,
                env=env,
            )
            if primary == "gone":
                gone.stop(timeout=2)
            print(f"• {label}: fetching {len(names)} projects cold", file=sys.stderr)
            seconds, failures = fetch_set(index_url, names[1:])
            rows.append((label, seconds, failures))
    finally:
        for cache in caches:
            subprocess.run([sys.executable, "-m", "devpictl", "down", "--name", cache, "--volumes", "--yes"], env=env, capture_output=True)
        for container in containers:
            container.remove(force=True, v=True)  # and the anonymous volume of the image's VOLUME
        network.remove()
        shutil.rmtree(work, ignore_errors=True)
    healthy = rows[0][1]
    print(f"| cold fetch of {len(names) - 1} projects, 8 at a time | time | failed | ratio to a healthy primary |")
    print("|---|---|---|---|")
    for label, seconds, failures in rows:
        print(f"| {label} | {seconds:.1f} s | {failures} | {seconds / healthy:.2f} |")
    print(f"\nload average when it ran: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
