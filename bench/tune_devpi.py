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
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench  # noqa: E402
from devpictl import layout  # noqa: E402
from devpictl.devpi import DevpiClient  # noqa: E402

OPTION_SETS = [
    [],
    ["--threads", "50", "--keyfs-cache-size", "10000"],
    ["--threads", "16"],
    ["--threads", "8"],
    ["--threads", "16", "--keyfs-cache-size", "2000"],
]
PASSWORD = "tune-devpi-password"
REPORT = """# devpi-server options, measured

Written by `bench/tune_devpi.py` in one run: devpi alone (no front server), official index
upstream, the {count} pinned wheels of `bench/wheels.txt` fetched 8 at a time; a fresh
container per row. "(image defaults)" is what devpictl sets in devpi-server.yml
(threads 16, connection-limit 64, request-timeout 30, keyfs-cache-size 2000); the other rows
override options on the command line, `--threads 50 --keyfs-cache-size 10000` being devpi's
own defaults.

{table}

Reading it: warm and cold times of devpi alone vary by about ±25 % between runs on this
2-core machine, more than between these rows, so the option sets don't differ measurably in
speed. Memory does: 50 threads cost roughly 20 MB more when idle (repeat rows differ by about 5 MB). Behind the front server
devpi only serves page and file misses, so devpictl keeps 16 threads (twice the 8 concurrent
installers measured) and a keyfs cache of 2000 entries (about 1 kB each, bounding its growth
over a long uptime). The connection limit is nginx's 32 keep-alive connections plus headroom,
and the request timeout (devpi's default is 5 s) is raised to 30 s so that a large project
page from a slow mirror is not cut off (a choice, not measured here: no slow mirror is
reachable from the test machine).

Reproduce: `python bench/tune_devpi.py --image TAG [--ca-bundle "$SSL_CERT_FILE"]`
"""


def memory_mb(container) -> tuple[float, float]:
    stats = container.stats(stream=False)["memory_stats"]
    inner = stats.get("stats", {})
    anon = inner.get("anon", inner.get("rss", 0))
    return anon / 1e6, (stats["usage"] - inner.get("inactive_file", 0)) / 1e6


def measure(engine, image: str, args: list[str], ca_bundle: str | None, wheels: list[str], secret: str) -> str:
    port = bench.free_port()
    password_file = f"/run/secrets/{layout.ROOT_PASSWORD}"
    volumes = {secret: {"bind": password_file, "mode": "ro"}}
    if ca_bundle:
        volumes[ca_bundle] = {"bind": f"{layout.RUN_DIR}/{layout.CA_BUNDLE}", "mode": "ro"}
    container = engine.containers.run(
        image,
        args,
        detach=True,
        environment={layout.ENV_FRONT: "0", layout.ENV_ROOT_PASSWORD_FILE: password_file},
        volumes=volumes,
        ports={f"{layout.CONTAINER_PORT}/tcp": ("127.0.0.1", port)},
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
    bench.add_image_options(parser, base_image=False)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "devpi-options.md"))
    args = parser.parse_args()

    import docker

    engine = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="devpictl-tune-") as work:
        wheels = bench.pins()  # the pages name the files: nothing fetched before the cold run
        secret = Path(work) / "root-password"
        secret.write_text(PASSWORD)
        secret.chmod(0o644)  # read by the container's devpi user
        rows = [
            "| devpi-server options | cold | warm (median of 5) | idle anon memory | idle memory (docker stats) |",
            "|---|---|---|---|---|",
        ]
        for option_set in OPTION_SETS:
            try:
                rows.append(measure(engine, args.image, option_set, args.ca_bundle, wheels, str(secret)))
            except httpx.HTTPError as exc:
                rows.append(f"| `{' '.join(option_set)}` | failed: {exc} | | | |")
            print(rows[-1], flush=True)
    Path(args.out).write_text(REPORT.format(table="\n".join(rows), count=len(wheels)))


if __name__ == "__main__":
    main()
