"""The cache's core steps (upstream switching, readiness) and the settings they rely on."""

from __future__ import annotations

import json
import stat
from types import SimpleNamespace

import httpx
import pytest

from devpictl import cache, settings
from devpictl import image as img
from devpictl.coremetadata import MetadataCheck
from devpictl.devpi import DevpiClient
from devpictl.errors import BadInput, Conflict, DevpiError, Interrupted, ReadinessTimeout, UpstreamUnreachable
from devpictl.mirrors import CATALOG, OFFICIAL, Upstream
from devpictl.replica import PAGES_GENERATION

OFFICIAL_URL = "https://official.index.example/simple"
TUNA = CATALOG["tuna"]
ROOT_PASSWORD = "root-pw-for-tests"
TOKEN = "token-abc"
FILES_PAGE = '<html><body><a href="../../+f/1/2/pip-24.0-py3-none-any.whl#sha256=00">pip-24.0-py3-none-any.whl</a><br/></body></html>'
EMPTY_PAGE = "<html><body><h1>root/pypi: links for pip</h1></body></html>"


class FakeDevpi:
    """A tiny stateful devpi-server: root/pypi's ixconfig, its cached projects, login, PATCH, refresh."""

    def __init__(self, ixconfig: dict | None = None, projects: tuple[str, ...] = ()):
        # devpi-init's root/pypi: the official index, with a trailing slash.
        self.ixconfig = {"type": "mirror", "volatile": False, "mirror_url": OFFICIAL_URL + "/", "title": "PyPI"}
        self.ixconfig.update(ixconfig or {})
        self.projects = list(projects)
        self.requests: list[httpx.Request] = []
        self.simple_pages: list[httpx.Response] = []  # answers to the next simple-page GETs, in order
        self.not_upstream: set[str] = set()  # projects the new upstream lacks: their refresh fails

    def client(self) -> DevpiClient:
        return DevpiClient("http://127.0.0.1:3141", transport=httpx.MockTransport(self.handle))

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def patches(self) -> list[list[str]]:
        """The PATCHes of root/pypi's settings, without the announcements to replicas (announcements())."""
        return [json.loads(r.content) for r in self.requests if r.method == "PATCH" and not self.announces(r)]

    def announcements(self) -> list[int]:
        """Where, among all requests, the pages generation replicas watch was set (replica.announce_new_pages)."""
        return [i for i, r in enumerate(self.requests) if r.method == "PATCH" and self.announces(r)]

    @staticmethod
    def announces(request: httpx.Request) -> bool:
        return json.loads(request.content)[0].startswith(PAGES_GENERATION + "=")

    def authorised(self, request: httpx.Request) -> bool:
        return request.headers.get("x-devpi-auth") is not None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, request.url.path
        if (method, path) == ("POST", "/+login"):
            if json.loads(request.content) != {"user": "root", "password": ROOT_PASSWORD}:
                return httpx.Response(401, json={"type": "error", "message": "could not authenticate"})
            return httpx.Response(200, json={"type": "proxyauth", "result": {"password": TOKEN, "expiration": 36000}})
        if (method, path) == ("GET", "/root/pypi"):
            result = dict(self.ixconfig)
            if "no_projects" not in request.url.params:
                result["projects"] = list(self.projects)
            return httpx.Response(200, json={"type": "indexconfig", "result": result})
        if (method, path) == ("PATCH", "/root/pypi"):
            if not self.authorised(request):
                return httpx.Response(403, json={"type": "error", "message": "forbidden"})
            for item in json.loads(request.content):
                key, _, value = item.partition("=")
                self.ixconfig[key] = {"true": True, "false": False}.get(value, value)
            return httpx.Response(200, json={"type": "indexconfig", "result": self.ixconfig})
        if method == "POST" and path.startswith("/root/pypi/+simple/") and path.endswith("/refresh"):
            if not self.authorised(request):
                return httpx.Response(403, json={"type": "error", "message": "forbidden"})
            if path.split("/")[4] in self.not_upstream:
                # devpi 6.20 answers 500 when the upstream has no such project.
                return httpx.Response(500, text="<html>Internal Server Error</html>")
            return httpx.Response(302, headers={"location": path.removesuffix("refresh")})
        if method == "GET" and path.startswith("/root/pypi/+simple/"):
            if self.simple_pages:
                return self.simple_pages.pop(0)
            return httpx.Response(200, text=EMPTY_PAGE)
        return httpx.Response(404, json={"type": "error", "message": f"no {path}"})


