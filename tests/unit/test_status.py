"""What `status` shows about the upstream: asked from inside the container, not asked offline or stopped."""

from __future__ import annotations

import json

import pytest

from devpictl import container as ctr
from devpictl import page_policy as pp
from devpictl import policy
from devpictl import status as cache_status
from devpictl.precedence import save_remembered
from devpictl.settings import Instance
from tests.unit.clihelp import invoke
from tests.unit.fakes import EMPTY_PAGE, FILES_PAGE, TUNA, FakeDevpi, FakeEngine, checked_cache, configured, page_answer

# What the upstream check in the container prints for a page that lists files, and for one that lists none.
LISTED = (0, page_answer(f"{TUNA.url}/pip/", FILES_PAGE))
EMPTY = (0, page_answer(f"{TUNA.url}/pip/", EMPTY_PAGE))


@pytest.fixture
def status_devpi(monkeypatch):
    server = FakeDevpi(configured(TUNA), version="6.20.3")
    server.serve(monkeypatch)
    return server


class TestReachability:
    @pytest.mark.parametrize(
        "check, offline, expected",
        [
            (LISTED, False, (True, None)),
            (EMPTY, False, (True, None)),  # answers, lists nothing: still answering
            ((1, "URLError: [Errno -2] Name or service not known\n"), False, (False, "URLError: [Errno -2] Name or service not known")),
            ((1, "URLError: no answer within 4 s\n"), False, (False, "URLError: no answer within 4 s")),
            (LISTED, True, (None, None)),
        ],
    )
    def test_mapping(self, check, offline, expected):
        cache = checked_cache(FakeEngine(), check=check)
        assert cache_status.upstream_reachability(cache, TUNA.url, "pip", offline=offline) == expected

    def test_a_container_that_stopped_meanwhile_is_not_asked_again(self):
        from devpictl.errors import ExecFailed

        cache = checked_cache(FakeEngine(), check=LISTED)
        cache.unreachable = ExecFailed("cannot run python in devpictl-default", "container is not running")
        assert cache_status.upstream_reachability(cache, TUNA.url, "pip", offline=False) == (
            None,
            "could not ask from inside the cache: container is not running",
        )

    def test_unknown_upstream_is_not_asked(self):
        cache = checked_cache(FakeEngine(), check=LISTED)
        assert cache_status.upstream_reachability(cache, None, "pip", offline=False) == (None, None)
        assert cache.ran == []

    def test_short_deadline_and_remembered_probe_project(self, status_devpi):
        save_remembered(Instance("default"), {"probe_project": "six"})
        cache = checked_cache(FakeEngine(), check=LISTED)
        cache_status.status(cache.container.engine, Instance("default"))
        ((script, _, env),) = cache.ran
        assert script == "upstream_check.py"
        assert env["DEVPICTL_CHECK_URL"] == f"{TUNA.url}/six/"
        assert env["DEVPICTL_CHECK_TIMEOUT"] == str(cache_status.STATUS_UPSTREAM_TIMEOUT)
        assert cache_status.STATUS_UPSTREAM_TIMEOUT <= 5

    def test_broken_cache_toml_does_not_break_status(self, status_devpi):
        Instance("default").state_dir.mkdir(parents=True)
        Instance("default").settings_file.write_text("not = [toml")
        cache = checked_cache(FakeEngine(), check=LISTED)
        assert cache_status.status(cache.container.engine, Instance("default")).upstream_reachable is True


class TestStatusCommand:
    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine()
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    def test_not_answering(self, engine, status_devpi):
        checked_cache(engine, check=(1, "URLError: timed out\n"))
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert f"upstream: tuna {TUNA.url} (not answering: URLError: timed out)" in result.stdout
        assert "offline mode: off" in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["upstream_reachable"] is False
        assert data["upstream_problem"] == "URLError: timed out"
        assert data["offline"] is False

    def test_answering(self, engine, status_devpi):
        checked_cache(engine, check=LISTED)
        result = invoke("status")
        assert f"upstream: tuna {TUNA.url} (answering)" in result.stdout
        assert json.loads(invoke("status", "--json").stdout)["upstream_reachable"] is True

    def test_pages_still_from_the_previous_upstream(self, engine, status_devpi):
        checked_cache(engine, check=LISTED)
        assert json.loads(invoke("status", "--json").stdout)["cached_pages"] is None  # an image without the count
        assert "cached pages" not in invoke("status").stdout
        status_devpi.page_counts = {"cached": 40, "marked": 0}
        assert "  cached pages: 40\n" in invoke("status").stdout
        status_devpi.page_counts = {"cached": 40, "marked": 12}
        assert "cached pages: 40, 12 still from the previous upstream (each comes from this one at its next request" in invoke(
            "status"
        ).stdout.replace("\n", " ")
        data = json.loads(invoke("status", "--json").stdout)
        assert (data["cached_pages"], data["pages_from_previous_upstream"]) == (40, 12)

    def test_offline_is_not_asked(self, engine, status_devpi):
        cache = checked_cache(engine, check=LISTED, offline=True)
        result = invoke("status")
        assert f"upstream: tuna {TUNA.url} (not asked: offline mode)" in result.stdout
        assert "offline mode: on" in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["upstream_reachable"] is None and data["offline"] is True
        assert not any("DEVPICTL_CHECK_URL" in env for _, _, env in cache.ran)

    def test_stopped_cache_is_not_asked(self, engine, status_devpi):
        checked_cache(engine, check=LISTED, status="exited")
        data = json.loads(invoke("status", "--json").stdout)
        assert data["state"] == "exited" and data["upstream_reachable"] is None


class TestPagePolicy:
    """`status` shows the policy the running cache applies (its file in the container), and says so when that file is broken."""

    @pytest.fixture
    def engine(self, monkeypatch):
        engine = FakeEngine()
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        return engine

    def test_the_policy_in_force(self, engine, status_devpi):
        rules = pp.Policy(min_release_age=7 * 86400, allow_newer=("my-tool",), deny=("evil",))
        checked_cache(engine, check=LISTED).files[policy.POLICY_PATH] = json.dumps(rules.to_dict())
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert "page policy: files younger than 1w held back; except my-tool; denied: evil" in result.stdout
        data = json.loads(invoke("status", "--json").stdout)
        assert data["policy"] == "files younger than 1w held back; except my-tool; denied: evil"
        assert data["policy_settings"] == rules.to_dict()

    def test_none_handed_in(self, engine, status_devpi):
        cache = checked_cache(engine, check=LISTED)
        data = json.loads(invoke("status", "--json").stdout)
        assert data["policy"] == "none (every file, every project)" and data["policy_settings"] == pp.Policy().to_dict()
        assert policy.POLICY_PATH in cache.reads  # it was asked for, and not there

    def test_a_broken_file_is_shown_as_broken(self, engine, status_devpi):
        checked_cache(engine, check=LISTED).files[policy.POLICY_PATH] = '{"min_release_age": "7d"}'
        result = invoke("status")
        assert result.exit_code == 0, result.output
        assert "page policy file is unreadable" in result.stdout and "devpictl set-policy" in result.stdout
        assert json.loads(invoke("status", "--json").stdout)["policy_settings"] is None
