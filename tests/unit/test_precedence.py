"""What `up` is asked for, settled in one place: flag > environment > remembered > default."""

from __future__ import annotations

from devpictl import precedence
from devpictl.settings import Instance, save_remembered
from tests.unit.fakes import up_options


class TestResourceLimits:
    def test_defaults(self):
        full = precedence.with_remembered(up_options())[1]
        assert (full.memory, full.pids_limit) == ("2g", 512)

    def test_remembered_then_flag(self):
        save_remembered(Instance("default"), {"memory": "3g", "pids_limit": 300})
        assert precedence.with_remembered(up_options())[1].memory == "3g"
        assert precedence.with_remembered(up_options(memory="1g", pids_limit=100))[1].pids_limit == 100


class TestRemembered:
    def test_offline_defaults_to_off(self):
        given, full = precedence.with_remembered(up_options())
        assert given.offline is None and full.offline is False

    def test_remembered_offline_comes_back(self):
        save_remembered(Instance("default"), {"offline": True, "port": 3200})
        given, full = precedence.with_remembered(up_options())
        assert given.offline is True and full.offline is True

    def test_flag_wins(self):
        save_remembered(Instance("default"), {"offline": True})
        assert precedence.with_remembered(up_options(offline=False))[1].offline is False

    def test_remembered_host_is_what_up_binds(self):
        save_remembered(Instance("default"), {"host": "0.0.0.0"})
        assert precedence.with_remembered(up_options())[1].host == "0.0.0.0"