def configured(upstream: Upstream) -> dict:
    """An ixconfig that already has everything devpictl sets for ``upstream``."""
    return {
        "mirror_url": upstream.url or OFFICIAL_URL + "/",
        "mirror_ignore_serial_header": not upstream.sends_serial_header,
        "mirror_no_project_list": True,
    }


class FakeClock:
    """Stands in for the time module in devpictl.cache: sleeping advances the clock at once."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(cache, "time", fake)
    return fake


class TestUpstreamChanges:
    def test_catalog_mirror_on_a_fresh_index(self):
        ixconfig = {"mirror_url": OFFICIAL_URL + "/"}
        assert cache.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == [
            "mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple",
            "mirror_ignore_serial_header=true",
            "mirror_no_project_list=true",
        ]

    def test_custom_mirror(self):
        custom = Upstream("custom", "http://10.0.0.9:8080/simple")
        assert cache.upstream_changes(custom, {}, OFFICIAL_URL) == [
            "mirror_url=http://10.0.0.9:8080/simple",
            "mirror_ignore_serial_header=true",
            "mirror_no_project_list=true",
        ]

    def test_official_uses_the_given_url_and_keeps_the_serial_check(self):
        ixconfig = configured(TUNA)
        assert cache.upstream_changes(OFFICIAL, ixconfig, "https://pypi.example/simple") == [
            "mirror_url=https://pypi.example/simple",
            "mirror_ignore_serial_header=false",
        ]

    def test_official_on_a_fresh_index_only_turns_off_the_project_list(self):
        assert cache.upstream_changes(OFFICIAL, {"mirror_url": OFFICIAL_URL + "/"}, OFFICIAL_URL) == [
            "mirror_no_project_list=true"
        ]

    @pytest.mark.parametrize("upstream", [TUNA, CATALOG["nju"], OFFICIAL])
    def test_no_changes_when_already_configured(self, upstream):
        assert cache.upstream_changes(upstream, configured(upstream), OFFICIAL_URL) == []

    def test_trailing_slash_does_not_count_as_a_change(self):
        ixconfig = {**configured(TUNA), "mirror_url": TUNA.url + "/"}
        assert cache.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == []
        assert cache.upstream_changes(OFFICIAL, configured(OFFICIAL), OFFICIAL_URL + "/") == []

    def test_only_the_differing_option_is_changed(self):
        ixconfig = {**configured(TUNA), "mirror_no_project_list": False}
        assert cache.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == ["mirror_no_project_list=true"]


UNANSWERED = "unanswered"  # run_measured: the measurement got no answer from the upstream


def unfinished_file():
    return settings.Instance("default").unfinished_switch_file


class Flushes(list):
    def append_one(self) -> None:
        self.append("flush")


class TestConfigureUpstream:
    @pytest.fixture(autouse=True)
    def _flushes(self):
        self.flushes = Flushes()

    def test_a_change_flushes_the_front_cache_once(self):
        self.run(FakeDevpi(configured(OFFICIAL), projects=("pip",)), TUNA)
        assert self.flushes == ["flush"]

    def test_no_change_flushes_nothing(self):
        self.run(FakeDevpi(configured(TUNA)), TUNA)
        assert self.flushes == []

    def run(self, server: FakeDevpi, wanted: Upstream | None) -> tuple[Upstream, list[str]]:
        actions: list[str] = []
        with server.client() as client:
            client.login("root", ROOT_PASSWORD)
            result = cache.configure_upstream(
                client, wanted, OFFICIAL_URL, cache.QuietReporter(), actions, self.flushes.append_one, unfinished_file()
            )
        return result, actions

    def test_switching_patches_then_refreshes_every_cached_project(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip", "requests"))
        result, actions = self.run(server, TUNA)
        assert result is TUNA
        assert server.patches() == [
            ["mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple", "mirror_ignore_serial_header=true"]
        ]
        assert server.calls() == [
            ("POST", "/+login"),
            ("GET", "/root/pypi"),
            ("PATCH", "/root/pypi"),
            ("GET", "/root/pypi"),
            ("POST", "/root/pypi/+simple/pip/refresh"),
            ("POST", "/root/pypi/+simple/requests/refresh"),
        ]
        # The first GET reads the config only; the second lists what the cache holds.
        assert "no_projects" in server.requests[1].url.params
        assert "no_projects" not in server.requests[3].url.params
        assert actions[0] == "switched upstream from pypi to tuna"
        assert actions[1].startswith("refreshed 2 cached project pages")
        assert len(actions) == 2
        assert server.ixconfig["mirror_url"] == TUNA.url

    def test_switching_back_to_official(self):
        server = FakeDevpi(configured(TUNA), projects=("pip",))
        result, actions = self.run(server, OFFICIAL)
        assert result is OFFICIAL
        assert server.patches() == [["mirror_url=https://official.index.example/simple", "mirror_ignore_serial_header=false"]]
        assert ("POST", "/root/pypi/+simple/pip/refresh") in server.calls()
        assert actions[0] == "switched upstream from tuna to pypi"
        assert actions[1].startswith("refreshed 1 cached project pages")
        assert len(actions) == 2

    def test_projects_missing_upstream_are_reported(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("zzz-internal", "pip", "aaa-private"))
        server.not_upstream = {"aaa-private", "zzz-internal"}
        _, actions = self.run(server, TUNA)
        refreshes = [path for _, path in server.calls() if path.endswith("/refresh")]
        assert len(refreshes) == 3
        assert actions[0] == "switched upstream from pypi to tuna"
        assert actions[1].startswith("refreshed 1 cached project pages")
        assert actions[2].startswith("2 cached projects are not on the new upstream")
        assert actions[2].endswith("aaa-private, zzz-internal")

    def test_switching_an_empty_cache_refreshes_nothing(self):
        server = FakeDevpi(configured(OFFICIAL))
        _, actions = self.run(server, TUNA)
        assert actions == ["switched upstream from pypi to tuna"]
        assert not any(path.endswith("/refresh") for _, path in server.calls())

    def test_same_upstream_sends_no_patch(self):
        server = FakeDevpi({**configured(TUNA), "mirror_url": TUNA.url + "/"}, projects=("pip",))
        result, actions = self.run(server, TUNA)
        assert result is TUNA
        assert actions == []
        assert server.calls() == [("POST", "/+login"), ("GET", "/root/pypi")]

    def test_keeping_the_upstream_only_fixes_its_options(self):
        server = FakeDevpi({"mirror_url": TUNA.url}, projects=("pip",))
        result, actions = self.run(server, None)
        assert result is TUNA
        assert server.patches() == [["mirror_ignore_serial_header=true", "mirror_no_project_list=true"]]
        assert actions == ["updated the mirror options of root/pypi"]
        assert not any(path.endswith("/refresh") for _, path in server.calls())

    def run_measured(self, server: FakeDevpi, wanted: Upstream | None, served: bool | str | None) -> tuple[list[str], list, list[str]]:
        """configure_upstream with a core metadata measurement that says ``served`` (None: nothing measured; UNANSWERED).

        Returns (actions, what happened in order, measured URLs).
        """
        events: list = []
        measured: list[str] = []

        def measure(url: str) -> MetadataCheck:
            measured.append(url)
            if served is UNANSWERED:
                return MetadataCheck(None, "not measured: its page for 'pip' did not answer (URLError: timed out)")
            return MetadataCheck(bool(served), "x.whl.metadata answers" if served else "x.whl.metadata answers HTTP 404")

        server_handle = server.handle

        def handle(request):
            response = server_handle(request)
            events.append((request.method, request.url.path, json.loads(request.content) if request.method == "PATCH" else None))
            return response

        server.handle = handle
        actions: list[str] = []
        with server.client() as client:
            client.login("root", ROOT_PASSWORD)
            cache.configure_upstream(
                client, wanted, OFFICIAL_URL, cache.QuietReporter(), actions, lambda: events.append("flush"),
                unfinished_file(), None if served is None else measure,
            )
        return actions, [e for e in events if e == "flush" or e[0] != "GET"], measured

    def test_a_switch_to_an_upstream_without_metadata_stops_announcing_it_first(self):
        server = FakeDevpi({**configured(OFFICIAL), "mirror_provides_core_metadata": True}, projects=("pip",))
        actions, events, measured = self.run_measured(server, TUNA, served=False)
        assert measured == [TUNA.url]  # the new upstream is measured, before anything changes
        assert events == [
            ("POST", "/+login", None),
            # Off, and the front server's pages gone, before the switch can show in any page.
            ("PATCH", "/root/pypi", ["mirror_provides_core_metadata=false"]),
            "flush",
            ("PATCH", "/root/pypi", ["mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple", "mirror_ignore_serial_header=true"]),
            ("POST", "/root/pypi/+simple/pip/refresh", None),
            "flush",
        ]
        assert actions[0] == "stopped announcing core metadata: x.whl.metadata answers HTTP 404"
        assert server.ixconfig["mirror_provides_core_metadata"] is False

    def test_a_switch_to_an_upstream_with_metadata_announces_it_after_the_refresh(self):
        server = FakeDevpi(configured(TUNA), projects=("pip",))
        actions, events, measured = self.run_measured(server, OFFICIAL, served=True)
        assert measured == [OFFICIAL_URL]
        assert events[1:] == [
            ("PATCH", "/root/pypi", ["mirror_url=https://official.index.example/simple", "mirror_ignore_serial_header=false"]),
            # Pages cached from the old upstream list its files until refreshed: announce only then.
            ("POST", "/root/pypi/+simple/pip/refresh", None),
            ("PATCH", "/root/pypi", ["mirror_provides_core_metadata=true"]),
            "flush",
        ]
        assert actions[-1] == "announcing core metadata: x.whl.metadata answers"

    def test_an_unmeasured_switch_stops_announcing(self):
        server = FakeDevpi({**configured(OFFICIAL), "mirror_provides_core_metadata": True})
        actions, events, _ = self.run_measured(server, TUNA, served=None)
        assert [e[2] for e in events if e != "flush" and e[0] == "PATCH"][0] == ["mirror_provides_core_metadata=false"]
        assert actions[0] == "stopped announcing core metadata: not measured (--no-check)"

    def test_unmeasured_and_unswitched_leaves_it_alone(self):
        server = FakeDevpi({**configured(TUNA), "mirror_provides_core_metadata": True})
        actions, events, _ = self.run_measured(server, TUNA, served=None)
        assert actions == [] and events == [("POST", "/+login", None)]

    def test_an_upstream_that_does_not_answer_keeps_the_option(self):
        # A passing outage during `up` must not switch metadata off for good.
        server = FakeDevpi({**configured(TUNA), "mirror_provides_core_metadata": True})
        actions, events, measured = self.run_measured(server, TUNA, served=UNANSWERED)
        assert measured == [TUNA.url] and actions == [] and events == [("POST", "/+login", None)]

    def test_a_new_upstream_that_does_not_answer_gets_nothing_announced(self):
        server = FakeDevpi({**configured(OFFICIAL), "mirror_provides_core_metadata": True})
        actions, _, _ = self.run_measured(server, TUNA, served=UNANSWERED)
        assert actions[0] == "stopped announcing core metadata: not measured: its page for 'pip' did not answer (URLError: timed out)"

    def test_a_measurement_that_agrees_changes_nothing(self):
        server = FakeDevpi({**configured(TUNA), "mirror_provides_core_metadata": True})
        actions, events, _ = self.run_measured(server, None, served=True)
        assert actions == [] and "flush" not in events

    def test_without_login_the_patch_is_refused(self):
        server = FakeDevpi(configured(OFFICIAL))
        with server.client() as client, pytest.raises(DevpiError, match="HTTP 403"):
            cache.configure_upstream(client, TUNA, OFFICIAL_URL, cache.QuietReporter(), [], lambda: None, unfinished_file())


class TestUnfinishedSwitch:
    """A switch stopped between its PATCH and the last refreshed page is finished by running it again."""

    def switch(self, server: FakeDevpi, wanted: Upstream | None, fail_on: str | None = None, error=None) -> list[str]:
        def handle(request):
            if fail_on and request.url.path == f"/root/pypi/+simple/{fail_on}/refresh":
                if error is KeyboardInterrupt:
                    raise KeyboardInterrupt
                raise httpx.ReadTimeout("slow upstream", request=request)
            if request.method == "PATCH":
                self.marker_at_patch = unfinished_file().exists()
            return server.handle(request)

        actions: list[str] = []
        with DevpiClient("http://127.0.0.1:3141", transport=httpx.MockTransport(handle)) as client:
            client.login("root", ROOT_PASSWORD)
            cache.configure_upstream(client, wanted, OFFICIAL_URL, cache.QuietReporter(), actions, lambda: self.flushes.append("flush"), unfinished_file())
        return actions

    @pytest.fixture(autouse=True)
    def _flushes(self):
        self.flushes: list[str] = []
        self.marker_at_patch = None

    @pytest.mark.parametrize("error, raised, fragment", [
        (KeyboardInterrupt, Interrupted, "interrupted after the upstream was switched to tuna"),
        (httpx.ReadTimeout, DevpiError, "the upstream was switched to tuna, but its cached pages were not all refreshed"),
    ], ids=["interrupted", "refresh-times-out"])
    def test_running_the_same_switch_again_finishes_it(self, error, raised, fragment):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip", "requests"))
        with pytest.raises(raised) as info:
            self.switch(server, TUNA, fail_on="requests", error=error)
        assert fragment in str(info.value) and "run the same command again to finish" in str(info.value)
        assert self.marker_at_patch is True  # on disk before devpi switched: even SIGKILL leaves it
        assert server.ixconfig["mirror_url"] == TUNA.url and self.flushes == []
        server.requests.clear()
        actions = self.switch(server, TUNA)
        assert server.patches() == []  # devpi is on tuna already
        assert ("POST", "/root/pypi/+simple/pip/refresh") in server.calls()
        assert ("POST", "/root/pypi/+simple/requests/refresh") in server.calls()
        assert self.flushes == ["flush"]
        assert actions[0] == "finishing the switch to tuna that an earlier run left unfinished"
        assert not unfinished_file().exists()
        assert self.switch(server, TUNA) == []  # and now it is done

    def test_a_finished_switch_leaves_no_marker(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip",))
        self.switch(server, TUNA)
        assert self.marker_at_patch is True
        assert not unfinished_file().exists()

    def test_up_without_a_mirror_finishes_it_too(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip",))
        with pytest.raises(Interrupted):
            self.switch(server, TUNA, fail_on="pip", error=KeyboardInterrupt)
        actions = self.switch(server, None)
        assert actions[0].startswith("finishing the switch to tuna")


class TestWaitUntilReady:
    def test_returns_the_files_once_the_page_lists_some(self, clock):
        server = FakeDevpi()
        server.simple_pages = [
            httpx.Response(200, text=EMPTY_PAGE),  # still loading its mirror
            httpx.Response(502, text="Bad Gateway"),
            httpx.Response(200, text=FILES_PAGE),
        ]
        with server.client() as client:
            files = cache.wait_until_ready(client, "pip", 60, cache.QuietReporter())
        assert files == ["pip-24.0-py3-none-any.whl"]
        assert len(clock.sleeps) == 2
        assert server.calls() == [("GET", "/root/pypi/+simple/pip/")] * 3

    def test_a_captive_portal_is_not_ready(self, clock):
        server = FakeDevpi()
        portal = '<html><body><a href="/login">Sign in</a><a href="https://portal.example/">Wi-Fi terms</a></body></html>'
        server.simple_pages = [httpx.Response(200, text=portal)] * 20
        with server.client() as client, pytest.raises(ReadinessTimeout, match="listed no files"):
            cache.wait_until_ready(client, "pip", 5, cache.QuietReporter())

    def test_times_out_when_no_files_appear(self, clock):
        server = FakeDevpi()
        with server.client() as client, pytest.raises(ReadinessTimeout) as info:
            cache.wait_until_ready(client, "pip", 5, cache.QuietReporter())
        message = str(info.value)
        assert "'pip'" in message
        assert "within 5 s" in message
        assert "listed no files" in message
        assert clock.now >= 1005
        assert 5 <= len(server.requests) <= 7

    def test_timeout_names_the_last_upstream_problem(self, clock):
        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        with server.client() as client, pytest.raises(ReadinessTimeout, match="HTTP 502"):
            cache.wait_until_ready(client, "pip", 2, cache.QuietReporter())

    def test_unreachable_cache_times_out(self, clock):
        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        with DevpiClient("http://127.0.0.1:1", transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(ReadinessTimeout, match="cannot reach devpi"):
                cache.wait_until_ready(client, "pip", 3, cache.QuietReporter())


class TestWaitForApi:
    """A container that stops or restarts during start-up fails `up` at once, not after the whole timeout."""

    @pytest.mark.parametrize("states", [["running", "restarting"], ["running", "exited"], ["running", "running+1"]],
                             ids=["restarting", "exited", "restarted-between-polls"])
    def test_a_failing_container_is_a_failure(self, clock, states):
        from tests.unit.fakes import FakeEngine

        container = FakeEngine().add("default")
        container.attrs["RestartCount"] = 2  # restarts from before this `up` do not count
        polls = iter(states)

        def reload():
            state = next(polls, states[-1])
            container.status = state.removesuffix("+1")
            if state.endswith("+1"):
                container.attrs["RestartCount"] = 3

        container.reload = reload

        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        with DevpiClient("http://127.0.0.1:1", transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(ReadinessTimeout, match="exited during start-up"):
                cache.wait_for_api(client, container, 3600, cache.QuietReporter())
        assert len(clock.sleeps) == 1

    def test_restarts_from_before_do_not_count(self, clock):
        from tests.unit.fakes import FakeEngine

        container = FakeEngine().add("default")
        container.attrs["RestartCount"] = 5
        answers = iter([httpx.ConnectError, None])

        def handle(request):
            error = next(answers)
            if error is not None:
                raise error("refused", request=request)
            return httpx.Response(200, json={"result": {}})

        with DevpiClient("http://127.0.0.1:1", transport=httpx.MockTransport(handle)) as client:
            cache.wait_for_api(client, container, 60, cache.QuietReporter())


class FakeContainer:
    """A container whose exec_run answers with a fixed exit code and output."""

    name = "devpictl-default"

    def __init__(self, exit_code: int, output: bytes):
        self.result = SimpleNamespace(exit_code=exit_code, output=output)
        self.commands: list[tuple[list[str], dict]] = []

    def exec_run(self, cmd, environment=None, demux=False, user=""):
        self.commands.append((cmd, environment))
        return self.result


def page_answer(url: str, text: str) -> bytes:
    """UPSTREAM_CHECK's output for a page."""
    return (json.dumps({"url": url, "text": text}) + "\n").encode()


