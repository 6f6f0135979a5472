#!/usr/bin/env python3
"""Measure devpi-server options that matter for speed and memory (devpi alone, no front).

    python bench/tune_devpi.py --image TAG [--ca-bundle FILE]

For each option set, it starts a fresh container of the image (official index upstream),
fetches the pinned set cold once and warm five times, 8 at a time, as bench.py does, then
reads the container's memory after 5 s idle. The numbers behind the defaults that
devpictl.image.render_server_config sets are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench  # noqa: E402

from devpictl.devpi import DevpiClient  # noqa: E402

OPTION_SETS = [
    [],
    ["--threads", "50", "--keyfs-cache-size", "10000"],
    ["--threads", "16"],
    ["--threads", "8"],
    ["--threads", "16", "--keyfs-cache-size", "2000"],
]
PASSWORD = "tune-devpi-password"


def memory_mb(container) -> tuple[float, float]:
    stats = container.stats(stream=False)["memory_stats"]
    inner = stats.get("stats", {})
    anon = inner.get("anon", inner.get("rss", 0))
    return anon / 1e6, (stats["usage"] - inner.get("inactive_file", 0)) / 1e6


def measure(engine, image: str, args: list[str], ca_bundle: str | None, wheels: list[str], secret: str) -> str:
    port = bench.free_port()
    volumes = {secret: {"bind": "/run/secrets/root-password", "mode": "ro"}}
    if ca_bundle:
        volumes[ca_bundle] = {"bind": "/run/devpictl/ca-bundle.pem", "mode": "ro"}
    container = engine.containers.run(
        image,
        args,
        detach=True,
        environment={"DEVPICTL_FRONT": "0", "DEVPICTL_ROOT_PASSWORD_FILE": "/run/secrets/root-password"},
        volumes=volumes,
        ports={"3141/tcp": ("127.0.0.1", port)},
        labels={"devpictl.bench": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        bench.wait_http(f"{base}/+api", timeout=120)
        with DevpiClient(base) as client:
            client.login("root", PASSWORD)
            client.patch_index(["mirror_no_project_list=true"])
        url = f"{base}/root/pypi/+simple/"
        cold = bench.fetch_set(url, wheels)
        warm = statistics.median(bench.fetch_set(url, wheels).seconds for _ in range(5))
        time.sleep(5)
        anon, usage = memory_mb(container)
        return f"| `{' '.join(args) or '(image defaults)'}` | {cold.seconds:.2f} s ({cold.failures} failed) | {warm:.3f} s | {anon:.0f} MB | {usage:.0f} MB |"
    finally:
        container.remove(force=True, v=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="a devpictl image (devpictl build)")
    parser.add_argument("--ca-bundle", default=os.environ.get("DEVPICTL_CA_BUNDLE"))
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="devpictl-tune-") as work:
        wheels = [w.name for w in bench.pinned_wheels(Path(work))]
        secret = Path(work) / "root-password"
        secret.write_text(PASSWORD)
        secret.chmod(0o644)  # read by the container's devpi user
        print("| devpi-server options | cold | warm (median of 5) | idle anon memory | idle memory (docker stats) |")
        print("|---|---|---|---|---|")
        for option_set in OPTION_SETS:
            try:
                print(measure(engine, args.image, option_set, args.ca_bundle, wheels, str(secret)), flush=True)
            except httpx.HTTPError as exc:
                print(f"| `{' '.join(option_set)}` | failed: {exc} | | | |", flush=True)


if __name__ == "__main__":
    main()
