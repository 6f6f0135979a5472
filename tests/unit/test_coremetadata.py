"""Whether an upstream serves core metadata (PEP 658/714): the verdict, the check inside the container, mirrors test, status."""

from __future__ import annotations

import hashlib
import json
import subprocess

import httpx
import pytest

from devpictl import container as ctr
from devpictl import coremetadata, layout, probe, speedtest
from devpictl.coremetadata import MetadataCheck
from tests.unit.clihelp import invoke
from tests.unit.fakes import TUNA, FakeDevpi, FakeEngine, checked_cache, configured, page_answer
from tests.unit.upstream_check import local_server, run_check

METADATA = b"Metadata-Version: 2.1\nName: pip\nVersion: 24.0\n"
DIGEST = hashlib.sha256(METADATA).hexdigest()
WHEEL = "pip-24.0-py3-none-any.whl"


def page(announce: str | None) -> str:
    """A simple page whose newest wheel carries ``announce`` as both PEP 714 and PEP 658 attributes."""
    attrs = f' data-core-metadata="{announce}" data-dist-info-metadata="{announce}"' if announce else ""
    return (
        '<a href="../../f/pip-23.0-py3-none-any.whl#sha256=00">pip-23.0-py3-none-any.whl</a>\n'
        f'<a href="../../f/{WHEEL}#sha256=11"{attrs}>{WHEEL}</a>\n'
    )


class TestVerdict:
    @pytest.mark.parametrize(
        "attrs, value",
        [
            ({"data-core-metadata": "sha256=AB"}, "sha256=AB"),
            ({"data-dist-info-metadata": "true"}, "true"),
            ({"data-core-metadata": None}, "true"),  # a bare attribute
            ({"data-core-metadata": "sha256=aa", "data-dist-info-metadata": "sha256=bb"}, "sha256=aa"),  # PEP 714 wins
            ({"data-core-metadata": "false"}, None),
            ({"href": "x"}, None),
        ],
    )
    def test_announcement(self, attrs, value):
        assert coremetadata.announcement(attrs) == value

    def test_served_when_it_answers_and_matches(self):
        assert coremetadata.judge(WHEEL, f"sha256={DIGEST.upper()}", 200, DIGEST) == MetadataCheck(
            True, f"{WHEEL}.metadata matches the announced sha256"
        )
        assert coremetadata.judge(WHEEL, "true", 200, DIGEST).served

    def test_an_unannounced_file_is_not_trusted_for_the_others(self):
        # Seen in the wild: .metadata for some files only, none announced; devpi would announce all.
        check = coremetadata.judge(WHEEL, None, 200, DIGEST)
        assert check == MetadataCheck(False, f"{WHEEL}.metadata answers, but its page does not announce it")

    def test_not_served_when_missing_or_different(self):
        assert coremetadata.judge(WHEEL, "true", 404, None) == MetadataCheck(False, f"{WHEEL}.metadata answers HTTP 404")
        assert not coremetadata.judge(WHEEL, f"sha256={'0' * 64}", 200, DIGEST).served

    @pytest.mark.parametrize(
        "version, supported", [("6.20.3", True), ("6.20.0", True), ("7.1", True), ("6.19.1", False), ("6.17.0", False), ("dev", False)]
    )
    def test_supported_by(self, version, supported):
        assert coremetadata.supported_by(version) is supported


def checking_container(page_text: str, metadata: tuple[int, bytes] | None):
    """A cache whose upstream check serves ``page_text`` and, for the wheel's .metadata, ``metadata``."""

    def answer(args, env):
        url = env["DEVPICTL_CHECK_URL"]
        if env.get("DEVPICTL_CHECK_WHAT") == "digest":
            assert url == f"{TUNA.url.removesuffix('/simple')}/f/{WHEEL}.metadata"  # resolved against the page
            if metadata is None:
                return 1, "URLError: timed out\n"
            status, body = metadata
            return 0, json.dumps({"status": status, "sha256": hashlib.sha256(body).hexdigest()})
        return 0, page_answer(url, page_text)

    cache = FakeEngine().add("default").cache
    cache.scripts["upstream_check.py"] = answer
    return cache


class TestMeasuredFromTheContainer:
    @pytest.mark.parametrize(
        "announce, metadata, served",
        [
            (f"sha256={DIGEST}", (200, METADATA), True),
            ("true", (200, METADATA), True),
            (None, (200, METADATA), False),
            (f"sha256={DIGEST}", (200, b"something else"), False),
            ("true", (404, b""), False),
            ("true", None, None),  # no answer is no verdict
        ],
        ids=["hash-matches", "announced", "not-announced", "hash-differs", "missing", "silent"],
    )
    def test_newest_wheel_stands_for_all(self, announce, metadata, served):
        container = checking_container(page(announce), metadata)
        check = probe.measure_core_metadata(container, TUNA.url, "pip")
        assert check.served is served, check
        assert WHEEL in check.detail

    def test_a_page_that_does_not_answer_is_no_verdict(self):
        container = FakeEngine().add("default").cache
        container.scripts["upstream_check.py"] = (1, "URLError: timed out\n")
        check = probe.measure_core_metadata(container, TUNA.url, "pip")
        assert check.served is None and "did not answer (URLError: timed out)" in check.detail

    def test_a_page_without_wheels(self):
        container = checking_container('<a href="pip-24.0.tar.gz">pip-24.0.tar.gz</a>', None)
        assert probe.measure_core_metadata(container, TUNA.url, "pip") == MetadataCheck(False, "its page for 'pip' lists no wheel")


