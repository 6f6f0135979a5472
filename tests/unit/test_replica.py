"""Replicas (`up --replica-of`): the primary's URL, what status reads from devpi, the entrypoint's roles, the secret."""

from __future__ import annotations

import json
import stat

import httpx
import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import layout, replica
from devpictl import status as cache_status
from devpictl.cli import app
from devpictl.devpi import DevpiClient
from devpictl.errors import DevpiError
from devpictl.settings import Instance
from tests.unit.fakes import FakeEngine

PRIMARY_URL = "http://cache-a:3141"
SECRET = "s" * 44


def test_the_primary_url_is_its_root_without_a_trailing_slash():
    assert replica.check_primary_url("http://cache-a:3141/") == PRIMARY_URL
    assert replica.check_primary_url("HTTPS://cache-a.example") == "https://cache-a.example"


class TestWhatStatusReads:
    def test_a_replica_behind_its_primary(self):
        answer = {
            "serial": 40,
            "primary-serial": 43,
            "role": "REPLICA",
            "metrics": [["devpi_server_replica_file_download_queue_size", "gauge", 7], ["other", "counter", 1]],
        }
        state = replica.replication(answer, PRIMARY_URL)
        assert (state.role, state.primary_url, state.serial, state.primary_serial, state.lag, state.files_waiting) == (
            "replica",
            PRIMARY_URL,
            40,
            43,
            3,
            7,
        )

    def test_a_replica_that_never_heard_from_its_primary_has_no_lag(self):
        state = replica.replication({"serial": -1, "primary-serial": None, "metrics": []}, PRIMARY_URL)
        assert state.lag is None and state.files_waiting is None

    def test_a_primary_lists_the_replicas_that_polled_it(self, monkeypatch):
        monkeypatch.setattr(replica.time, "time", lambda: 1000.0)
        answer = {
            "serial": 10,
            "role": "MASTER",
            "polling_replicas": {
                "uuid-a": {"remote-ip": "172.18.0.3", "serial": 10, "last-request": 998.0},
                "uuid-b": {"remote-ip": "172.18.0.4", "serial": 7, "last-request": 990.5},
            },
        }
        state = replica.replication(answer, None)
        assert state.role == "primary"
        assert state.replicas == [
            {"address": "172.18.0.3", "serial": 10, "lag": 0, "seconds_since_contact": 2.0},
            {"address": "172.18.0.4", "serial": 7, "lag": 3, "seconds_since_contact": 9.5},
        ]

    def test_status_text_names_the_role(self, monkeypatch):
        engine = FakeEngine()
        cache = engine.add("default", env=("DEVPICTL_FRONT=1", f"DEVPICTL_PRIMARY_URL={PRIMARY_URL}")).cache
        cache.sizes[layout.DATA_DIR] = 1
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        monkeypatch.setattr(cache_status, "serving", lambda cache: None)
        monkeypatch.setattr(replica, "replication_state", lambda c: replica.Replication("replica", PRIMARY_URL, 5, 8, 3, 2))
        result = CliRunner().invoke(app, ["status"])
        assert result.exit_code == 0, result.output
        assert f"role: replica of {PRIMARY_URL} (3 changes behind, 2 files in its download queue)" in result.output
        assert "root password: the primary's" in result.output


class TestAnnouncingNewPages:
    def client(self, status: int, message: str, seen: list) -> DevpiClient:
        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(json.loads(request.content))
            return httpx.Response(status, json={"message": message, "result": {}})

        return DevpiClient("http://127.0.0.1:3141", transport=httpx.MockTransport(handle))

    def test_sets_the_generation_replicas_watch(self):
        seen: list = []
        replica.announce_new_pages(self.client(200, "", seen))
        [[item]] = seen
        assert item.startswith("devpictl_pages_generation=")

    def test_an_image_without_the_setting_has_no_replicas_to_tell(self):
        replica.announce_new_pages(self.client(400, "indexconfig got unexpected keyword arguments: devpictl_pages_generation", []))

    def test_any_other_refusal_is_an_error(self):
        with pytest.raises(DevpiError):
            replica.announce_new_pages(self.client(403, "forbidden", []))


class TestTheSecret:
    def test_kept_0600_and_never_printed(self, tmp_path):
        given = tmp_path / "primary.secret"
        given.write_text(SECRET + "\n")
        instance = Instance("rep")
        replica.store_replica_secret(instance, replica.read_replica_secret(given))
        assert replica.stored_replica_secret(instance) == SECRET.encode()
        assert stat.S_IMODE(instance.replica_secret_file.stat().st_mode) == 0o600

    def test_exported_from_a_running_primary(self, monkeypatch, tmp_path):
        engine = FakeEngine()
        engine.add("default").cache.files[layout.SERVER_SECRET] = SECRET
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        out = tmp_path / "out.secret"
        result = CliRunner().invoke(app, ["password", "--replica-secret", str(out)])
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
        assert out.read_text().strip() == SECRET
        assert stat.S_IMODE(out.stat().st_mode) == 0o600


