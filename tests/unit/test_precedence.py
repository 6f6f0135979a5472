"""What `up` is asked for, settled in one place: flag > environment > remembered > default."""

from __future__ import annotations

import pytest

from devpictl import precedence
from devpictl.errors import BadInput
from devpictl.precedence import load_remembered, save_remembered
from devpictl.settings import Instance
from tests.unit.clihelp import invoke
from tests.unit.fakes import up_options


class TestResourceLimits:
    def test_defaults(self):
        full = precedence.decide(up_options())
        assert (full.memory, full.pids_limit) == ("2g", 512)

    def test_remembered_then_flag(self):
        save_remembered(Instance("default"), {"memory": "3g", "pids_limit": 300})
        assert precedence.decide(up_options()).memory == "3g"
        assert precedence.decide(up_options(memory="1g", pids_limit=100)).pids_limit == 100


class TestRemembered:
    def test_offline_defaults_to_off(self):
        full = precedence.decide(up_options())
        assert "offline" not in full.given and full.offline is False

    def test_remembered_offline_comes_back(self):
        save_remembered(Instance("default"), {"offline": True, "port": 3200})
        full = precedence.decide(up_options())
        assert "offline" in full.given and full.offline is True

    def test_flag_wins(self):
        save_remembered(Instance("default"), {"offline": True})
        assert precedence.decide(up_options(offline=False)).offline is False

    def test_remembered_host_is_what_up_binds(self):
        save_remembered(Instance("default"), {"host": "0.0.0.0"})
        assert precedence.decide(up_options()).host == "0.0.0.0"


class TestSwitchOptions:
    """What `up` hands switching.switch: decided settings, and this run's switch choices (never remembered)."""

    def test_the_decided_settings_and_this_runs_choices(self):
        save_remembered(Instance("default"), {"offline": True, "probe_project": "six"})
        opts = precedence.decide(up_options(check=False, refresh_pages=True)).switch_options()
        assert opts == precedence.SwitchOptions(Instance("default"), "six", None, check=False, offline=True, refresh_pages=True)

    def test_by_default_pages_are_forgotten_not_refreshed(self):
        opts = precedence.decide(up_options()).switch_options()
        assert (opts.check, opts.offline, opts.refresh_pages) == (True, False, False)


class TestExplicitBeatsRemembered:
    """A value given on purpose wins over what `up` remembered, even when it is false or zero."""

    def test_no_front_beats_a_remembered_front(self):
        save_remembered(Instance("default"), {"front": True})
        assert precedence.decide(up_options(front=False)).front is False

    def test_no_size_limit_beats_a_remembered_one(self):
        save_remembered(Instance("default"), {"max_bytes": 20 * 1024**3})
        assert precedence.decide(up_options()).max_bytes == 20 * 1024**3
        assert precedence.decide(up_options(max_bytes="0")).max_bytes == 0  # --max-size 0

    def test_what_was_not_given_stays_unsaid_before_the_defaults(self):
        full = precedence.decide(up_options())
        assert full.given & {"host", "port", "image", "probe_project", "front"} == set()
        assert (full.host, full.port, full.probe_project, full.front) == ("127.0.0.1", 3141, "pip", True)


class TestRememberedValues:
    @pytest.mark.parametrize("port", [1, 65535])
    def test_remembered_port_bounds(self, port):
        save_remembered(Instance("default"), {"port": port})
        assert load_remembered(Instance("default"))["port"] == port

    def test_remembered_port_just_beyond(self):
        save_remembered(Instance("default"), {"port": 65536})
        with pytest.raises(BadInput, match="port = 65536"):
            load_remembered(Instance("default"))


class TestProbeProject:
    def test_given_then_remembered_then_pip(self):
        instance = Instance("default")
        assert precedence.probe_project(instance) == "pip"
        save_remembered(instance, {"probe_project": "six"})
        assert precedence.probe_project(instance) == "six"
        assert precedence.probe_project(instance, "attrs") == "attrs"


# setting: (flag, environment variable, remembered key, the value each source gives: flag, environment,
# remembered, default, and how to read what `up` used off the engine)
SETTINGS = {
    "port": (
        "--port",
        "DEVPICTL_PORT",
        "port",
        (3301, 3300, 3299, 3141),
        lambda engine: engine.created["devpictl-default"]["ports"]["3141/tcp"][1],
    ),
    "probe-project": (
        "--probe-project",
        "DEVPICTL_PROBE_PROJECT",
        "probe_project",
        ("attrs", "numpy", "six", "pip"),
        lambda engine: engine.ready[-1],
    ),
    "memory": (
        "--memory",
        "DEVPICTL_MEMORY",
        "memory",
        ("1g", "3g", "1536m", "2g"),
        lambda engine: {1024**3: "1g", 3 * 1024**3: "3g", 1536 * 1024**2: "1536m", 2 * 1024**3: "2g"}[
            engine.created["devpictl-default"]["mem_limit"]
        ],
    ),
}
SOURCES = ("flag", "environment", "remembered", "default")


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("given", [SOURCES[:3], SOURCES[1:3], SOURCES[2:3], ()], ids=["all", "no-flag", "remembered-only", "nothing"])
def test_flag_then_environment_then_remembered_then_default(fresh_engine, setting, given):
    """The real `up` through the CLI: Typer reads the flag and the environment, precedence adds the rest."""
    flag, variable, key, values, used = SETTINGS[setting]
    value = dict(zip(SOURCES, values, strict=True))
    if "remembered" in given:
        save_remembered(Instance("default"), {key: value["remembered"]})
    args = [flag, str(value["flag"])] if "flag" in given else []
    env = {variable: str(value["environment"])} if "environment" in given else {}
    result = invoke("up", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    assert used(fresh_engine) == value[given[0] if given else "default"]
