"""The life of a cache around `up`: readiness, the image it runs, upgrades, what may change on a running one, and `down`."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import httpx
import pytest

from devpictl import cache as cache_module
from devpictl import container as ctr
from devpictl import image as img
from devpictl import lifecycle, precedence, readiness, reporter, settings
from devpictl.cache import Cache
from devpictl.devpi import DevpiClient
from devpictl.errors import Conflict, EngineError, ReadinessTimeout
from devpictl.settings import Instance
from tests.unit.fakes import EMPTY_PAGE, FILES_PAGE, FakeContainer, FakeDevpi, FakeEngine, up_options


class FakeClock:
    """Stands in for the time module in devpictl.lifecycle: sleeping advances the clock at once."""

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
    monkeypatch.setattr(readiness, "time", fake)
    return fake


class TestWaitUntilReady:
    def test_returns_the_files_once_the_page_lists_some(self, clock):
        server = FakeDevpi()
        server.simple_pages = [
            httpx.Response(200, text=EMPTY_PAGE),  # still loading its mirror
            httpx.Response(502, text="Bad Gateway"),
            httpx.Response(200, text=FILES_PAGE),
        ]
        with server.client() as client:
            files = lifecycle.wait_until_ready(client, "pip", 60, reporter.QuietReporter())
        assert files == ["pip-24.0-py3-none-any.whl"]
        assert len(clock.sleeps) == 2
        assert server.calls() == [("GET", "/root/pypi/+simple/pip/")] * 3

    def test_a_captive_portal_is_not_ready(self, clock):
        server = FakeDevpi()
        portal = '<html><body><a href="/login">Sign in</a><a href="https://portal.example/">Wi-Fi terms</a></body></html>'
        server.simple_pages = [httpx.Response(200, text=portal)] * 20
        with server.client() as client, pytest.raises(ReadinessTimeout, match="listed no files"):
            lifecycle.wait_until_ready(client, "pip", 5, reporter.QuietReporter())

    def test_times_out_when_no_files_appear(self, clock):
        server = FakeDevpi()
        with server.client() as client, pytest.raises(ReadinessTimeout) as info:
            lifecycle.wait_until_ready(client, "pip", 5, reporter.QuietReporter())
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
            lifecycle.wait_until_ready(client, "pip", 2, reporter.QuietReporter())

    def test_unreachable_cache_times_out(self, clock):
        def refuse(request):
            raise httpx.ConnectError("refused", request=request)

        with DevpiClient("http://127.0.0.1:1", transport=httpx.MockTransport(refuse)) as client:
            with pytest.raises(ReadinessTimeout, match="cannot reach devpi"):
                lifecycle.wait_until_ready(client, "pip", 3, reporter.QuietReporter())

    def test_a_tls_failure_in_devpis_log_says_so_at_once_and_names_ca_bundle(self, clock):
        from devpictl.errors import UpstreamUnreachable

        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        container = FakeEngine().add("default")
        log = (
            "2026-01-01 12:00:00,000 ERROR [req1] error fetching https://mirror.example/simple/pip/: "
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)\n"
        )
        asked = []
        container.logs = lambda **kw: (asked.append(kw), log.encode())[1]
        since = datetime.datetime.now(datetime.UTC)
        with server.client() as client, pytest.raises(UpstreamUnreachable) as info:
            lifecycle.wait_until_ready(client, "pip", 180, reporter.QuietReporter(), Cache.of(container), since)
        assert asked[0]["since"] == since  # only what devpi logged during this `up`
        message = str(info.value)
        assert "TLS certificate (CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate" in message
        assert "--ca-bundle" in message
        assert clock.now < 1010  # not after the whole timeout

    def test_a_log_without_tls_failures_keeps_waiting(self, clock):
        server = FakeDevpi()
        server.simple_pages = [httpx.Response(502, text="Bad Gateway")] * 10
        container = FakeEngine().add("default")
        container.logs = lambda **kw: b"ERROR error fetching https://mirror.example/simple/pip/: ConnectTimeout\n"
        with server.client() as client, pytest.raises(ReadinessTimeout, match="HTTP 502"):
            lifecycle.wait_until_ready(client, "pip", 2, reporter.QuietReporter(), Cache.of(container))


class TestWaitForApi:
    """A container that stops or restarts during start-up fails `up` at once, not after the whole timeout."""

    @pytest.mark.parametrize(
        "states",
        [["running", "restarting"], ["running", "exited"], ["running", "running+1"]],
        ids=["restarting", "exited", "restarted-between-polls"],
    )
    def test_a_failing_container_is_a_failure(self, clock, states, monkeypatch):
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

        monkeypatch.setattr(
            cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=httpx.MockTransport(refuse))
        )
        with Cache.of(container) as cache, pytest.raises(ReadinessTimeout, match="exited during start-up"):
            lifecycle.wait_for_api(cache, 3600, reporter.QuietReporter())
        assert len(clock.sleeps) == 1

    def test_restarts_from_before_do_not_count(self, clock, monkeypatch):
        container = FakeEngine().add("default")
        container.attrs["RestartCount"] = 5
        answers = iter([httpx.ConnectError, None])

        def handle(request):
            error = next(answers)
            if error is not None:
                raise error("refused", request=request)
            return httpx.Response(200, json={"result": {}})

        monkeypatch.setattr(
            cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=httpx.MockTransport(handle))
        )
        with Cache.of(container) as cache:
            lifecycle.wait_for_api(cache, 60, reporter.QuietReporter())


def test_proxy_env_file_quotes_only_proxy_variables():
    text = lifecycle.proxy_env_file({"HTTPS_PROXY": "http://u:p w@proxy:3128", "PATH": "/bin", "no_proxy": "localhost"})
    assert text == b"HTTPS_PROXY='http://u:p w@proxy:3128'\nno_proxy=localhost\n"
    assert lifecycle.proxy_env_file({"PATH": "/bin"}) == b""


# Which image `up` runs: labels record what built an image, and no build option is silently ignored.
DEFAULT = img.DEFAULT_IMAGE
WEB = f"{DEFAULT}-web"


def labels(**options) -> dict[str, str]:
    return img.recipe_labels(img.BuildOptions(**options))


@pytest.fixture
def builds(monkeypatch) -> list[tuple[str, img.BuildOptions]]:
    done: list[tuple[str, img.BuildOptions]] = []
    monkeypatch.setattr(img, "build_image", lambda api, options, tag, environ, on_log: done.append((tag, options)) or tag)
    return done


def choose(engine: FakeEngine, *, image: str | None = None, given: frozenset[str] = frozenset(), front: bool = True, **build):
    requested = precedence.ask(
        Instance("default"), image=image, build=img.BuildOptions(front=front, **build), front=front, build_given=given
    )
    opts = precedence.decide(requested)
    actions: list[str] = []
    image, done = lifecycle.choose_image(engine, opts, reporter.QuietReporter())
    actions.extend(done)
    return image, actions


class TestChooseImage:
    def test_the_default_image_as_it_is(self, builds):
        engine = FakeEngine(images=(DEFAULT,))
        assert choose(engine) == (DEFAULT, [])
        assert builds == []

    def test_web_picks_the_web_variant(self, builds):
        engine = FakeEngine(images=(DEFAULT,))
        engine.image_labels[DEFAULT] = labels()
        # Missing: ensure_image builds it later, like any missing image.
        assert choose(engine, web=True, given=frozenset({"web"})) == (WEB, [])
        assert builds == []

    def test_no_front_picks_the_nofront_variant(self, builds):
        assert choose(FakeEngine(), front=False)[0] == f"{DEFAULT}-nofront"

    def test_a_variant_built_another_way_is_rebuilt_and_says_why(self, builds):
        engine = FakeEngine(images=(WEB,))
        engine.image_labels[WEB] = labels(web=True)
        tag, actions = choose(engine, web=True, base_image="debian-python:12", given=frozenset({"web", "base_image"}))
        assert tag == WEB
        assert [(t, o.base_image, o.web) for t, o in builds] == [(WEB, "debian-python:12", True)]
        assert actions == [f"rebuilt image {WEB} (base image {img.DEFAULT_BASE_IMAGE}, not debian-python:12)"]

    def test_an_image_named_with_image_is_never_rebuilt(self, builds):
        engine = FakeEngine(images=("team/devpi:1",))
        engine.image_labels["team/devpi:1"] = labels()
        with pytest.raises(Conflict) as refused:
            choose(engine, image="team/devpi:1", web=True, given=frozenset({"web"}))
        assert str(refused.value) == (
            "image team/devpi:1 has no devpi-web (--web): rebuild it with `devpictl build --image team/devpi:1` "
            "and those options, or drop --image"
        )
        assert builds == [] and engine.mutations() == []

    def test_an_image_named_with_image_runs_without_its_front_server(self, builds):
        engine = FakeEngine(images=("team/devpi:1",))
        engine.image_labels["team/devpi:1"] = labels()
        assert choose(engine, image="team/devpi:1", front=False) == ("team/devpi:1", [])


class TestUpgrade:
    """`up --image` on an existing cache: devpi's database version decides."""

    @pytest.fixture
    def engine(self, monkeypatch):
        removed: list = []
        answers = {"needed": "4", "have": "3"}

        def run_once(engine, image, command, volume=None):
            return answers["have"] if volume else answers["needed"]

        monkeypatch.setattr(ctr, "image_exists", lambda engine, tag: True)
        monkeypatch.setattr(ctr, "run_once", run_once)
        monkeypatch.setattr(ctr, "remove", removed.append)
        return {"removed": removed, "answers": answers}

    def options(self) -> precedence.CacheSettings:
        return precedence.ask(settings.Instance("c"), image="new:1")

    def old_container(self):
        container = FakeContainer(FakeEngine())
        container.image = SimpleNamespace(tags=["old:1"], short_id="sha256:old", id="sha256:old")
        return container

    def test_another_database_version_stops_before_touching_anything(self, engine):
        container = self.old_container()
        actions: list[str] = []
        with pytest.raises(Conflict) as info:
            actions += lifecycle.upgrade(None, Cache.of(container), self.options(), reporter.QuietReporter())
        message = str(info.value)
        assert "needs database version 4, cache 'c' has 3" in message
        assert "nothing was changed" in message and "devpictl backup --name c" in message and "devpictl restore" in message
        assert "\n" not in message
        assert engine["removed"] == [] and actions == []

    def test_same_database_version_replaces_the_container_only(self, engine):
        engine["answers"]["have"] = "4"
        container = self.old_container()
        actions = lifecycle.upgrade(None, Cache.of(container), self.options(), reporter.QuietReporter())
        assert engine["removed"] == [container]
        assert actions == ["replaced the container of old:1 with new:1"]


