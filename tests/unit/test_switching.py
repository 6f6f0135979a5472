"""Switching root/pypi's upstream: what devpictl asks of devpi, the switch and its refreshes, an unfinished one."""

from __future__ import annotations

import json

import httpx
import pytest

from devpictl import container as ctr
from devpictl import precedence, reporter, settings, switching
from devpictl.cache import Cache
from devpictl.coremetadata import MetadataCheck
from devpictl.devpi import DevpiClient
from devpictl.errors import BadInput, Conflict, DevpiError, Interrupted
from devpictl.mirrors import CATALOG, OFFICIAL, Upstream
from devpictl.settings import Instance
from tests.unit.clihelp import assert_one_line_error, invoke
from tests.unit.fakes import OFFICIAL_URL, ROOT_PASSWORD, TUNA, FakeDevpi, FakeEngine, configured


class TestUpstreamChanges:
    def test_catalog_mirror_on_a_fresh_index(self):
        ixconfig = {"mirror_url": OFFICIAL_URL + "/"}
        assert switching.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == [
            "mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple",
            "mirror_ignore_serial_header=true",
            "mirror_no_project_list=true",
        ]

    def test_custom_mirror(self):
        custom = Upstream("custom", "http://10.0.0.9:8080/simple")
        assert switching.upstream_changes(custom, {}, OFFICIAL_URL) == [
            "mirror_url=http://10.0.0.9:8080/simple",
            "mirror_ignore_serial_header=true",
            "mirror_no_project_list=true",
        ]

    def test_official_uses_the_given_url_and_keeps_the_serial_check(self):
        ixconfig = configured(TUNA)
        assert switching.upstream_changes(OFFICIAL, ixconfig, "https://pypi.example/simple") == [
            "mirror_url=https://pypi.example/simple",
            "mirror_ignore_serial_header=false",
        ]

    def test_official_on_a_fresh_index_only_turns_off_the_project_list(self):
        assert switching.upstream_changes(OFFICIAL, {"mirror_url": OFFICIAL_URL + "/"}, OFFICIAL_URL) == ["mirror_no_project_list=true"]

    @pytest.mark.parametrize("upstream", [TUNA, CATALOG["nju"], OFFICIAL])
    def test_no_changes_when_already_configured(self, upstream):
        assert switching.upstream_changes(upstream, configured(upstream), OFFICIAL_URL) == []

    def test_trailing_slash_does_not_count_as_a_change(self):
        ixconfig = {**configured(TUNA), "mirror_url": TUNA.url + "/"}
        assert switching.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == []
        assert switching.upstream_changes(OFFICIAL, configured(OFFICIAL), OFFICIAL_URL + "/") == []

    def test_only_the_differing_option_is_changed(self):
        ixconfig = {**configured(TUNA), "mirror_no_project_list": False}
        assert switching.upstream_changes(TUNA, ixconfig, OFFICIAL_URL) == ["mirror_no_project_list=true"]


UNANSWERED = "unanswered"  # run_measured: the measurement got no answer from the upstream


def unfinished_file():
    return settings.Instance("default").unfinished_switch_file