class TestInsideTheContainer:
    def test_official_url_is_read_from_devpi(self):
        container = FakeContainer(0, b"some warning\nhttps://official.index.example/simple/\n")
        assert cache.official_url(container) == "https://official.index.example/simple"
        cmd, _ = container.commands[0]
        assert cmd[0] == "/opt/devpi/bin/python"

    @pytest.mark.parametrize("code, output", [(1, b"Traceback...\nImportError: no devpi\n"), (0, b""), (0, b"None\n")])
    def test_official_url_failure(self, code, output):
        with pytest.raises(DevpiError, match="cannot read devpi's default upstream"):
            cache.official_url(FakeContainer(code, output))

    def test_check_upstream_passes_when_links_are_listed(self):
        container = FakeContainer(0, page_answer(f"{TUNA.url}/pip/", FILES_PAGE))
        cache.check_upstream(container, TUNA.url, "pip")
        _, env = container.commands[0]
        assert env["DEVPICTL_CHECK_URL"] == f"{TUNA.url}/pip/"

    def test_check_upstream_refuses_a_page_without_links(self):
        with pytest.raises(UpstreamUnreachable, match="lists no files"):
            cache.check_upstream(FakeContainer(0, page_answer(f"{TUNA.url}/pip/", EMPTY_PAGE)), TUNA.url, "pip")

    def test_check_upstream_refuses_an_unreadable_answer(self):
        with pytest.raises(UpstreamUnreachable, match="unreadable answer"):
            cache.check_upstream(FakeContainer(0, b"12\n"), TUNA.url, "pip")

    def test_check_upstream_refuses_an_unreachable_upstream(self):
        with pytest.raises(UpstreamUnreachable, match="URLError: timed out"):
            cache.check_upstream(FakeContainer(1, b"URLError: timed out\n"), TUNA.url, "pip")


