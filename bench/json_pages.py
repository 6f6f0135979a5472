#!/usr/bin/env python3
"""Warm JSON pages (PEP 691, with the page policy's upload times) against warm HTML pages, through one cache, in one run.

    python bench/json_pages.py --base-image IMG [--ca-bundle FILE] [--projects 40] [--repeat 25] [--runs 5]

A static test upstream on a Docker network serves N projects (three releases each). One
cache with a page policy (`--min-release-age 1d`, so both kinds of page pass through devpictl's
devpi plugin when fetched) is asked once for each project's page in both forms; then each
run asks for every page ``repeat`` times, 8 at a time, with `Accept: application/vnd.pypi.simple.v1+json`
and with `Accept: text/html` (the order alternating between runs). Every answer must be a
front-server cache HIT of the right content type. It prints the medians and their ratio,
writes them into docs/performance.md (its own section, which bench/bench.py keeps) and
removes what it created. Target: JSON within 1.1x of HTML.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

# Run as a script, bench/ is on sys.path: bench.py's helpers.
from bench import AGENT, CONCURRENCY, ROOT, add_image_options, bench_env, devpictl, make_tree, must, up
from devpictl.page_policy import JSON_PAGE
from devpictl.settings import extra_labels

NAME = "bench-json"
START = "<!-- section: bench/json_pages.py -->"
END = "<!-- end of section -->"
KINDS = {"json": JSON_PAGE, "html": "text/html"}


def fetch_pages(client: httpx.Client, index_url: str, names: list[str], kind: str, repeat: int) -> tuple[float, int]:
    """(seconds, answers that were no front-cache HIT) to ask for every page ``repeat`` times, CONCURRENCY at a time."""

    def one(name: str) -> bool:
        answer = client.get(f"{index_url}{name}/", headers={"Accept": KINDS[kind]})
        if answer.status_code != 200 or not answer.headers.get("content-type", "").startswith(KINDS[kind]):
            sys.exit(f"bench: {kind} page of {name}: HTTP {answer.status_code} {answer.headers.get('content-type')}")
        return answer.headers.get("X-Devpictl-Cache") == "HIT"

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        hits = list(pool.map(one, names * repeat))
    return time.perf_counter() - start, hits.count(False)


def section(projects: int, repeat: int, runs: int, medians: dict[str, float], misses: dict[str, int], loads: list[float]) -> str:
    requests = projects * repeat
    rows = [
        "| warm pages, 8 at a time | requests a run | median seconds | requests/s | not a front-cache HIT, all runs | ratio to HTML | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("json", f"JSON (`{JSON_PAGE}`, API 1.1)"), ("html", "HTML (`text/html`)")):
        ratio = medians[kind] / medians["html"]
        rows.append(
            f"| {label} | {requests} | {medians[kind]:.3f} | {requests / medians[kind]:.0f} | {misses[kind]} of {requests * runs} | {ratio:.2f} "
            f"| {'≤ 1.1' if kind == 'json' else '(reference)'} |"
        )
    return "\n".join(
        [
            START,
            "## Warm JSON pages against warm HTML pages",
            "",
            "Measured by `bench/json_pages.py` in one run: one cache with a page policy (`--min-release-age 1d`)",
            f"in front of a static test upstream on a Docker network ({projects} projects, three releases each).",
            "Every page was asked once in both forms first; each run then asks for every page",
            f"{repeat} times, 8 at a time, as JSON and as HTML (the order alternating), medians of {runs} runs.",
            "A front-server cache HIT never reaches devpi, so the ratio compares nginx serving two cached",
            "bodies of different sizes; the table counts the answers that were not HITs. The client is Python",
            "(httpx) on the same 2 CPUs, so the absolute rates are the client's as much as the cache's.",
            f"1-minute load average {min(loads):.1f}–{max(loads):.1f} during the run (the machine's CPUs are shared).",
            "",
            *rows,
            "",
            "    python bench/json_pages.py --base-image IMG [--ca-bundle FILE]",
            END,
            "",
        ]
    )


def write_section(path: Path, text: str) -> None:
    """Put the section into docs/performance.md, replacing its last one (bench/bench.py keeps sections)."""
    old = path.read_text() if path.exists() else ""
    if START in old:
        start = old.index(START)
        old = old[:start] + old[old.index(END, start) + len(END) :].lstrip("\n")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="devpictl-bench/devpi:latest", help="image tag to build and run")
    add_image_options(parser)
    parser.add_argument("--projects", type=int, default=40, help="projects in the set")
    parser.add_argument("--repeat", type=int, default=25, help="times each page is asked in a run")
    parser.add_argument("--runs", type=int, default=5, help="runs per kind (median)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-json-"))
    env = bench_env(work, args.image)
    labels = extra_labels(env)
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []
    os.chmod(work, 0o755)
    names = make_tree(work / "tree", [f"bench-j{i:03d}" for i in range(args.projects)], releases=("1.0", "1.1", "1.2"))
    network = engine.networks.create(f"devpictl-bench-json-{os.getpid()}", labels=labels)
    upstream = None
    loads = [os.getloadavg()[0]]
    try:
        print(f"• building {args.image} (load {loads[-1]:.1f})", file=sys.stderr)
        must(devpictl("build", "--image", args.image, "--base-image", args.base_image, *ca, env=env))
        upstream = engine.containers.run(
            args.image,
            entrypoint=["python", "-m", "http.server", "8080", "--directory", "/srv"],
            detach=True,
            labels=labels,
            volumes={str(work / "tree"): {"bind": "/srv", "mode": "ro"}},
        )
        network.connect(upstream, aliases=["upstream"])
        index_url = up(
            NAME, names[0], "--network", network.name, "--mirror", "http://upstream:8080/simple", "--min-release-age", "1d", env=env
        )
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        misses = dict.fromkeys(KINDS, 0)  # answers nginx did not serve from its cache (it asked devpi again)
        with httpx.Client(
            trust_env=False, timeout=60, headers={"User-Agent": AGENT}, limits=httpx.Limits(max_connections=CONCURRENCY)
        ) as client:
            for kind in KINDS:  # each page into the front's cache, in both forms
                for name in names:
                    client.get(f"{index_url}{name}/", headers={"Accept": KINDS[kind]})
            for run in range(args.runs):
                loads.append(os.getloadavg()[0])
                print(f"• run {run + 1} of {args.runs} (load {loads[-1]:.1f})", file=sys.stderr)
                for kind in list(KINDS)[:: 1 if run % 2 == 0 else -1]:
                    seconds, missed = fetch_pages(client, index_url, names, kind, args.repeat)
                    times[kind].append(seconds)
                    misses[kind] += missed
    finally:
        devpictl("down", "--name", NAME, "--volumes", "--yes", env=env)
        if upstream is not None:
            upstream.remove(force=True, v=True)
        network.remove()
        shutil.rmtree(work, ignore_errors=True)
    medians = {kind: statistics.median(found) for kind, found in times.items()}
    text = section(args.projects, args.repeat, args.runs, medians, misses, loads)
    print(text)
    write_section(Path(args.out), text)


if __name__ == "__main__":
    main()