def configure(
    client: DevpiClient, wanted: Upstream | None, actions: list[str], flush, measure=None, refresh_pages: bool = False
) -> Upstream:
    """configure_upstream as `set-upstream` runs it, on the cache "default", with the official index at OFFICIAL_URL; its actions join ``actions``."""
    target = switching.Target(wanted, OFFICIAL_URL, core_metadata=measure)
    upstream, done = switching.configure_upstream(
        client, target, reporter.QuietReporter(), flush, unfinished_file(), refresh_pages=refresh_pages
    )
    actions.extend(done)
    return upstream


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

    def run(self, server: FakeDevpi, wanted: Upstream | None, refresh_pages: bool = False) -> tuple[Upstream, list[str]]:
        actions: list[str] = []
        with server.client() as client:
            client.login("root", ROOT_PASSWORD)
            result = configure(client, wanted, actions, self.flushes.append_one, refresh_pages=refresh_pages)
        return result, actions

    def test_switching_patches_then_marks_every_cached_page_stale_at_once(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip", "requests"))
        server.stored = {"pip"}
        result, actions = self.run(server, TUNA)
        assert result is TUNA
        assert server.calls() == [
            ("POST", "/+login"),
            ("GET", "/root/pypi"),
            ("PATCH", "/root/pypi"),
            # One request, one transaction in devpi: no page is fetched here.
            ("POST", "/root/pypi/+devpictl/expire-pages"),
        ]
        assert server.expired == ["pip", "requests"]
        assert actions == [
            "switched upstream from pypi to tuna",
            "marked 2 cached project pages stale: each comes from the new upstream at its next request; "
            "1 with stored files are served as they are while that upstream fails",
        ]
        assert self.flushes == ["flush"]  # after the pages were marked
        assert not unfinished_file().exists()

    def test_an_image_whose_plugin_forgets_the_pages_says_so(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip",))
        server.keeps_pages = False
        _, actions = self.run(server, TUNA)
        assert actions[1] == "forgot 1 cached project pages: each comes from the new upstream at its next request"

    def test_an_image_without_devpictls_expiry_refreshes_each_page(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip", "requests"))
        server.expire_route = False  # devpi answers 404: an image built before the plugin had it
        _, actions = self.run(server, TUNA)
        assert server.calls()[3:] == [
            ("POST", "/root/pypi/+devpictl/expire-pages"),
            ("GET", "/root/pypi"),  # the cached projects
            ("POST", "/root/pypi/+simple/pip/refresh"),
            ("POST", "/root/pypi/+simple/requests/refresh"),
        ]
        assert actions[1].startswith("refreshed 2 cached project pages")

    def test_switching_patches_then_refreshes_every_cached_project(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip", "requests"))
        result, actions = self.run(server, TUNA, refresh_pages=True)
        assert result is TUNA
        assert server.patches() == [["mirror_url=https://pypi.tuna.tsinghua.edu.cn/simple", "mirror_ignore_serial_header=true"]]
        assert server.calls() == [
            ("POST", "/+login"),
            ("GET", "/root/pypi"),
            ("PATCH", "/root/pypi"),
            # Marked first: a page whose refresh fails, or is never reached, keeps its fallback.
            ("POST", "/root/pypi/+devpictl/expire-pages"),
            ("GET", "/root/pypi"),
            ("POST", "/root/pypi/+simple/pip/refresh"),
            ("POST", "/root/pypi/+simple/requests/refresh"),
        ]
        # The first GET reads the config only; the second lists what the cache holds.
        assert "no_projects" in server.requests[1].url.params
        assert "no_projects" not in server.requests[4].url.params
        assert actions[0] == "switched upstream from pypi to tuna"
        assert actions[1].startswith("refreshed 2 cached project pages")
        assert len(actions) == 2
        assert server.ixconfig["mirror_url"] == TUNA.url

    def test_switching_back_to_official(self):
        server = FakeDevpi(configured(TUNA), projects=("pip",))
        result, actions = self.run(server, OFFICIAL)
        assert result is OFFICIAL
        assert server.patches() == [["mirror_url=https://official.index.example/simple", "mirror_ignore_serial_header=false"]]
        assert server.expired == ["pip"]
        assert actions[0] == "switched upstream from tuna to pypi"
        assert actions[1].startswith("marked 1 cached project pages stale")
        assert len(actions) == 2

    def test_projects_missing_upstream_are_reported(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("zzz-internal", "pip", "aaa-private"))
        server.not_upstream = {"aaa-private", "zzz-internal"}
        _, actions = self.run(server, TUNA, refresh_pages=True)
        refreshes = [path for _, path in server.calls() if path.endswith("/refresh")]
        assert len(refreshes) == 3
        assert actions[0] == "switched upstream from pypi to tuna"
        assert actions[1].startswith("refreshed 1 cached project pages")
        assert actions[2].startswith("2 cached projects are not on the new upstream")
        assert actions[2].endswith("aaa-private, zzz-internal")

    @pytest.mark.parametrize("refresh_pages", [False, True], ids=["forget", "refresh"])
    def test_switching_an_empty_cache_refreshes_nothing(self, refresh_pages):
        server = FakeDevpi(configured(OFFICIAL))
        _, actions = self.run(server, TUNA, refresh_pages)
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
            configure(client, wanted, actions, lambda: events.append("flush"), None if served is None else measure)
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
            ("POST", "/root/pypi/+devpictl/expire-pages", None),
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
            # Pages cached from the old upstream list its files until forgotten: announce only then.
            ("POST", "/root/pypi/+devpictl/expire-pages", None),
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
            configure(client, TUNA, [], lambda: None)


class TestUnfinishedSwitch:
    """A switch stopped between its PATCH and the last refreshed page is finished by running it again."""

    def switch(self, server: FakeDevpi, wanted: Upstream | None, fail_on: str | None = None, error=None, refresh_pages=True) -> list[str]:
        """configure_upstream; ``fail_on``: the path of a request (a refreshed project's name) that fails with ``error``."""

        def handle(request):
            if fail_on and request.url.path in (f"/root/pypi/+simple/{fail_on}/refresh", fail_on):
                if error is KeyboardInterrupt:
                    raise KeyboardInterrupt
                raise httpx.ReadTimeout("slow upstream", request=request)
            if request.method == "PATCH":
                self.marker_at_patch = unfinished_file().exists()
            return server.handle(request)

        actions: list[str] = []
        with DevpiClient("http://127.0.0.1:3141", transport=httpx.MockTransport(handle)) as client:
            client.login("root", ROOT_PASSWORD)
            configure(client, wanted, actions, lambda: self.flushes.append("flush"), refresh_pages=refresh_pages)
        return actions

    @pytest.fixture(autouse=True)
    def _flushes(self):
        self.flushes: list[str] = []
        self.marker_at_patch = None

    @pytest.mark.parametrize(
        "error, raised, fragment",
        [
            (KeyboardInterrupt, Interrupted, "interrupted after the upstream was switched to tuna"),
            (httpx.ReadTimeout, DevpiError, "the upstream was switched to tuna, but its cached pages were not all renewed"),
        ],
        ids=["interrupted", "refresh-times-out"],
    )
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
        # pip's page was refreshed before the stop (devpictl/refresh.py): resumed, not redone.
        assert ("POST", "/root/pypi/+simple/pip/refresh") not in server.calls()
        assert ("POST", "/root/pypi/+simple/requests/refresh") in server.calls()
        # Every page was marked stale before the first refresh; marking again would undo pip's.
        assert server.expired == ["pip", "requests"]
        assert self.flushes == ["flush"]
        assert actions[0] == "finishing the switch to tuna that an earlier run left unfinished"
        assert not unfinished_file().exists()
        assert self.switch(server, TUNA) == []  # and now it is done

    def test_a_switch_whose_pages_were_not_forgotten_is_finished_by_the_next_run(self):
        server = FakeDevpi(configured(OFFICIAL), projects=("pip",))
        expiry = "/root/pypi/+devpictl/expire-pages"
        with pytest.raises(DevpiError, match="its cached pages were not all renewed"):
            self.switch(server, TUNA, fail_on=expiry, error=httpx.ReadTimeout, refresh_pages=False)
        assert server.expired == [] and unfinished_file().exists()
        actions = self.switch(server, None, refresh_pages=False)
        assert actions == [
            "finishing the switch to tuna that an earlier run left unfinished",
            "marked 1 cached project pages stale: each comes from the new upstream at its next request; "
            "0 with stored files are served as they are while that upstream fails",
        ]
        assert server.expired == ["pip"] and not unfinished_file().exists()

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


class TestNotItsOwnUpstream:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:3141/root/pypi/+simple",  # the front server, seen from inside
            "http://localhost:3142/root/pypi/+simple",  # devpi behind it
            "http://127.0.0.1:3199/root/pypi/+simple",  # its published port
            "http://192.0.2.7:3199/root/pypi/+simple",  # its published address
            "http://devpictl-default:3141/root/pypi/+simple",  # its own name on a Docker network
        ],
    )
    def test_refused(self, url):
        cache = FakeEngine().add("default", host="192.0.2.7", port=3199).cache
        with pytest.raises(BadInput, match="is this cache itself"):
            switching.check_not_itself(cache, Upstream("custom", url), OFFICIAL_URL)

    @pytest.mark.parametrize("url", ["http://upstream:8080/simple", "http://127.0.0.1:8080/simple", "https://mirror.example/simple"])
    def test_other_indexes_pass(self, url):
        cache = FakeEngine().add("default", host="192.0.2.7", port=3199).cache
        switching.check_not_itself(cache, Upstream("custom", url), OFFICIAL_URL)


class TestSetUpstream:
    """set_upstream on a running cache (see conftest.running_cache)."""

    STEPS = (
        "check_not_itself",
        "core_metadata_measurement",
        "login",
        "plan_failover",
        "keep_credentials",
        "prepare",
        "check_switch",
        "configure_upstream",
        "drop",
    )

    def test_one_switch_in_one_order(self, running_cache, monkeypatch):
        """`up` and set-upstream share switching.switch: nothing changes before every check passed."""
        from devpictl.front import Front

        engine, make, _ = running_cache
        make(False, configured(OFFICIAL))
        steps: list[str] = []
        chain = object()

        def step(name, answer=None):
            def record(*args, **kwargs):
                steps.append(name)
                return answer

            return record

        for name in ("check_not_itself", "core_metadata_measurement", "keep_credentials", "check_switch"):
            monkeypatch.setattr(switching, name, step(name))
        monkeypatch.setattr(switching, "login", step("login", []))
        monkeypatch.setattr(switching, "plan_failover", step("plan_failover", (OFFICIAL, TUNA, chain)))
        monkeypatch.setattr(switching, "configure_upstream", step("configure_upstream", (TUNA, ["switched"])))
        monkeypatch.setattr(switching.failover, "primary_and_fallbacks", lambda upstream, chain: (upstream, ()))
        monkeypatch.setattr(switching, "core_metadata_state", lambda cache: False)
        monkeypatch.setattr(Front, "prepare", step("prepare", ["fallbacks"]))
        monkeypatch.setattr(Front, "drop", step("drop", []))
        opts = precedence.SwitchOptions(Instance("default"), "pip")
        with Cache.running(engine, Instance("default")) as cache:
            result = switching.switch(cache, opts, TUNA, reporter.QuietReporter())
        assert steps == [s for s in self.STEPS if s != "drop"]  # a chain is installed, so none is dropped
        assert result.actions == ["fallbacks", "switched"] and result.upstream is TUNA and result.previous is OFFICIAL
        steps.clear()
        monkeypatch.setattr(switching, "plan_failover", step("plan_failover", (OFFICIAL, TUNA, None)))
        with Cache.running(engine, Instance("default")) as cache:
            switching.switch(cache, opts, TUNA, reporter.QuietReporter())
        assert steps == [s for s in self.STEPS if s != "prepare"]

    def test_one_set_upstream_reads_each_file_of_the_container_once(self, running_cache):
        from devpictl import cache as cache_module
        from devpictl import layout

        engine, make, seen = running_cache
        container = make(False, configured(OFFICIAL), core_metadata=True)
        container.cache.files[cache_module.CHAIN_FILE] = '{"members": []}'
        seen["server"][0].projects = ["pip"]
        result = switching.set_upstream(
            engine,
            Instance("default"),
            TUNA,
            check=True,
            probe_project=None,
            reporter=reporter.QuietReporter(),
            fallbacks=(CATALOG["bfsu"],),
        )
        assert result.fallbacks == (CATALOG["bfsu"],) and result.core_metadata is True
        reads = container.cache.reads
        assert sorted(reads) == sorted([layout.SERVER_CONFIG, cache_module.CHAIN_FILE]), reads  # once each, though asked for more

    def test_set_upstream_to_the_upstream_it_has_asks_no_network(self, running_cache, monkeypatch):
        engine, make, seen = running_cache
        make(False, configured(TUNA))
        monkeypatch.setattr(switching, "check_not_itself", lambda *a: None)
        monkeypatch.setattr(switching, "keep_credentials", lambda *a: None)
        monkeypatch.setattr(switching, "core_metadata_measurement", lambda *a, **k: None)
        monkeypatch.setattr(switching, "core_metadata_state", lambda *a: False)
        result = switching.set_upstream(
            engine, Instance("default"), TUNA, check=True, probe_project=None, reporter=reporter.QuietReporter()
        )
        assert seen["checked"] == [] and result.actions == []

    def test_a_refused_expiry_is_one_line_and_the_next_run_finishes_the_switch(self, running_cache, monkeypatch):
        engine, make, seen = running_cache
        make(False, configured(OFFICIAL))
        server = seen["server"][0]
        server.projects = ["pip"]
        server.refuse_expire = httpx.Response(409, json={"message": "root/pypi lists its upstream's projects"})
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        result = invoke("set-upstream", "tuna", "--no-check", "--json")  # --json: no progress lines before it
        assert_one_line_error(
            result,
            DevpiError.exit_code,
            "the upstream was switched to tuna, but its cached pages were not all renewed",
            "devpi refused to forget the pages root/pypi cached: HTTP 409",
            "run the same command again to finish",
        )
        server.refuse_expire = None
        again = invoke("set-upstream", "tuna", "--no-check", "--json")
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout)["actions"] == [
            "finishing the switch to tuna that an earlier run left unfinished",
            "marked 1 cached project pages stale: each comes from the new upstream at its next request; "
            "0 with stored files are served as they are while that upstream fails",
        ]

    def test_set_upstream_on_an_offline_cache_is_a_conflict(self, running_cache):
        engine, make, _ = running_cache
        make(True, configured(OFFICIAL))
        with pytest.raises(Conflict, match="--online"):
            switching.set_upstream(engine, Instance("default"), TUNA, check=True, probe_project=None, reporter=reporter.QuietReporter())


def ctrl_c(*args, **kwargs):
    """What a Ctrl-C in the middle of a call does: SIGINT, to this process."""
    import os
    import signal
    import time

    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the KeyboardInterrupt arrives first
    raise AssertionError("SIGINT did not arrive")


class TestCtrlCDuringTheChecks:
    """README: exit 130, and the error line says what state it left."""

    @pytest.mark.parametrize("where", ["check_upstream", "measure_core_metadata"])
    def test_one_line_says_the_upstream_is_unchanged(self, running_cache, monkeypatch, where):
        from devpictl import probe

        engine, make, seen = running_cache
        make(False, configured(OFFICIAL), core_metadata=True)
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        monkeypatch.setattr(probe, where, ctrl_c)
        result = invoke("set-upstream", "tuna", "--json")
        what = "answers" if where == "check_upstream" else "serves core metadata"
        assert_one_line_error(
            result,
            130,
            f"interrupted while checking that {CATALOG['tuna'].url} {what}, before root/pypi's upstream was changed",
            "run the same command again",
        )
        assert [call for call in seen["server"][0].calls() if call[0] == "PATCH"] == []
