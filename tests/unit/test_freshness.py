"""How far a mirror is behind the reference index: the lag computation, pinned, and its measurement."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from packaging.version import Version

from devpictl import freshness
from devpictl.cli.choosing import within

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def v(text: str) -> Version:
    return Version(text)


def reference(**hours_ago: float) -> dict[Version, datetime | None]:
    return {v(version.replace("_", ".")): NOW - timedelta(hours=h) for version, h in hours_ago.items()}


def test_up_to_date():
    ref = reference(**{"1_0": 50, "1_1": 20})
    assert freshness.lag("boto3", ref, {v("1.0"), v("1.1")}, NOW) == freshness.UP_TO_DATE


def test_behind_counts_newer_releases_and_hours_since_the_oldest_missing():
    ref = reference(**{"1_0": 50, "1_1": 20, "1_2": 3})
    found = freshness.lag("boto3", ref, {v("1.0")}, NOW)
    assert found.releases == 2
    assert found.hours == pytest.approx(20.0)
    assert found.missing == ("boto3 1.1", "boto3 1.2")
    assert found.describe() == "2 releases behind, 20 h"


def test_a_hole_below_the_newest_is_not_lag():
    ref = reference(**{"1_0": 50, "1_1": 20, "1_2": 3})
    assert freshness.lag("boto3", ref, {v("1.0"), v("1.2")}, NOW).releases == 0


def test_versions_compare_as_versions_not_text():
    ref = reference(**{"1_9": 30, "1_10": 2})
    assert freshness.lag("p", ref, {v("1.9")}, NOW) == freshness.Lag(1, pytest.approx(2.0), ("p 1.10",))


def test_without_upload_times_the_releases_still_count():
    found = freshness.lag("p", {v("1.0"): None, v("2.0"): None}, {v("1.0")}, NOW)
    assert (found.releases, found.hours) == (1, None)
    assert found.describe() == "1 release behind"


def test_worst_over_projects():
    a = freshness.Lag(1, 5.0, ("a 2",))
    b = freshness.Lag(3, 2.0, ("b 4", "b 5", "b 6"))
    assert freshness.worst([a, b]) == freshness.Lag(3, 5.0, ("a 2", "b 4", "b 5", "b 6"))
    assert freshness.worst([]) == freshness.UP_TO_DATE
    # An up-to-date project says nothing of how long the others have been behind.
    assert freshness.worst([freshness.UP_TO_DATE, freshness.Lag(1, None, ("c 2",))]) == freshness.Lag(1, None, ("c 2",))


def test_reference_releases_from_the_json_api_take_each_versions_first_upload():
    page = {
        "files": [
            {"filename": "boto3-1.0-py3-none-any.whl", "upload-time": "2026-11-24T10:00:00.123456Z"},
            {"filename": "boto3-1.0.tar.gz", "upload-time": "2026-11-24T09:00:00Z"},
            {"filename": "boto3-1.1.tar.gz"},
            {"filename": "not-a-dist.txt", "upload-time": "2026-11-24T09:00:00Z"},
        ]
    }
    found = freshness.reference_releases(json.dumps(page), "application/vnd.pypi.simple.v1+json", "https://r.example/simple/boto3/")
    assert found == {v("1.0"): datetime(2026, 11, 24, 9, 0, tzinfo=UTC), v("1.1"): None}


def test_within_a_maximum_lag():
    assert within(freshness.Freshness(freshness.UP_TO_DATE), 6)
    assert within(freshness.Freshness(freshness.Lag(1, 5.0)), 6)
    assert not within(freshness.Freshness(freshness.Lag(1, 7.0)), 6)
    assert not within(freshness.Freshness(freshness.Lag(1, None)), 6)  # unknown age: not proven fresh
    assert not within(freshness.Freshness(None, "did not answer"), 6)
    assert not within(None, 6)


def test_measure_against_a_json_reference():
    uploaded = (NOW - timedelta(hours=9)).isoformat().replace("+00:00", "Z")

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "ref.example":
            files = [
                {"filename": "boto3-1.0.tar.gz", "upload-time": "2026-11-01T00:00:00Z"},
                {"filename": "boto3-1.1.tar.gz", "upload-time": uploaded},
            ]
            return httpx.Response(200, json={"files": files}, headers={"content-type": "application/vnd.pypi.simple.v1+json"})
        if host == "behind.example":
            return httpx.Response(200, text='<a href="boto3-1.0.tar.gz#sha256=00">boto3-1.0.tar.gz</a>')
        if host == "fresh.example":
            return httpx.Response(200, text='<a href="../../f/boto3-1.1.tar.gz">x</a><a href="boto3-1.0.tar.gz">y</a>')
        if host == "empty.example":
            return httpx.Response(200, text="<html></html>")
        return httpx.Response(503)

    mirrors = [f"https://{h}/simple" for h in ("behind.example", "fresh.example", "empty.example", "down.example")]
    results = freshness.measure(mirrors, "https://ref.example/simple", projects=["boto3"], now=NOW, transport=httpx.MockTransport(handle))
    assert results[0].lag == freshness.Lag(1, pytest.approx(9.0), ("boto3 1.1",))
    assert results[1].lag == freshness.UP_TO_DATE
    assert results[2].lag is None and "lists no files" in results[2].problem
    assert results[3].lag is None and "HTTP 503" in results[3].problem


def test_a_silent_reference_measures_nothing():
    results = freshness.measure(
        ["https://m.example/simple"],
        "https://ref.example/simple",
        projects=["boto3"],
        now=NOW,
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )
    assert results[0].lag is None and "reference index did not answer" in results[0].problem