def test_index_url():
    assert cache.index_url("http://127.0.0.1:3141") == "http://127.0.0.1:3141/root/pypi/+simple/"


def test_proxy_env_file_quotes_only_proxy_variables():
    text = cache.proxy_env_file({"HTTPS_PROXY": "http://u:p w@proxy:3128", "PATH": "/bin", "no_proxy": "localhost"})
    assert text == b"HTTPS_PROXY='http://u:p w@proxy:3128'\nno_proxy=localhost\n"
    assert cache.proxy_env_file({"PATH": "/bin"}) == b""


# --- settings: names, ports, labels, the root password store -------------------------------


class TestRootPassword:
    def test_generated_once_with_mode_0600(self, tmp_path):
        instance = settings.Instance("default")
        password, created = settings.ensure_root_password(instance)
        assert created is True
        assert len(password) >= 24
        path = instance.password_file
        assert path == tmp_path / "devpictl-data" / "caches" / "default" / "root-password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_text() == password + "\n"

    def test_reused_on_the_second_call(self):
        instance = settings.Instance("default")
        first, _ = settings.ensure_root_password(instance)
        second, created = settings.ensure_root_password(instance)
        assert (second, created) == (first, False)
        assert settings.read_root_password(instance) == first

    def test_each_cache_has_its_own(self):
        a, _ = settings.ensure_root_password(settings.Instance("a"))
        b, _ = settings.ensure_root_password(settings.Instance("b"))
        assert a != b

    def test_forget(self):
        instance = settings.Instance("default")
        settings.ensure_root_password(instance)
        settings.forget_root_password(instance)
        assert settings.read_root_password(instance) is None
        settings.forget_root_password(instance)  # a second time is fine

    def test_empty_file_gets_a_new_password(self):
        instance = settings.Instance("default")
        instance.state_dir.mkdir(parents=True)
        instance.password_file.write_text("\n")
        password, created = settings.ensure_root_password(instance)
        assert created is True
        assert instance.password_file.read_text().strip() == password

    def test_existing_empty_file_is_made_0600(self):
        instance = settings.Instance("default")
        instance.state_dir.mkdir(parents=True)
        instance.password_file.write_text("")
        instance.password_file.chmod(0o644)
        settings.ensure_root_password(instance)
        assert stat.S_IMODE(instance.password_file.stat().st_mode) == 0o600


