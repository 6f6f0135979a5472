"""`devpictl ls` / `ps`, and `status` without --name: every cache devpictl knows, with what to do next."""

from __future__ import annotations

import json

import pytest

from devpictl import container as ctr
from devpictl import status as cache_status
from devpictl.mirrors import CATALOG
from devpictl.settings import Instance
from tests.unit.clihelp import invoke
from tests.unit.fakes import OFFICIAL_URL, FakeEngine


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    # What a running cache's devpi says; these tests reach no devpi.
    monkeypatch.setattr(
        cache_status,
        "serving",
        lambda cache: cache_status.Serving(CATALOG["nju"], CATALOG["nju"].url, "6.20.3", {}, OFFICIAL_URL, []),
    )
    return engine


def remembered_only(name: str) -> None:
    """A cache whose container and volume are gone; its state directory remains."""
    Instance(name).state_dir.mkdir(parents=True)
    Instance(name).settings_file.write_text("port = 3142\n")


class TestLs:
    def test_every_kind_of_cache_with_its_next_step(self, engine):
        engine.add("default", port=3141)
        engine.add("old", status="exited")
        engine.volume_names.add("devpictl-kept-data")
        engine.volume_sizes["devpictl-kept-data"] = 12_500_000
        remembered_only("gone")

        result = invoke("ls", "--json")
        assert result.exit_code == 0, result.output
        caches = {c["name"]: c for c in json.loads(result.stdout)}
        assert list(caches) == ["default", "gone", "kept", "old"]
        assert caches["default"]["state"] == "running"
        assert caches["default"]["index_url"] == "http://127.0.0.1:3141/root/pypi/+simple/"
        assert caches["default"]["upstream_name"] == "nju"
        assert caches["default"]["next_step"] == "devpictl pip-config --write points pip at it"
        assert caches["old"]["state"] == "exited"
        assert caches["old"]["next_step"] == "stopped: devpictl up --name old starts it"
        assert caches["kept"] == {
            "name": "kept",
            "state": "down",
            "health": None,
            "index_url": None,
            "upstream_name": None,
            "upstream": None,
            "cache_bytes": 12_500_000,
            "volume": "devpictl-kept-data",
            "next_step": "down, data kept: devpictl up --name kept brings it back",
        }
        assert caches["gone"]["volume"] is None
        assert caches["gone"]["next_step"] == "down, data deleted: devpictl up --name gone makes it anew"

    def test_table(self, engine):
        engine.add("default")
        engine.volume_names.add("devpictl-kept-data")
        engine.volume_sizes["devpictl-kept-data"] = 12_500_000
        result = invoke("ls")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0].split() == ["NAME", "STATE", "INDEX", "URL", "UPSTREAM", "SIZE", "NEXT"]
        assert lines[1].split()[:4] == ["default", "running", "(healthy)", "http://127.0.0.1:3141/root/pypi/+simple/"]
        assert "12.5 MB" in lines[2] and "devpictl up --name kept" in lines[2]

    def test_whole_rows_when_stdout_is_not_a_terminal(self, engine, monkeypatch):
        monkeypatch.setenv("COLUMNS", "80")
        name = "a-cache-name-of-forty-characters-is-long"
        engine.add(name, status="exited")
        result = invoke("ls")  # CliRunner's stdout is no terminal
        assert result.exit_code == 0, result.output
        [header, row] = result.stdout.splitlines()
        assert row.split()[0] == name and row.endswith(f"stopped: devpictl up --name {name} starts it")
        assert len(row) > 80

    def test_a_failed_ups_log_alone_is_no_cache(self, engine):
        Instance("ghost").state_dir.mkdir(parents=True)
        Instance("ghost").failure_log.write_text("devpi's log\n")
        assert invoke("ls").stdout == "No caches here yet: `devpictl up` makes one.\n"

    def test_unhealthy_says_to_read_the_logs(self, engine):
        engine.add("sick").attrs["State"]["Health"]["Status"] = "unhealthy"
        (cache_entry,) = json.loads(invoke("ls", "--json").stdout)
        assert cache_entry["next_step"] == "not healthy: devpictl logs --name sick shows why"

    def test_ps_is_ls(self, engine):
        engine.add("default")
        assert invoke("ps", "--json").stdout == invoke("ls", "--json").stdout

    def test_nothing_yet(self, engine):
        result = invoke("ls")
        assert result.exit_code == 0
        assert result.stdout == "No caches here yet: `devpictl up` makes one.\n"
        assert json.loads(invoke("ls", "--json").stdout) == []

    def test_changes_nothing(self, engine):
        engine.add("default")
        invoke("ls")
        assert engine.mutations() == []


class TestStatusWithoutName:
    @pytest.fixture(autouse=True)
    def quiet_status(self, monkeypatch):
        # status asks devpi and the upstream from inside the container; not here.
        monkeypatch.setattr(cache_status, "upstream_reachability", lambda *a, **k: (None, None))

    def test_the_only_cache_is_shown(self, engine):
        engine.add("solo", status="exited")
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert "         cache: solo\n" in result.stdout
        assert "          next: stopped: devpictl up --name solo starts it\n" in result.stdout

    def test_several_are_listed(self, engine):
        engine.add("a")
        engine.add("b", port=3142)
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["a", "b"]
        assert "devpictl status --name NAME" in result.stderr
        assert [c["name"] for c in json.loads(invoke("status", "--json").stdout)] == ["a", "b"]

    def test_none_is_one_error_line(self, engine):
        result = invoke("status")
        assert result.exit_code == 8
        assert result.stderr == "error: no caches here yet: create one with `devpictl up`\n"

    def test_a_cache_that_is_down_says_so(self, engine):
        engine.volume_names.add("devpictl-kept-data")
        result = invoke("status", "--name", "kept")
        assert result.exit_code == 8
        assert result.stderr == "error: cache 'kept' is down (its data is kept): bring it back with `devpictl up --name kept`\n"

    def test_an_unknown_name_points_at_ls(self, engine):
        engine.add("a")
        result = invoke("status", "--name", "zz")
        assert "`devpictl ls`" in result.stderr and result.exit_code == 8


def test_a_port_another_cache_holds_is_named(engine):
    from devpictl import image as img

    engine.add("other", port=3141, status="exited")
    engine.image_tags.add(img.DEFAULT_IMAGE)
    result = invoke("up", "--name", "new", "--port", "3141")
    assert result.exit_code == 4, result.output
    assert (
        result.stderr
        == "error: port 3141 belongs to devpictl cache 'other': pick another with --port, or `devpictl down --name other` first\n"
    )
    assert engine.mutations() == []


class TestReadingCommandsWithoutName:
    """pip-config and stats without --name pick a cache as status does: the only one, or a list to choose from."""

    @pytest.mark.parametrize("command", [["pip-config"], ["stats"]])
    def test_several_are_listed_to_choose_from(self, engine, command):
        engine.add("a")
        engine.add("b", port=3142)
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr == "error: several caches here (a, b): pick one with --name, e.g. --name a (`devpictl ls` shows them)\n"

    def test_the_only_cache_is_used(self, engine):
        engine.add("solo", port=3150)
        result = invoke("pip-config")
        assert result.exit_code == 0, result.output
        assert "index-url = http://127.0.0.1:3150/root/pypi/+simple/\n" in result.stdout

    def test_none_is_one_error_line(self, engine):
        result = invoke("stats")
        assert (result.exit_code, result.stderr) == (8, "error: no caches here yet: create one with `devpictl up`\n")
