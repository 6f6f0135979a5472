#!/usr/bin/env python3
"""Benchmark what a replica adds, in one run: warm serving through it against its primary, and replication delay.

    python bench/replicas.py --image TAG [--ca-bundle FILE] [--runs 5]

It starts a primary on the official index and one replica of it (`up --replica-of`) on a
Docker network of its own (names start with ``bench-repl``), fills the primary with the
pinned set (bench/wheels.txt), then measures:

- how many of the set's files the replica downloaded by itself within a minute (devpi
  queues every link of every cached page, stored or not, and works through them);
- the first fetch of the set through the replica (it gets what it lacks from the primary
  on demand and keeps it);
- warm: the set fetched as pip does (bench.py's fetch_set, 8 at a time) through the
  primary and through the replica, median of --runs, as a ratio;
- replication delay: for a few wheels outside the set, the time from the primary's answer
  (it stored the file) to the file being on the replica's disk.

It prints a markdown table (docs/scale-out.md quotes it) and removes everything it created.
The image must exist (`devpictl build --image TAG`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, bench/ is on sys.path: bench.py's helpers, as it measures them.
from bench import add_image_options, bench_env, devpictl, fetch_set, machine, median_fetch, must, pins, up

PRIMARY, REPLICA = "bench-repl-primary", "bench-repl-replica"
PROBE = "tqdm"  # outside the set: readiness warms nothing measured
DELAY_PINS = ["botocore==1.35.0", "boto3==1.35.0", "s3transfer==0.10.2", "jmespath==1.0.1", "markdown==3.6"]
BY_ITSELF = 60  # seconds the replica gets to download the set by itself


def holds(engine, container: str, filenames: list[str]) -> list[str]:
    """The files among ``filenames`` that the container's volume holds."""
    result = engine.containers.get(container).exec_run(["find", "/data/server/+files", "-type", "f", "-name", "*.whl"])
    present = {line.rsplit("/", 1)[-1] for line in result.output.decode().splitlines()}
    return [name for name in filenames if name in present]


def wait_until_held(engine, container: str, filenames: list[str], timeout: float, poll: float) -> float:
    """Seconds until ``container`` holds all of ``filenames``."""
    start = time.perf_counter()
    while len(holds(engine, container, filenames)) < len(filenames):
        if time.perf_counter() - start > timeout:
            sys.exit(f"bench: {container} did not get {filenames} within {timeout} s")
        time.sleep(poll)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="the image devpictl built, to run primary and replica")
    add_image_options(parser, base_image=False)
    parser.add_argument("--runs", type=int, default=5, help="warm runs per target (median)")
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="devpictl-bench-replicas-"))
    env = bench_env(work, args.image)
    ca = ["--ca-bundle", args.ca_bundle] if args.ca_bundle else []
    network = engine.networks.create("bench-repl-net", labels={"devpictl.bench": "1"})
    try:
        print("• primary and replica", file=sys.stderr)
        primary_url = up(PRIMARY, PROBE, "--network", network.name, *ca, env=env)
        secret = work / "primary.secret"
        must(devpictl("password", "--name", PRIMARY, "--replica-secret", str(secret), env=env))
        start = time.perf_counter()
        replica_url = up(
            REPLICA,
            PROBE,
            "--network",
            network.name,
            "--replica-of",
            f"http://devpictl-{PRIMARY}:3141",
            "--replica-secret",
            str(secret),
            env=env,
        )
        replica_up = time.perf_counter() - start

        print(f"• filling the primary; what the replica downloads by itself in {BY_ITSELF} s", file=sys.stderr)
        cold = fetch_set(primary_url, pins())
        wheels = cold.names
        time.sleep(BY_ITSELF)
        by_itself = len(holds(engine, f"devpictl-{REPLICA}", wheels))
        first = fetch_set(replica_url, wheels)  # the rest on demand, and the replica's page cache

        print(f"• warm: {args.runs} runs through each", file=sys.stderr)
        primary_warm = median_fetch(primary_url, wheels, args.runs)
        replica_warm = median_fetch(replica_url, wheels, args.runs)

        print("• replication delay of newly cached files", file=sys.stderr)
        delays = []
        for pin in DELAY_PINS:
            fetched = fetch_set(primary_url, [pin])
            if fetched.failures:
                continue
            delays.append(wait_until_held(engine, f"devpictl-{REPLICA}", fetched.names, 120, 0.1))
    finally:
        for name in (REPLICA, PRIMARY):
            devpictl("down", "--name", name, "--volumes", "--yes", env=env)
        network.remove()

    failures = cold.failures + first.failures + primary_warm.failures + replica_warm.failures
    print(f"""
Measured {time.strftime("%Y-%m-%d")} on {machine()}; {len(wheels)} wheels, {cold.nbytes / 1e6:.1f} MB; one run.

| what | figure |
|---|---|
| warm fetch of the set through the replica / through the primary (median of {args.runs}) | {replica_warm.seconds / primary_warm.seconds:.2f} ({replica_warm.seconds:.2f} s / {primary_warm.seconds:.2f} s) |
| replication delay of a newly cached file: primary stored it → on the replica's disk (median of {len(delays)}, min–max) | {statistics.median(delays):.1f} s ({min(delays):.1f}–{max(delays):.1f} s) |
| files of the set the replica downloaded by itself within {BY_ITSELF} s of the primary fetching them | {by_itself} of {len(wheels)} |
| first fetch of the set through the replica (the rest from the primary, on demand) / warm through the primary | {first.seconds / primary_warm.seconds:.2f} ({first.seconds:.2f} s) |
| `up --replica-of` to caught up and serving | {replica_up:.0f} s |
| failed requests | {failures} |
""")


if __name__ == "__main__":
    main()