class TestNamesAndPorts:
    @pytest.mark.parametrize("name", ["default", "a", "0", "ci-1.x_y", "a" * 40])
    def test_good_names(self, name):
        assert settings.check_name(name) == name

    @pytest.mark.parametrize("name", ["", "Bad Name!", "UPPER", "-lead", ".lead", "_lead", "a" * 41, "a/b", "a b", "naïve"])
    def test_bad_names(self, name):
        with pytest.raises(BadInput, match="is not allowed") as info:
            settings.check_name(name)
        assert repr(name) in str(info.value)

    def test_trailing_newline_is_not_a_name(self):
        with pytest.raises(BadInput):
            settings.check_name("default\n")

    @pytest.mark.parametrize("port", [1, 3141, 65535])
    def test_good_ports(self, port):
        assert settings.check_port(port) == port

    @pytest.mark.parametrize("port", [0, -1, 65536, 70000])
    def test_bad_ports(self, port):
        with pytest.raises(BadInput, match=f"port {port} is out of range: use a number from 1 to 65535"):
            settings.check_port(port)

    def test_instance_names(self, tmp_path):
        instance = settings.Instance("ci")
        assert instance.container == "devpictl-ci"
        assert instance.volume == "devpictl-ci-data"
        assert instance.state_dir == tmp_path / "devpictl-data" / "caches" / "ci"