class TestThePrimarysPagePolicy:
    """A replica applies its primary's page policy: shared as root/pypi's setting, written into the replica's file by follow-primary.py."""

    def test_set_policy_on_a_replica_points_to_the_primary_and_changes_nothing(self, monkeypatch):
        engine = FakeEngine()
        cache = engine.add("default", env=("DEVPICTL_FRONT=1", f"DEVPICTL_PRIMARY_URL={PRIMARY_URL}")).cache
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        result = CliRunner().invoke(app, ["set-policy", "--min-release-age", "7d"])
        assert result.exit_code != 0
        assert result.output.strip().splitlines() == [
            f"error: cache 'default' is a replica of {PRIMARY_URL}: run `devpictl set-policy` on the primary; its replicas follow"
        ]
        assert not cache.handed and engine.mutations() == [] and not Instance("default").settings_file.exists()

    def test_up_of_a_replica_takes_no_policy_of_its_own(self):
        from devpictl import precedence
        from devpictl.errors import BadInput

        with pytest.raises(
            BadInput, match=r"^a replica applies its primary's page policy: drop --deny, and run `devpictl set-policy` on the primary$"
        ):
            precedence.ask(Instance("default"), replica_of=PRIMARY_URL, deny=["evil"])

    def test_a_replica_installs_nothing(self):
        from devpictl import page_policy, policy

        cache = FakeEngine().add("default", env=(f"DEVPICTL_PRIMARY_URL={PRIMARY_URL}",)).cache
        assert policy.install(cache, page_policy.Policy(min_release_age=60)) is False
        assert not cache.handed and cache.flushes == 0

    def test_a_primary_shares_it_once_and_an_older_image_has_nowhere_to(self, monkeypatch):
        from devpictl import page_policy, password, policy
        from tests.unit.fakes import ROOT_PASSWORD, FakeDevpi

        server = FakeDevpi()
        server.serve(monkeypatch)
        monkeypatch.setattr(password, "login_root", lambda client, instance: client.login("root", ROOT_PASSWORD))
        cache = FakeEngine().add("default").cache
        rules = page_policy.Policy(min_release_age=60, deny=("evil",))
        assert policy.install(cache, rules) is True
        assert policy.install(cache, rules) is False  # the file and the setting hold it: nothing asked of devpi again
        assert server.shared_policies() == [rules.to_dict()]

        # An image built before the setting: devpi refuses the key, and the policy still applies here.
        def refuse(client, changes):
            raise DevpiError("devpi refused to change root/pypi: indexconfig got unexpected keyword arguments: devpictl_page_policy")

        monkeypatch.setattr(DevpiClient, "patch_index", refuse)
        assert policy.install(cache, page_policy.Policy()) is True


def follower(tmp_path):
    """templates/follow-primary.py, its policy file in ``tmp_path``."""
    import sys

    from devpictl import page_policy
    from tests.unit.fakes import rendered_module

    sys.modules.setdefault("page_policy", page_policy)  # in devpi's site-packages, whose python runs it
    module = rendered_module("follow-primary.py", "devpictl_follow_primary")
    module.POLICY_FILE = str(tmp_path / layout.PAGE_POLICY_FILE)
    return module


def test_a_replica_writes_its_primarys_policy_into_its_file(tmp_path, capsys):
    from devpictl import page_policy, policy

    module = follower(tmp_path)
    path = tmp_path / layout.PAGE_POLICY_FILE
    module.follow_policy("")  # nothing shared (an older primary): no file, the default policy
    assert not path.exists()
    rules = page_policy.Policy(min_release_age=604800, allow_newer=("tool",))
    module.follow_policy(policy.shared_text(rules))
    assert page_policy.PolicyFile(str(path)).get() == rules
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert "the primary's page policy applies: files younger than 1w held back; except tool" in capsys.readouterr().err
    module.follow_policy(policy.shared_text(rules))  # the same again: not written again
    assert capsys.readouterr().err == ""
    module.follow_policy('{"min_release_age": "7d"}')  # unreadable: this replica's stays
    assert "the primary's page policy is unreadable" in capsys.readouterr().err
    assert page_policy.PolicyFile(str(path)).get() == rules


class TestCatchingUpBehindALogin:
    """`up --replica-of URL --read-auth`: devpictl logs in as root, which the replica knows only once replication brought it."""

    class Replica:
        def __init__(self, answers):
            self.answers = list(answers)  # what each attempt meets: an exception (the login), or /+status' answer
            self.instance = Instance("rep")

        @property
        def client(self):
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            if isinstance(answer, Exception):
                raise answer

            class Client:
                def server_status(self):
                    return answer

            return Client()

        def logs_tail(self, lines):
            return "devpi log\n"

    def test_a_refused_login_waits_for_root_to_arrive(self, monkeypatch):
        from devpictl.errors import LoginRefused
        from devpictl.reporter import QuietReporter

        monkeypatch.setattr(replica.time, "sleep", lambda s: None)
        cache = self.Replica([LoginRefused("no root yet"), LoginRefused("no root yet"), {"serial": 9, "primary-serial": 9}])
        state = replica.wait_until_caught_up(cache, PRIMARY_URL, 60, QuietReporter())
        assert state.lag == 0 and state.serial == 9

    def test_a_login_refused_to_the_end_says_which_password_is_wanted(self, monkeypatch):
        from devpictl.errors import LoginRefused
        from devpictl.reporter import QuietReporter

        clock = iter(range(0, 1000, 50))
        monkeypatch.setattr(replica.time, "monotonic", lambda: next(clock))
        monkeypatch.setattr(replica.time, "sleep", lambda s: None)
        cache = self.Replica([LoginRefused("wrong password")])
        with pytest.raises(LoginRefused) as refused:
            replica.wait_until_caught_up(cache, PRIMARY_URL, 60, QuietReporter())
        assert "primary's root password" in str(refused.value) and str(Instance("rep").password_file) in str(refused.value)
