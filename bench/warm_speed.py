#!/usr/bin/env python3
"""How fast `devpictl warm` fills a cache, against pip fetching the same files, in one run.

    python bench/warm_speed.py --base-image IMG [--ca-bundle FILE]

The pinned set of bench/wheels.txt is locked with `uv pip compile --no-deps --format
pylock.toml` (for this machine; the lock names each file). The same files are then fetched
from the official index three ways, each on a fresh cache or none, in this order:

- `devpictl warm pylock.toml` into a fresh cache (8 at a time, its default);
- `pip download --no-deps -r bench/wheels.txt` through another fresh cache: how a cache fills
  without `warm`, by installing through it;
- the same `pip download` straight from the official index.

It writes its figures into docs/performance.md (between its markers, which bench/bench.py
keeps) and removes the caches it made (names `bench-warm`, `bench-warm-pip`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, WARM_BEGIN, WARM_END, WHEELS, add_image_options, bench_env, clean_env, devpictl, machine, must, up, warm_section

NAMES = ["bench-warm", "bench-warm-pip"]


def lock(workdir: Path) -> Path:
    """bench/wheels.txt as a pylock.toml, made by uv from the official index."""
    import uv

    path = workdir / "pylock.toml"
    done = subprocess.run(
        [uv.find_uv_bin(), "pip", "compile", "--quiet", "--no-deps", "--format", "pylock.toml", "-o", str(path), str(WHEELS)],
        env=clean_env(workdir),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench: uv could not lock {WHEELS}:\n{done.stdout}{done.stderr}")
    return path


def pip_download(workdir: Path, target: Path, *index: str) -> tuple[float, int, int]:
    """(seconds, files, bytes) of `pip download --no-deps` of the pinned set into an empty ``target``."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(target), "-r", str(WHEELS), *index]
    start = time.perf_counter()
    done = subprocess.run(command, env=clean_env(workdir), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: pip download failed:\n{done.stdout}{done.stderr}")
    files = list(target.iterdir())
    return seconds, len(files), sum(f.stat().st_size for f in files)


def section(rows: list[tuple[str, float, int, int]], description: str) -> str:
    warm_s = rows[0][1]
    table = [
        "| fetch of the pinned set | files | MB | seconds | files/s | MB/s | `warm` takes, as a share of its time |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, seconds, files, nbytes in rows:
        table.append(
            f"| {what} | {files} | {nbytes / 1e6:.1f} | {seconds:.2f} | {files / seconds:.1f} | {nbytes / 1e6 / seconds:.2f} | {warm_s / seconds:.2f} |"
        )
    return f"""{WARM_BEGIN}
## `warm` throughput

Measured by `bench/warm_speed.py` in one run, on: {description}.

{chr(10).join(table)}

The pinned set of `bench/wheels.txt`, locked by `uv pip compile --no-deps --format
pylock.toml` for this machine, so `warm` and pip fetch the same wheels (`warm` takes every
locked wheel of a version that fits this machine, pip one per project: a file more or less).
Each row starts from nothing: a fresh cache, or (the last row) pip alone. `warm` fetches 8
files at a time through the cache, which stores each; pip fetches one after another. The last
column divides `warm`'s time by the row's: below 1, `warm` was faster. The time of `warm`
includes starting the command and reading the lock; pip's includes starting pip. The caches
run on this machine and fetch from the official index, so the figures follow that link as
much as devpictl. CPU load from other work skews them: the load average above says how much
there was.
Reproduce with `python bench/warm_speed.py --base-image IMG [--ca-bundle "$SSL_CERT_FILE"]`.
{WARM_END}
"""


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else "# Performance\n"
    found = warm_section(old)
    if found:
        old = old.replace(found + "\n", "", 1)  # and the blank line after it
    marker = "\n## Against fixed targets"
    at = old.index(marker) + 1 if marker in old else len(old)
    path.write_text(old[:at] + text + "\n" + old[at:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="devpictl-bench/devpi:latest", help="image tag to build and run")
    add_image_options(parser)
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-warm-"))
    env = bench_env(work, args.image)
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []

    def up_cache(name: str) -> str:
        return up(name, "tqdm", *ca, env=env)

    try:
        description = machine()
        print(f"• building {args.image}", file=sys.stderr)
        must(devpictl("build", "--image", args.image, "--base-image", args.base_image, *ca, env=env))
        pylock = lock(work)
        print("• devpictl warm into a fresh cache", file=sys.stderr)
        up_cache(NAMES[0])
        start = time.perf_counter()
        report = json.loads(must(devpictl("warm", str(pylock), "--name", NAMES[0], "--json", env=env)))
        warm_s = time.perf_counter() - start
        if not report["complete"] or report["present"]:
            sys.exit(f"bench: warm did not store the whole set on a fresh cache: {report}")
        print("• pip download through a fresh cache", file=sys.stderr)
        through = pip_download(work, work / "through", "--index-url", up_cache(NAMES[1]))
        print("• pip download from the official index", file=sys.stderr)
        direct = pip_download(work, work / "direct")
    finally:
        for name in NAMES:
            devpictl("down", "--name", name, "--volumes", "--yes", env=env)
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("`devpictl warm pylock.toml`, fresh cache", warm_s, report["stored"], report["stored_bytes"]),
        ("`pip download`, through a fresh cache", *through),
        ("`pip download`, official index directly", *direct),
    ]
    text = section(rows, re.sub(r"\s+", " ", description))
    print(text)
    write_section(Path(args.out), text)


if __name__ == "__main__":
    main()