class TestCheckHost:
    """Only literal addresses reach the engine, which takes any other value as every interface."""

    @pytest.mark.parametrize(
        "value, literal",
        [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("LOCALHOST.", "127.0.0.1"), ("::1", "::1"),
         ("[::1]", "::1"), ("0.0.0.0", "0.0.0.0"), ("::", "::"), (" 10.0.0.5 ", "10.0.0.5"), ("0:0::1", "::1")],
    )
    def test_literals(self, value, literal, monkeypatch):
        monkeypatch.setattr("socket.getaddrinfo", lambda *a, **kw: pytest.fail("a literal needs no resolver"))
        assert settings.check_host(value) == literal

    def test_a_name_resolves_to_its_ipv4_address_first(self, monkeypatch):
        import socket

        answers = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2001:db8::5", 0, 0, 0)),
                   (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.5", 0))]
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: answers if host == "cache.example" else pytest.fail(host))
        assert settings.check_host("cache.example") == "192.0.2.5"

    @pytest.mark.parametrize(
        "value, fragment",
        [("not an ip", "is not an IP address or host name"), ("127.0.0.1:80", "carries a port"), ("[::1]:3141", "carries a port"),
         ("localhost:3141", "carries a port"), ("", "is not an IP address"), ("http://127.0.0.1", "is not an IP address"),
         ("[::1", "is not an IP address"), ("::1]", "is not an IP address"),
         ("256.1.1.1", "does not resolve")],
    )
    def test_refused(self, value, fragment, monkeypatch):
        import socket

        def getaddrinfo(*args, **kwargs):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        with pytest.raises(BadInput, match=fragment):
            settings.check_host(value)

    @pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
                                                ("0.0.0.0", False), ("::", False), ("192.0.2.1", False), ("", False)])
    def test_only_loopback_is_local(self, host, loopback):
        assert cache.publishes_to_network(host) is not loopback


