"""The cache's Prometheus metrics (/+devpictl/metrics) on a real cache: read by Prometheus' own parser, counts of a known sequence."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devpictl.devpi import INSTALLER_AGENT
from tests.integration.support import RUN_ID, cache_env, file_url, remove_cache, up_on_test_upstream

NAME = f"metrics{RUN_ID}"
UTIL = "dpctl_util-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def cache(engine, devpi_image, test_upstream, tmp_path_factory):
    env = cache_env(NAME, tmp_path_factory.mktemp("devpictl-data"), devpi_image)
    index_url = up_on_test_upstream(env, test_upstream)
    yield {"env": env, "index_url": index_url, "root": index_url.removesuffix("root/pypi/+simple/")}
    remove_cache(engine, NAME, env)


def scrape(cache) -> dict:
    """{(name, labels as a sorted tuple): value}, as Prometheus' text parser reads the endpoint."""
    answer = httpx.get(f"{cache['root']}+devpictl/metrics", trust_env=False, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def requests(found: dict, kind: str, result: str) -> float:
    return found["devpictl_requests_total", (("kind", kind), ("result", result))]


def total(found: dict) -> float:
    return sum(value for (name, _), value in found.items() if name == "devpictl_requests_total")


def get(url: str) -> httpx.Response:
    return httpx.get(url, headers={"User-Agent": INSTALLER_AGENT}, trust_env=False, timeout=60)


def test_a_known_sequence_of_requests_is_counted(cache, upstream_root):
    size = (upstream_root / "files" / UTIL).stat().st_size
    before = scrape(cache)
    assert get(f"{cache['index_url']}dpctl-util/").status_code == 200  # fetched through devpi
    url, _ = file_url(cache["index_url"], "dpctl-util", UTIL)  # the same page again: the front server's copy
    assert get(url).status_code == 200  # fetched from the upstream
    assert get(url).status_code == 200  # from the volume's disk
    assert get(f"{cache['index_url']}no-such-project-{RUN_ID}/").status_code == 404
    # The lines reach the metrics as datagrams, after the answers: wait until all five are in.
    for _ in range(100):
        after = scrape(cache)
        if total(after) - total(before) >= 5:
            break
        time.sleep(0.1)

    def grew(kind: str, result: str) -> float:
        return requests(after, kind, result) - requests(before, kind, result)

    assert (grew("page", "fetched"), grew("page", "local"), grew("page", "failed")) == (1, 1, 1)
    assert (grew("file", "fetched"), grew("file", "local")) == (1, 1)
    assert total(after) - total(before) == 5  # scrapes and health checks are not counted
    assert after["devpictl_fetched_bytes_total", ()] - before["devpictl_fetched_bytes_total", ()] == size
    served = ("devpictl_served_bytes_total", (("kind", "file"),))
    assert after[served] - before[served] == 2 * size
    assert after["devpictl_volume_bytes", ()] > 0


def test_nginx_never_failed_to_hand_a_line_over(cache, engine):
    """The metrics listen before nginx starts: no request line was refused (nginx logs each one it could not send)."""
    log = engine.containers.get(f"devpictl-{NAME}").logs().decode(errors="replace")
    assert " front " in log  # the lines went to the log as well
    # nginx 1.22: "send() to syslog failed while logging request" (seen with the metrics stopped by hand).
    assert "syslog" not in log, [line for line in log.splitlines() if "syslog" in line][:5]


def test_a_restart_starts_the_counters_again_and_counts_the_stored_files(cache, engine, upstream_root):
    container = engine.containers.get(f"devpictl-{NAME}")
    container.restart(timeout=10)
    for _ in range(300):
        try:
            found = scrape(cache)
            break
        except (httpx.TransportError, AssertionError):
            time.sleep(0.2)
    else:
        pytest.fail("the metrics did not answer within 60 s of a restart")
    assert total(found) == 0  # a counter reset, which Prometheus' rate() and increase() expect
    assert found["devpictl_index_bytes", (("index", "root/pypi"),)] >= (upstream_root / "files" / UTIL).stat().st_size
