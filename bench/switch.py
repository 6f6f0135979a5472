#!/usr/bin/env python3
"""Benchmark `set-upstream` against the number of cached projects: forgetting the pages vs refreshing them.

    python bench/switch.py --image IMG [--sizes 100,1000,5000] [--latencies 0,0.1]

For each size N and latency it serves N made-up projects (four releases each) from a
static test upstream reachable under two names on a Docker network, each answer after the
latency (0: loopback speed; 0.1 s: a distant mirror), caches every page and one file of each
through a cache, then switches the cache to the other name the default way (devpi marks
every cached page stale in one request, keeping its link to the stored file), asks for every
page again through the cache (the cost the switch left to later requests), and switches back
with --refresh-pages (each page fetched during the switch, devpictl/refresh.py), in the same run. It prints a markdown table, writes it
into docs/performance.md, and removes what it created.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
from devpictl.simplepage import parse

START = "<!-- section: bench/switch.py -->"  # bench/bench.py keeps sections that start so
END = "<!-- end of section -->"
AGENT = "pip/24.1.2 devpictl-bench"
# The test upstream: python's static server, each answer after the latency given (argv[1]).
SLOW_SERVER = """
import functools, http.server, sys, time
class Slow(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(float(sys.argv[1]))
        super().do_GET()
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), functools.partial(Slow, directory="/srv")).serve_forever()
"""


RELEASES = ("1.0", "1.1", "1.2", "1.3")  # on each page of N projects: a switch checks each link, and keeps the stored one's file


def warm(index_url: str, names: list[str], store: bool = False) -> float:
    """Ask the cache for every project's page (and, ``store``, its first release's file), 16 at a time; the seconds it took."""
    with httpx.Client(trust_env=False, timeout=120, headers={"User-Agent": AGENT}) as client:

        def one(name: str) -> None:
            page = client.get(f"{index_url}{name}/")
            page.raise_for_status()
            if store:
                first = min(parse(page.text, str(page.url)), key=lambda link: link.filename)
                client.get(first.url).raise_for_status()

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(one, names))
        return time.perf_counter() - start


def timed_switch(name: str, url: str, env: dict[str, str], refresh_pages: bool) -> float:
    """Seconds `set_upstream` takes to switch cache ``name`` to ``url``, forgetting or (``refresh_pages``) refreshing its pages."""
    script = (
        "import sys, time\n"
        "from devpictl import switching\n"
        "from devpictl.reporter import QuietReporter\n"
        "from devpictl.container import connect\n"
        "from devpictl.mirrors import resolve\n"
        "from devpictl.settings import Instance\n"
        "start = time.perf_counter()\n"
        f"result = switching.set_upstream(connect(), Instance({name!r}), resolve({url!r}), check=False, probe_project=None, reporter=QuietReporter(), refresh_pages={refresh_pages})\n"
        "print(time.perf_counter() - start)\n"
        "print(result.actions, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench: switch failed:\n{done.stdout}{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="a devpictl image (devpictl build) to run the cache on")
    parser.add_argument("--sizes", default="100,1000", help="numbers of cached projects, comma-separated")
    parser.add_argument(
        "--latencies", default="0,0.1", help="seconds the test upstream waits before each answer (a distant mirror), comma-separated"
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "performance.md"))
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-switch-"))
    env = bench_env(work, args.image)
    network = engine.networks.create(f"devpictl-bench-switch-{os.getpid()}", labels={"devpictl.bench": "1"})
    rows = []
    try:
        cases = [(int(s), float(lat)) for lat in args.latencies.split(",") for s in args.sizes.split(",")]
        for size, latency in cases:
            tree = work / f"tree{size}-{latency}"
            names = make_tree(tree, [f"bench-p{i:05d}" for i in range(size)], RELEASES)  # nothing reads a file's bytes
            for path in [work, tree, *tree.rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            upstream = engine.containers.run(
                args.image,
                entrypoint=["python", "-c", SLOW_SERVER, str(latency)],
                detach=True,
                labels={"devpictl.bench": "1"},
                volumes={str(tree): {"bind": "/srv", "mode": "ro"}},
                network=network.name,
            )
            network.disconnect(upstream)
            network.connect(upstream, aliases=["up-a", "up-b"])
            cache = f"benchsw{size}"
            try:
                index_url = up(cache, names[0], "--network", network.name, "--mirror", "http://up-a:8080/simple", env=env)
                print(f"• {size}: caching every page and one file of each", file=sys.stderr)
                warm(index_url, names, store=True)
                print(
                    f"• {size}: switching (marking the pages stale), asking for each again, switching back (refreshing them)",
                    file=sys.stderr,
                )
                forget = timed_switch(cache, "http://up-b:8080/simple", env, refresh_pages=False)
                later = warm(index_url, names)
                refreshed = timed_switch(cache, "http://up-a:8080/simple", env, refresh_pages=True)
                rows.append((size, latency, forget, later, refreshed))
            finally:
                subprocess.run(
                    [sys.executable, "-m", "devpictl", "down", "--name", cache, "--volumes", "--yes"], env=env, capture_output=True
                )
                for leftover in engine.containers.list(all=True, filters={"label": f"devpictl.instance={cache}"}):
                    leftover.remove(force=True)
                upstream.remove(force=True, v=True)  # and the anonymous volume of the image's VOLUME
    finally:
        network.reload()
        for container in network.containers:
            network.disconnect(container, force=True)
        network.remove()
        shutil.rmtree(work, ignore_errors=True)
    table = [
        "| cached projects | upstream latency | switch | every page asked again after it | switch with --refresh-pages | switch / --refresh-pages |",
        "|---|---|---|---|---|---|",
        *(
            f"| {size} | {latency * 1000:.0f} ms | {forget:.1f} s | {later:.1f} s | {refreshed:.1f} s | {forget / refreshed:.3f} |"
            for size, latency, forget, later, refreshed in rows
        ),
    ]
    print("\n".join(table))
    write_section(Path(args.out), table)


def write_section(path: Path, table: list[str]) -> None:
    """Put the table into its section of docs/performance.md (bench/bench.py keeps it)."""
    section = "\n".join(
        [
            f"{START}",
            "## `set-upstream` against the number of cached projects",
            "",
            "Measured by `bench/switch.py` in one run: a cache holding N projects' pages (four releases",
            "each, one of them stored, from a static test upstream on a Docker network that answers after",
            "the latency shown) switches to the same tree under another name the default way: devpi marks",
            "every cached page stale in one request (keeping each page's link to its stored file, the",
            "fallback while the new upstream fails), and each is fetched from the new upstream at its next request. Then",
            "16 clients ask for every page again (what the switch left to later requests: the same",
            "fetch a page costs when mirror_cache_expiry passes), and the cache switches back with",
            "`--refresh-pages`, which fetches each page during the switch. The last column divides",
            f"the first switch's time by the second's. Load average when it ran: {os.getloadavg()[0]:.1f} (the machine's CPUs are shared).",
            "",
            *table,
            "",
            "    python bench/switch.py --image IMG --sizes 100,1000,5000 --latencies 0,0.1",
            END,
            "",
        ]
    )
    old = path.read_text() if path.exists() else ""
    if START in old:
        start = old.index(START)
        old = old[:start] + old[old.index(END, start) + len(END) :].lstrip("\n")
    path.write_text(old.rstrip("\n") + "\n\n" + section)


if __name__ == "__main__":
    main()