class TestExtraLabels:
    @pytest.mark.parametrize(
        "raw, labels",
        [
            ("", {}),
            ("team=ci", {"team": "ci"}),
            (" team=ci , owner=me ,", {"team": "ci", "owner": "me"}),
            ("empty=", {"empty": ""}),
            ("url=a=b", {"url": "a=b"}),
        ],
    )
    def test_parsing(self, raw, labels):
        assert settings.extra_labels({"DEVPICTL_LABELS": raw}) == labels

    def test_unset(self):
        assert settings.extra_labels({}) == {}

    @pytest.mark.parametrize("raw, item", [("bad", "bad"), ("team=ci,bad", "bad"), ("=value", "=value")])
    def test_errors_name_the_item(self, raw, item):
        with pytest.raises(BadInput, match="is not KEY=VALUE") as info:
            settings.extra_labels({"DEVPICTL_LABELS": raw})
        assert repr(item) in str(info.value)

    def test_read_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("DEVPICTL_LABELS", "run=42")
        assert settings.extra_labels() == {"run": "42"}
        assert settings.Instance("x").labels() == {"devpictl.managed": "1", "devpictl.instance": "x", "run": "42"}

    def test_instance_labels_without_extras(self, monkeypatch):
        monkeypatch.delenv("DEVPICTL_LABELS", raising=False)
        assert settings.Instance("x").labels() == {"devpictl.managed": "1", "devpictl.instance": "x"}


