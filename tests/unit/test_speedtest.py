"""The mirror speed test against real HTTP upstreams on 127.0.0.1: fast, slow, failing, silent, redirecting."""

from __future__ import annotations

import asyncio
import io
import socket
import time

import httpx
import pytest
from rich.console import Console

from devpictl import pip, simplepage, speedtest
from devpictl.cli.choosing import results_table
from devpictl.errors import BadInput
from devpictl.simplepage import Link, file_name
from tests.unit.localindex import NEWEST, WHEEL, Behaviour, LocalIndex, SilentPort, closed_port_url

EMPTY_PAGE = "<!DOCTYPE html><html><body><h1>Links for pip</h1></body></html>\n"
TIMEOUT = 1.5  # per mirror, in the tests that include a silent one


@pytest.fixture(scope="module", autouse=True)
def no_proxy():
    """Loopback upstreams must be reached directly even on a host with a proxy set."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def everything():
    """One measurement of every kind of upstream at once; (results by name, wall seconds, servers)."""
    servers = {
        "fast": LocalIndex(Behaviour()),
        "slow": LocalIndex(Behaviour(first_byte_delay=0.2, chunk=50_000, chunk_delay=0.05)),
        "broken": LocalIndex(Behaviour(page_status=500)),
        "moved": LocalIndex(Behaviour(page_status=302, location="http://elsewhere.invalid/simple/pip/")),
        "empty": LocalIndex(Behaviour(page=EMPTY_PAGE)),
        "nowheel": LocalIndex(Behaviour(wheel_status=404)),
        "stalls": LocalIndex(Behaviour(chunk=64_000, stall_after_first_chunk=True)),
    }
    with SilentPort() as silent:
        for server in servers.values():
            server.__enter__()
        try:
            targets = [(name, server.url) for name, server in servers.items()]
            targets += [("silent", silent.url), ("refused", closed_port_url()), ("nourl", None)]
            started = time.monotonic()
            results = speedtest.measure(targets, timeout=TIMEOUT)
            elapsed = time.monotonic() - started
        finally:
            for server in servers.values():
                server.__exit__()
    return {r.name: r for r in results}, elapsed, servers


class TestRanking:
    def test_fast_ranks_before_slow(self, everything):
        results, _, _ = everything
        assert results["fast"].rank == 1
        assert results["slow"].rank == 2
        assert results["fast"].throughput > results["slow"].throughput
        assert results["fast"].ttfb < results["slow"].ttfb
        assert results["slow"].ttfb >= 0.2

    def test_the_fastest_is_marked_once(self, everything):
        results, _, _ = everything
        assert [r.name for r in results.values() if r.fastest] == ["fast"]
        assert speedtest.fastest(list(results.values())) is results["fast"]

    def test_only_ok_mirrors_are_ranked(self, everything):
        results, _, _ = everything
        ranked = {name for name, r in results.items() if r.rank is not None}
        assert ranked == {name for name, r in results.items() if r.ok}

    def test_whole_wheel_downloaded_from_the_newest_link(self, everything):
        results, _, servers = everything
        for name in ("fast", "slow"):
            result = results[name]
            assert result.ok, result
            assert result.bytes == len(WHEEL)
            assert result.file_url == f"http://127.0.0.1:{servers[name].server.server_address[1]}/packages/{NEWEST}"
            assert result.file_name == NEWEST
            assert servers[name].behaviour.paths == ["/simple/pip/", f"/packages/{NEWEST}.metadata", f"/packages/{NEWEST}"]

    def test_a_wheel_cut_short_by_the_time_limit_still_counts(self, everything):
        results, _, _ = everything
        stalls = results["stalls"]
        assert stalls.ok
        assert stalls.bytes == 64_000
        assert 0.5 < stalls.seconds < TIMEOUT + 0.5
        assert stalls.rank > results["fast"].rank

    def test_download_is_capped(self):
        with LocalIndex() as index:
            (result,) = speedtest.measure([("m", index.url)], cap=100_000)
        assert result.ok
        assert 100_000 <= result.bytes < len(WHEEL)


class TestFailures:
    @pytest.mark.parametrize(
        "name, status, reason",
        [
            ("broken", "http error", "HTTP 500"),
            ("moved", "redirect", "redirects to elsewhere.invalid"),
            ("empty", "no files", "lists no files"),
            ("nowheel", "http error", "wheel: HTTP 404"),
            ("silent", "timeout", f"the simple page did not start within {TIMEOUT:g} s"),
            ("refused", "dead", "connection refused"),
            ("nourl", "not measured", "default index"),
        ],
    )
    def test_status_and_reason(self, everything, name, status, reason):
        result = everything[0][name]
        assert result.status == status
        assert reason in result.reason
        assert result.rank is None
        assert not result.fastest
        assert result.throughput is None

    def test_redirect_is_not_followed(self, everything):
        _, _, servers = everything
        assert servers["moved"].behaviour.paths == ["/simple/pip/"]

    def test_time_limit_bounds_the_whole_run(self, everything):
        _, elapsed, _ = everything
        assert elapsed < TIMEOUT + 3

    def test_dead_mirrors_are_never_the_fastest(self):
        with SilentPort() as silent, LocalIndex(Behaviour(page_status=503)) as broken:
            results = speedtest.measure([("silent", silent.url), ("refused", closed_port_url()), ("broken", broken.url)], timeout=0.5)
        assert [r.status for r in results] == ["timeout", "dead", "http error"]
        assert speedtest.fastest(results) is None
        assert all(r.rank is None for r in results)


class TestTable:
    def render(self, results) -> str:
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(results_table(results))
        return console.file.getvalue()

    def test_rendered_table(self, everything):
        results, _, _ = everything
        text = self.render(list(results.values()))
        rows = {line.split()[1] if line.split()[0].isdigit() else line.split()[0]: line for line in text.splitlines()[1:] if line.strip()}
        assert "ok, fastest" in rows["fast"]
        assert NEWEST in rows["fast"]
        assert "fastest" not in text.replace(rows["fast"], "")
        assert "redirects to elsewhere.invalid" in rows["moved"]
        assert "timeout" in rows["silent"]
        assert "connection refused" in rows["refused"]
        assert "HTTP 500" in rows["broken"]
        assert "not measured" in rows["nourl"]
        # Ranked rows come first, fastest at the top.
        assert text.splitlines()[1].split()[:2] == ["1", "fast"]

    def test_a_mirror_still_measuring(self):
        result = speedtest.MirrorResult("tuna", "https://mirror.example/simple")
        assert "measuring..." in self.render([result])


class TestUpdates:
    def test_every_change_is_reported_with_all_results(self):
        seen: list[list[str]] = []
        with LocalIndex() as fast:
            speedtest.measure(
                [("fast", fast.url), ("refused", closed_port_url())],
                timeout=2,
                on_update=lambda results: seen.append([r.status for r in results]),
            )
        assert seen[0] == ["measuring", "measuring"]
        assert seen[-1] == ["ok", "dead"]


def mock(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


class TestThroughTheSeam:
    """Page parsing and edge cases, through an httpx MockTransport."""

    def test_relative_and_absolute_links(self):
        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/pypi/web/simple/pip/":
                return httpx.Response(
                    200,
                    html='<a href="https://files.mirror.example/p/pip-24.0-py3-none-any.whl#sha256=1">x</a>'
                    '<a href="../../../packages/pip-23.0-py3-none-any.whl">y</a>',
                )
            return httpx.Response(200, content=b"x" * 1000)

        (result,) = speedtest.measure([("m", "https://mirror.example/pypi/web/simple/")], transport=mock(handler))
        assert result.ok
        assert result.file_url == "https://files.mirror.example/p/pip-24.0-py3-none-any.whl"
        assert result.bytes == 1000

    def test_a_redirecting_wheel_is_reported(self):
        def handler(request):
            if request.url.path.endswith("/pip/"):
                return httpx.Response(200, html='<a href="/f/pip-1.0-py3-none-any.whl">x</a>')
            return httpx.Response(301, headers={"Location": "https://cdn.example/f/pip-1.0-py3-none-any.whl"})

        (result,) = speedtest.measure([("m", "https://mirror.example/simple")], transport=mock(handler))
        assert result.status == "redirect"
        assert result.reason == "its wheel redirects to cdn.example"

    def test_a_redirect_on_the_same_host_names_the_path(self):
        def handler(request):
            return httpx.Response(302, headers={"Location": "/other/simple/pip/"})

        (result,) = speedtest.measure([("m", "https://mirror.example/simple")], transport=mock(handler))
        assert result.reason == "redirects to /other/simple/pip/"

    def test_a_page_with_only_sdists_has_no_wheel(self):
        def handler(request):
            return httpx.Response(200, html='<a href="pip-1.0.tar.gz">x</a>')

        (result,) = speedtest.measure([("m", "https://mirror.example/simple")], transport=mock(handler))
        assert result.status == "no files"
        assert "lists no wheels" in result.reason

    def test_page_only_ranks_by_first_byte(self):
        async def handler(request):
            if request.url.host == "slow.example":
                await asyncio.sleep(0.2)
            return httpx.Response(200, html='<a href="pip-1.0.tar.gz">x</a>')

        results = speedtest.measure(
            [("slow", "https://slow.example/simple"), ("quick", "https://quick.example/simple")],
            transport=mock(handler),
            download=False,
        )
        assert [r.status for r in results] == ["ok", "ok"]
        assert [r.name for r in speedtest.rank(results)] == ["quick", "slow"]
        assert all(r.file_url is None and r.throughput is None for r in results)

    def test_project_name_is_normalized_in_the_url(self):
        paths = []

        def handler(request):
            paths.append(request.url.path)
            return httpx.Response(404)

        speedtest.measure([("m", "https://mirror.example/simple")], transport=mock(handler), project="Foo_Bar.baz")
        assert paths == ["/simple/foo-bar-baz/"]

    @pytest.mark.parametrize("project", ["../etc", "a b", "", "-x"])
    def test_bad_project_names_are_refused(self, project):
        with pytest.raises(BadInput, match="is not a project name"):
            speedtest.measure([("m", "https://mirror.example/simple")], project=project)

    def test_json_shape(self):
        def handler(request):
            if request.url.path.endswith("/pip/"):
                return httpx.Response(200, html='<a href="pip-1.0-py3-none-any.whl">x</a>')
            return httpx.Response(200, content=b"x" * 100)

        (result,) = speedtest.measure([("m", "https://mirror.example/simple")], transport=mock(handler))
        data = result.as_dict()
        assert set(data) == {
            "name",
            "url",
            "status",
            "reason",
            "ttfb_seconds",
            "file_url",
            "bytes",
            "seconds",
            "bytes_per_second",
            "rank",
            "fastest",
            "core_metadata",
            "core_metadata_detail",
        }
        assert data["core_metadata"] is False  # the mock answers 200 for the .metadata too, but the page announces none
        assert data["fastest"] is True and data["rank"] == 1 and data["bytes"] == 100


class TestConnectFailures:
    @staticmethod
    def chained(cause: BaseException) -> httpx.ConnectError:
        try:
            try:
                raise cause
            except BaseException as exc:
                raise httpx.ConnectError(str(exc)) from exc
        except httpx.ConnectError as exc:
            return exc

    def test_untrusted_certificate_names_the_fix(self):
        import ssl

        status, reason = speedtest._connect_failure(self.chained(ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]")))
        assert status == "tls error"
        assert "SSL_CERT_FILE" in reason

    def test_unknown_host(self):
        assert speedtest._connect_failure(self.chained(socket.gaierror(-2, "Name or service not known"))) == ("dead", "host not found")

    def test_refused(self):
        assert speedtest._connect_failure(self.chained(ConnectionRefusedError(111, "Connection refused"))) == ("dead", "connection refused")


def links(*files: tuple[str, bool]) -> list[Link]:
    return [Link(url, file_name(url), None, yanked) for url, yanked in files]


class TestNewestWheel:
    def test_versions_compare_numerically_and_yanked_is_last_resort(self):
        files = links(
            ("https://m/p/pip-9.0.3-py2.py3-none-any.whl", False),
            ("https://m/p/pip-10.0.1-py2.py3-none-any.whl", False),
            ("https://m/p/pip-10.0.1.tar.gz", False),
            ("https://m/p/pip-11.0b1-py3-none-any.whl", False),
            ("https://m/p/pip-12.0-py3-none-any.whl", True),
        )
        assert simplepage.newest_wheel(files) == "https://m/p/pip-11.0b1-py3-none-any.whl"
        assert simplepage.newest_wheel(files[:3]) == "https://m/p/pip-10.0.1-py2.py3-none-any.whl"
        assert simplepage.newest_wheel([files[-1]]) == files[-1].url
        assert simplepage.newest_wheel([files[2]]) is None

    def test_version_order(self):
        order = ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "2", "10.0"]
        files = links(*[(f"https://m/p/demo-{v}-py3-none-any.whl", False) for v in reversed(order)])
        for newest in range(len(order)):
            assert simplepage.newest_wheel(files[newest:]) == f"https://m/p/demo-{order[-1 - newest]}-py3-none-any.whl"


class TestDefaultIndex:
    def test_read_from_pips_help(self):
        url = pip.default_index_url()
        assert url and url.startswith("https://") and url.endswith("/simple")

    def test_none_without_pip(self, monkeypatch, tmp_path):
        monkeypatch.setattr(pip.sys, "executable", str(tmp_path / "no-python"))
        monkeypatch.setenv("PATH", str(tmp_path))
        assert pip.default_index_url() is None
