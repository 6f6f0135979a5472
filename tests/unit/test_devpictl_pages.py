"""The plugin's page policy part (templates/devpictl_pages.py): upload times of files whose upstream page gives none, from their Last-Modified.

Run here on stand-ins for devpi's MirrorStage (tests/unit/test_devpictl_mirror_auth.py's);
tests/integration/test_guards.py runs them in devpi, against an HTML-only upstream.
"""

from __future__ import annotations

import json
import threading

from tests.unit.fakes import devpi_pages
from tests.unit.test_devpictl_mirror_auth import fake_devpi_mirror
from tests.unit.test_page_policy import STORED_LINKS, UPSTREAM_PAGE


def test_files_without_a_time_take_their_last_modified_once():
    """An HTML-only upstream (no JSON page parsed): each file's upload time is its Last-Modified, asked once."""
    pages = devpi_pages()
    with fake_devpi_mirror() as mirror:
        pages.keep_upload_times(mirror)
        stage = mirror.MirrorStage()
        stage.last_modified["http://up/files/dpctl_lib-1.0-py3-none-any.whl"] = "Wed, 10 Jan 2024 12:00:00 GMT"
        mirror.MirrorStage._save_cache_links(stage, "dpctl-lib", STORED_LINKS, [None, None], [None, None], -1, None)
        assert stage.keys["dpctl-lib"].value[pages.UPLOAD_TIMES] == {
            "dpctl_lib-1.0-py3-none-any.whl": ["2024-01-10T12:00:00.000000Z", None],
            "dpctl_lib-1.1-py3-none-any.whl": [None, None],  # no Last-Modified: kept without a time, asked again next time
        }
        # The page's next fetch asks only for the file still without a time.
        stage.heads.clear()
        stage.last_modified["http://up/files/dpctl_lib-1.1-py3-none-any.whl"] = "Mon, 10 Jun 2024 12:00:00 GMT"
        mirror.MirrorStage._save_cache_links(stage, "dpctl-lib", STORED_LINKS, [None, None], [None, None], -1, None)
        assert stage.heads == ["http://up/files/dpctl_lib-1.1-py3-none-any.whl"]
        assert stage.keys["dpctl-lib"].value[pages.UPLOAD_TIMES]["dpctl_lib-1.1-py3-none-any.whl"] == ["2024-06-10T12:00:00.000000Z", None]
        # A JSON page's own times win; only the file it gives no time is asked.
        stage.heads.clear()
        mirror.parse_index_v1_json("http://up/simple/dpctl-lib/", json.dumps(UPSTREAM_PAGE))
        mirror.MirrorStage._save_cache_links(stage, "dpctl-lib", STORED_LINKS, [None, None], [None, None], -1, None)
        assert stage.heads == []  # 1.1 has the time stored before
        assert stage.keys["dpctl-lib"].value[pages.UPLOAD_TIMES]["dpctl_lib-1.0-py3-none-any.whl"] == ["2024-01-01T00:00:00Z", 10]


def test_an_offline_mirror_asks_nothing():
    pages = devpi_pages()
    with fake_devpi_mirror() as mirror:
        pages.keep_upload_times(mirror)
        stage = mirror.MirrorStage()
        stage.offline = True
        mirror.MirrorStage._save_cache_links(stage, "dpctl-lib", STORED_LINKS, [None, None], [None, None], -1, None)
    assert stage.heads == [] and pages.UPLOAD_TIMES not in stage.keys["dpctl-lib"].value


def test_last_modified_answers_that_fail_or_come_late_leave_the_time_out():
    pages = devpi_pages()
    late = threading.Event()

    def ask(url):
        if url == "late":
            late.wait()
        if url == "broken":
            raise OSError("connection reset")
        return {"good": "Wed, 10 Jan 2024 12:00:00 GMT", "bad": "yesterday"}.get(url)

    try:
        found = pages.fetch_times(ask, {n: n for n in ("good", "bad", "broken", "none", "late")}, 0.2)
    finally:
        late.set()
    assert found == {"good": "2024-01-10T12:00:00.000000Z"}
    assert pages.fetch_times(ask, {}, 0.2) == {}