class TestUpgrade:
    """`up --image` on an existing cache: devpi's database version decides."""

    @pytest.fixture
    def engine(self, monkeypatch):
        removed: list = []
        answers = {"needed": "4", "have": "3"}

        def run_once(engine, image, command, volume=None):
            return answers["have"] if volume else answers["needed"]

        monkeypatch.setattr(cache.ctr, "image_exists", lambda engine, tag: True)
        monkeypatch.setattr(cache.ctr, "run_once", run_once)
        monkeypatch.setattr(cache.ctr, "remove", removed.append)
        return {"removed": removed, "answers": answers}

    def options(self) -> cache.UpOptions:
        return cache.UpOptions(instance=settings.Instance("c"), upstream=None, host=None, port=None, image="new:1", build=img.BuildOptions())

    def old_container(self):
        class Image:
            tags = ["old:1"]
            short_id = "sha256:old"

        class Container:
            image = Image()

        return Container()

    def test_another_database_version_stops_before_touching_anything(self, engine):
        container = self.old_container()
        actions: list[str] = []
        with pytest.raises(Conflict) as info:
            cache.upgrade(None, container, self.options(), cache.QuietReporter(), actions)
        message = str(info.value)
        assert "needs database version 4, cache 'c' has 3" in message
        assert "nothing was changed" in message and "devpictl backup --name c" in message and "devpictl restore" in message
        assert "\n" not in message
        assert engine["removed"] == [] and actions == []

    def test_same_database_version_replaces_the_container_only(self, engine):
        engine["answers"]["have"] = "4"
        container = self.old_container()
        actions: list[str] = []
        cache.upgrade(None, container, self.options(), cache.QuietReporter(), actions)
        assert engine["removed"] == [container]
        assert actions == ["replaced the container of old:1 with new:1"]


class TestDownVolumes:
    def state(self, name: str = "default") -> settings.Instance:
        instance = settings.Instance(name)
        settings.ensure_root_password(instance)
        settings.save_remembered(instance, {"port": 3141})
        instance.failure_log.write_text("devpi said no\n")
        return instance

    def test_forgets_everything_even_when_the_volume_is_gone(self):
        from tests.unit.fakes import FakeEngine

        instance = self.state()
        actions = cache.down(FakeEngine(), instance, volumes=True)
        assert not instance.state_dir.exists()
        assert actions == [f"deleted root-password, cache.toml, last-failed-up.log from {instance.state_dir}"]

    def test_a_volume_devpictl_did_not_make_is_left_alone(self):
        from devpictl.errors import EngineError
        from tests.unit.fakes import FakeEngine

        instance = self.state()
        engine = FakeEngine()
        engine.add("default")  # a running container: it must stay too
        engine.foreign_volumes.add(instance.volume)
        with pytest.raises(EngineError, match="was not made by devpictl"):
            cache.down(engine, instance, volumes=True)
        assert engine.mutations() == []
        assert instance.password_file.exists()

    def test_without_volumes_nothing_is_forgotten(self):
        from tests.unit.fakes import FakeEngine

        instance = self.state()
        assert cache.down(FakeEngine(), instance, volumes=False) == []
        assert instance.password_file.exists()


class TestNotItsOwnUpstream:
    @pytest.mark.parametrize("url", [
        "http://127.0.0.1:3141/root/pypi/+simple",  # the front server, seen from inside
        "http://localhost:3142/root/pypi/+simple",  # devpi behind it
        "http://127.0.0.1:3199/root/pypi/+simple",  # its published port
        "http://192.0.2.7:3199/root/pypi/+simple",  # its published address
        "http://devpictl-default:3141/root/pypi/+simple",  # its own name on a Docker network
    ])
    def test_refused(self, url):
        from tests.unit.fakes import FakeEngine

        container = FakeEngine().add("default", host="192.0.2.7", port=3199)
        with pytest.raises(BadInput, match="is this cache itself"):
            cache.check_not_itself(container, Upstream("custom", url), OFFICIAL_URL)

    @pytest.mark.parametrize("url", ["http://upstream:8080/simple", "http://127.0.0.1:8080/simple", "https://mirror.example/simple"])
    def test_other_indexes_pass(self, url):
        from tests.unit.fakes import FakeEngine

        container = FakeEngine().add("default", host="192.0.2.7", port=3199)
        cache.check_not_itself(container, Upstream("custom", url), OFFICIAL_URL)