class TestResourceLimits:
    @pytest.mark.parametrize("asked", [{"memory": "1g"}, {"pids_limit": 100}])
    def test_other_limits_on_a_running_cache_need_down(self, asked):
        container = FakeContainer(FakeEngine())
        container.attrs["HostConfig"].update(Memory=2 * 1024**3, PidsLimit=512)
        with pytest.raises(Conflict, match="other resource limits: run `devpictl down --name default` first"):
            lifecycle.check_unchanged(Cache.of(container), up_options(**asked))
        lifecycle.check_unchanged(Cache.of(container), up_options(memory="2048m", pids_limit=512))


class TestChangingOfflineNeedsDown:
    @pytest.mark.parametrize("running_offline, asked", [(True, False), (False, True)])
    def test_conflict(self, running_offline, asked):
        container = FakeContainer(FakeEngine(), env=(f"DEVPICTL_OFFLINE={int(running_offline)}",))
        with pytest.raises(Conflict, match=r"offline mode: run `devpictl down --name default` first"):
            lifecycle.check_unchanged(Cache.of(container), up_options(offline=asked))

    @pytest.mark.parametrize("running_offline", [True, False])
    def test_same_or_unsaid_is_fine(self, running_offline):
        container = FakeContainer(FakeEngine(), env=(f"DEVPICTL_OFFLINE={int(running_offline)}",))
        lifecycle.check_unchanged(Cache.of(container), up_options(offline=running_offline))
        lifecycle.check_unchanged(Cache.of(container), up_options(offline=None))


class TestDownVolumes:
    def state(self, name: str = "default") -> settings.Instance:
        instance = settings.Instance(name)
        settings.ensure_root_password(instance)
        precedence.save_remembered(instance, {"port": 3141})
        instance.failure_log.write_text("devpi said no\n")
        return instance

    def test_forgets_everything_even_when_the_volume_is_gone(self):
        instance = self.state()
        actions = lifecycle.down(FakeEngine(), instance, volumes=True)
        assert not instance.state_dir.exists()
        assert actions == [f"deleted root-password, cache.toml, last-failed-up.log from {instance.state_dir}"]

    def test_a_volume_devpictl_did_not_make_is_left_alone(self):
        instance = self.state()
        engine = FakeEngine()
        engine.add("default")  # a running container: it must stay too
        engine.foreign_volumes.add(instance.volume)
        with pytest.raises(EngineError, match="was not made by devpictl"):
            lifecycle.down(engine, instance, volumes=True)
        assert engine.mutations() == []
        assert instance.password_file.exists()

    def test_without_volumes_nothing_is_forgotten(self):
        instance = self.state()
        assert lifecycle.down(FakeEngine(), instance, volumes=False) == []
        assert instance.password_file.exists()
