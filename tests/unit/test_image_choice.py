"""Which image `up` runs: labels record what built an image, and no build option is silently ignored."""

from __future__ import annotations

import pytest

from devpictl import image as img
from devpictl import lifecycle, precedence, reporter
from devpictl.errors import Conflict
from devpictl.mirrors import Upstream
from devpictl.settings import Instance
from tests.unit.fakes import FakeEngine

DEFAULT = img.DEFAULT_IMAGE
WEB = f"{DEFAULT}-web"


def labels(**options) -> dict[str, str]:
    return img.recipe_labels(img.BuildOptions(**options))


class TestRecipe:
    @pytest.mark.parametrize(
        ("options", "tag"),
        [
            ({}, DEFAULT),
            ({"web": True}, WEB),
            ({"front": False}, f"{DEFAULT}-nofront"),
            ({"web": True, "front": False, "devpi_server_version": "6.17.0"}, "devpictl/devpi-server:6.17.0-web-nofront"),
        ],
    )
    def test_variant_tags_say_what_is_inside(self, options, tag):
        assert img.variant_image(img.BuildOptions(**options)) == tag

    def test_labels_name_the_build_index_without_credentials(self):
        index = Upstream("corp", "https://user:secret@pypi.corp.example:8443/simple")
        assert labels(pip_index=index)[img.LABEL_PIP_INDEX] == "https://pypi.corp.example:8443/simple"
        assert labels()[img.LABEL_PIP_INDEX] == "default"

    def test_no_differences_for_the_same_recipe(self):
        options = img.BuildOptions(web=True, base_image="debian-python:12")
        assert img.recipe_differences(img.recipe_labels(options), options, {"web", "base_image"}) == []

    def test_what_is_inside_always_counts(self):
        assert img.recipe_differences(labels(), img.BuildOptions(web=True), set()) == ["no devpi-web (--web)"]
        assert img.recipe_differences(labels(front=False), img.BuildOptions(), set()) == ["no nginx front server (--front)"]
        # An image with more than asked for will do: devpi-web unused, nginx off.
        assert img.recipe_differences(labels(web=True), img.BuildOptions(front=False), set()) == []

    def test_how_it_was_built_counts_only_when_asked(self):
        built = labels(base_image="debian-python:12")
        assert img.recipe_differences(built, img.BuildOptions(), set()) == []
        assert img.recipe_differences(built, img.BuildOptions(), {"base_image"}) == [
            f"base image debian-python:12, not {img.DEFAULT_BASE_IMAGE}"
        ]

    def test_an_unlabelled_image_is_a_default_build(self):
        assert img.recipe_differences({}, img.BuildOptions(), set()) == []
        assert img.recipe_differences({}, img.BuildOptions(web=True), {"web"}) == ["no devpi-web (--web)"]
        assert img.recipe_differences({}, img.BuildOptions(), {"base_image"}) == [f"base image unknown, not {img.DEFAULT_BASE_IMAGE}"]


@pytest.fixture
def builds(monkeypatch) -> list[tuple[str, img.BuildOptions]]:
    done: list[tuple[str, img.BuildOptions]] = []
    monkeypatch.setattr(img, "build_image", lambda api, options, tag, environ, on_log: done.append((tag, options)) or tag)
    return done


def choose(engine: FakeEngine, *, image: str | None = None, given: frozenset[str] = frozenset(), front: bool = True, **build):
    requested = precedence.UpOptions(
        instance=Instance("default"), upstream=None, host=None, port=None, image=image,
        build=img.BuildOptions(front=front, **build), front=front, build_given=given,
    )
    _, opts = precedence.with_remembered(requested)
    actions: list[str] = []
    return lifecycle.choose_image(engine, requested, opts, reporter.QuietReporter(), actions), actions


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