@pytest.fixture
def local_upstream():
    def answer(path, headers):
        body, status = {"/f/x.whl.metadata": (METADATA, 200)}.get(path, (b"not found", 404))
        return status, body, {}

    with local_server(answer) as base:
        yield base


class TestCheckScript:
    """The script the container runs, run here against a real HTTP server."""

    def run(self, url: str, *, digest: bool) -> subprocess.CompletedProcess:
        return run_check(url, digest=digest)

    def test_digest_of_a_file(self, local_upstream):
        done = self.run(f"{local_upstream}/f/x.whl.metadata", digest=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout) == {"status": 200, "sha256": DIGEST}

    def test_a_missing_file_is_an_answer_not_a_failure(self, local_upstream):
        done = self.run(f"{local_upstream}/f/y.whl.metadata", digest=True)
        assert done.returncode == 0 and json.loads(done.stdout)["status"] == 404

    def test_a_missing_page_is_a_failure(self, local_upstream):
        done = self.run(f"{local_upstream}/simple/nosuch/", digest=False)
        assert done.returncode == 1 and done.stdout.startswith("HTTPError: ")


def mock_mirror(announce: str | None, metadata: tuple[int, bytes]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/pip/"):
            return httpx.Response(200, html=page(announce))
        if request.url.path.endswith(".metadata"):
            return httpx.Response(metadata[0], content=metadata[1])
        return httpx.Response(200, content=b"x" * 1000)

    return httpx.MockTransport(handler)


class TestMirrorsTest:
    @pytest.mark.parametrize(
        "announce, metadata, served",
        [(f"sha256={DIGEST}", (200, METADATA), True), (f"sha256={DIGEST}", (200, b"other"), False), ("true", (404, b""), False)],
    )
    def test_metadata_of_the_newest_wheel(self, announce, metadata, served):
        (result,) = speedtest.measure([("m", "https://mirror.example/simple/")], transport=mock_mirror(announce, metadata))
        assert result.ok  # metadata never fails a mirror
        assert result.core_metadata is served
        assert result.as_dict()["core_metadata"] is served

    def test_the_table_has_a_metadata_column(self):
        from rich.console import Console

        from devpictl.cli.choosing import results_table

        with_metadata, without = speedtest.measure(
            [("meta", "https://meta.example/simple"), ("bare", "https://bare.example/simple")],
            transport=httpx.MockTransport(
                lambda request: mock_mirror("true", (200, METADATA) if request.url.host == "meta.example" else (404, b"")).handle_request(
                    request
                )
            ),
        )
        console = Console(width=200, color_system=None, record=True)
        console.print(results_table([with_metadata, without]))
        lines = console.export_text().splitlines()
        assert "metadata" in lines[0].split()
        rows = {name: line.split() for line in lines[1:] for name in ("meta", "bare") if f" {name} " in line}
        assert "yes" in rows["meta"] and "no" not in rows["meta"]
        assert "no" in rows["bare"] and "yes" not in rows["bare"]


@pytest.fixture
def engine(monkeypatch):
    engine = FakeEngine()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    return engine


def status_devpi(monkeypatch, ixconfig: dict, version: str = "6.20.3") -> None:
    FakeDevpi(ixconfig, version=version).serve(monkeypatch)


class TestStatus:
    @pytest.mark.parametrize(
        "enabled, flag, version, shown, note",
        [
            (True, True, "6.20.3", "core metadata: served", None),
            (
                True,
                False,
                "6.20.3",
                "core metadata: not served: the upstream was not found to serve .metadata files",
                "the upstream was not found",
            ),
            (False, True, "6.20.3", "core metadata: not served: this image's devpi-server runs without enable-core-metadata", "rebuild"),
            (False, False, "6.17.0", "core metadata: not served: devpi-server 6.17.0 has no core metadata support", "6.20 or newer"),
        ],
    )
    def test_text_and_json(self, engine, monkeypatch, enabled, flag, version, shown, note):
        status_devpi(monkeypatch, {**configured(TUNA), "mirror_provides_core_metadata": flag}, version)
        cache = checked_cache(engine, check=(0, page_answer(f"{TUNA.url}/pip/", page(None))))
        yaml = "devpi-server:\n  serverdir: /data/server\n" + ("  enable-core-metadata: true\n" if enabled else "")
        cache.files[layout.SERVER_CONFIG] = yaml
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert shown in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["core_metadata"] is (enabled and flag)
        assert (data["core_metadata_note"] is None) if note is None else (note in data["core_metadata_note"])

    def test_a_stopped_cache_does_not_say(self, engine, monkeypatch):
        status_devpi(monkeypatch, configured(TUNA))
        checked_cache(engine, check=(0, ""), status="exited")
        assert json.loads(invoke("status", "--json").stdout)["core_metadata"] is None
