"""The life of a cache around `up`: the image it runs, upgrades, what may change on a running one, and `down` (waiting: test_readiness.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from devpictl import container as ctr
from devpictl import image as img
from devpictl import lifecycle, precedence, reporter, settings
from devpictl.cache import Cache
from devpictl.errors import Conflict, EngineError
from devpictl.settings import Instance
from tests.unit.fakes import FakeContainer, FakeEngine, up_options


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
