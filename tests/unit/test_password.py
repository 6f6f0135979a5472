"""devpictl password: --show prints the stored secret; --rotate changes devpi and the store together."""

from __future__ import annotations

import json
import stat

import pytest

from devpictl import cache as cache_module
from devpictl import container as ctr
from devpictl import password as pw
from devpictl.devpi import DevpiClient
from devpictl.settings import Instance, ensure_root_password, read_root_password
from tests.unit.clihelp import invoke
from tests.unit.fakes import FakeDevpi, FakeEngine


def one_error_line(result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def stored():
    """The cache 'default' with a stored root password; returns it."""
    password, _ = ensure_root_password(Instance("default"))
    return password


@pytest.fixture
def engine(monkeypatch):
    engine = FakeEngine()
    engine.add("default")
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    return engine


@pytest.fixture
def devpi(monkeypatch, stored):
    """A fake devpi that knows the stored password; devpictl.password's client talks to it."""
    server = FakeDevpi(password=stored)
    monkeypatch.setattr(cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=server.transport()))
    return server


def state_files() -> dict[str, bytes]:
    state = Instance("default").state_dir
    return {p.name: p.read_bytes() for p in sorted(state.iterdir())}


class TestShow:
    def test_prints_the_stored_password(self, stored):
        result = invoke("password", "--show")
        assert result.exit_code == 0, result.output
        assert result.stdout == stored + "\n"

    def test_json(self, stored):
        result = invoke("password", "--show", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {
            "name": "default",
            "password": stored,
            "password_file": str(Instance("default").password_file),
        }

    def test_an_interrupted_rotation_is_pointed_out(self, stored):
        from devpictl.settings import stage_root_password

        stage_root_password(Instance("default"), "maybe-devpis")
        result = invoke("password", "--show")
        assert result.exit_code == 0, result.output
        assert result.stdout == stored + "\n"  # stdout stays the secret alone, for scripts
        assert "root-password.pending" in result.stderr and "maybe-devpis" not in result.stderr

    def test_needs_no_engine(self, stored, monkeypatch):
        monkeypatch.setattr(ctr, "connect", lambda: pytest.fail("--show must not ask the engine"))
        assert invoke("password", "--show").exit_code == 0

    def test_no_stored_password(self):
        line = one_error_line(invoke("password", "--show", "--name", "nosuch"), 8)
        assert "no root password for cache 'nosuch'" in line and "devpictl up --name nosuch" in line

    def test_help_says_it_prints_a_secret(self):
        result = invoke("password", "--help")
        assert result.exit_code == 0
        assert "only" in result.output and "secret" in result.output


class TestExactlyOneAction:
    @pytest.mark.parametrize("args", [[], ["--show", "--rotate"], ["--json"], ["--rotate", "--show", "--json"]])
    def test_refused_in_one_line(self, args, engine, stored):
        line = one_error_line(invoke("password", *args), 2)
        assert "--show" in line and "--rotate" in line
        both = "--show" in args and "--rotate" in args
        assert ("do not go together" in line) is both and ("say what to do" in line) is not both
        assert engine.calls == []


class TestRotate:
    def test_devpi_and_the_store_get_the_new_password(self, engine, devpi, stored):
        result = invoke("password", "--rotate")
        assert result.exit_code == 0, result.output
        new = read_root_password(Instance("default"))
        assert new and new != stored and len(new) >= 24
        assert devpi.password == new  # devpi took it
        assert devpi.calls() == [("POST", "/+login"), ("PATCH", "/root")]
        assert json.loads(devpi.requests[0].content) == {"user": "root", "password": stored}
        assert json.loads(devpi.requests[1].content) == {"password": new}
        # Says where it is kept, never what it is.
        assert str(Instance("default").password_file) in result.stdout
        assert stored not in result.output and new not in result.output
        path = Instance("default").password_file
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert sorted(state_files()) == ["root-password"]  # no temporary file left
        assert engine.mutations() == []

    def test_json_has_no_password(self, engine, devpi, stored):
        result = invoke("password", "--rotate", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data == {"name": "default", "rotated": True, "password_file": str(Instance("default").password_file)}
        assert read_root_password(Instance("default")) not in result.output

    def test_each_rotation_makes_a_different_password(self, engine, devpi):
        seen = set()
        for _ in range(3):
            assert invoke("password", "--rotate").exit_code == 0
            seen.add(read_root_password(Instance("default")))
        assert len(seen) == 3

    @pytest.mark.parametrize(
        "status, body",
        [
            (403, {"type": "error", "message": "no permission to change password for user root"}),
            (400, {"type": "error", "message": "invalid password"}),
            (500, {"type": "error", "message": "internal error"}),
        ],
    )
    def test_refusal_leaves_the_stored_file_unchanged(self, engine, devpi, stored, status, body):
        import httpx

        before = state_files()
        devpi.refuse_patch = httpx.Response(status, json=body)
        line = one_error_line(invoke("password", "--rotate"), 6)
        assert f"HTTP {status}" in line
        assert "the root password was not changed" in line
        assert state_files() == before  # same bytes, no temporary file
        assert devpi.password == stored
        assert stored not in line

    def test_wrong_stored_password_is_a_clear_login_error(self, engine, devpi, stored):
        devpi.password = "not-what-devpictl-stored"
        before = state_files()
        line = one_error_line(invoke("password", "--rotate"), 6)
        assert "devpi refused the login as root" in line
        assert state_files() == before
        assert ("PATCH", "/root") not in devpi.calls()

    def test_lost_answer_after_devpi_took_it_still_stores_it(self, engine, devpi):
        devpi.drop_patch = True
        result = invoke("password", "--rotate")
        assert result.exit_code == 0, result.output
        assert read_root_password(Instance("default")) == devpi.password
        assert devpi.calls()[-1] == ("POST", "/+login")  # asked devpi which password works

    def test_lost_request_devpi_never_applied_keeps_the_old_password(self, engine, devpi, stored):
        devpi.lose_patch = True
        line = one_error_line(invoke("password", "--rotate"), 6)
        assert "the root password was not changed" in line
        assert devpi.password == stored and read_root_password(Instance("default")) == stored
        assert sorted(state_files()) == ["root-password"]  # the pending password went: devpi refused it
        assert devpi.calls()[-1] == ("POST", "/+login")  # devpi was asked, and refused the new one

    def test_devpi_gone_mid_change_keeps_both_passwords(self, engine, devpi, stored):
        devpi.drop_patch = True
        devpi.down_after_patch = True
        line = one_error_line(invoke("password", "--rotate"), 6)
        assert "root-password.pending" in line
        assert read_root_password(Instance("default")) == stored
        pending = Instance("default").state_dir / "root-password.pending"
        assert pending.read_text().strip() == devpi.password
        assert stat.S_IMODE(pending.stat().st_mode) == 0o600

    def test_cache_not_running(self, monkeypatch, stored):
        engine = FakeEngine()
        engine.add("default", status="exited")
        monkeypatch.setattr(ctr, "connect", lambda: engine)
        before = state_files()
        line = one_error_line(invoke("password", "--rotate"), 8)
        assert "devpictl up" in line
        assert state_files() == before

    def test_no_stored_password_asks_nothing(self, engine):
        line = one_error_line(invoke("password", "--rotate"), 8)
        assert "no root password" in line
        assert engine.calls == []


class TestSetPassword:
    def test_keeps_the_session_logged_in(self):
        server = FakeDevpi(password="old")
        with DevpiClient("http://127.0.0.1:3141", transport=server.transport()) as client:
            client.login("root", "old")
            first = client.http.headers["X-Devpi-Auth"]
            client.set_password("root", "new")
            assert client.http.headers["X-Devpi-Auth"] != first
        assert server.password == "new"

    def test_without_login_it_is_refused(self):
        from devpictl.errors import LoginRefused

        server = FakeDevpi(password="old")
        with DevpiClient("http://127.0.0.1:3141", transport=server.transport()) as client:
            with pytest.raises(LoginRefused, match="HTTP 403"):
                client.set_password("root", "new")
        assert server.password == "old"


class Interrupt(FakeDevpi):
    """devpi's side of a rotation that SIGINT/SIGTERM/SIGKILL cuts: what was on disk when the PATCH arrived."""

    def __init__(self, password: str, *, taken: bool, signal=KeyboardInterrupt):
        super().__init__(password=password)
        self.taken = taken  # whether devpi applied the PATCH before the signal
        self.signal = signal
        self.on_disk_at_patch: dict[str, str | None] = {}

    def handle(self, request):
        if (request.method, request.url.path) == ("PATCH", "/root") and self.signal is not None:
            instance = Instance("default")
            self.on_disk_at_patch = {
                "stored": read_root_password(instance),
                "pending": instance.pending_password_file.read_text().strip() if instance.pending_password_file.exists() else None,
            }
            if self.taken:
                self.password = json.loads(request.content)["password"]
            raise self.signal()
        return super().handle(request)


@pytest.fixture
def interrupting(monkeypatch, stored):
    def make(**kwargs) -> Interrupt:
        server = Interrupt(stored, **kwargs)
        monkeypatch.setattr(cache_module, "DevpiClient", lambda base_url, **kw: DevpiClient(base_url, transport=server.transport()))
        return server

    return make


class TestRotateInterrupted:
    """SIGINT, SIGTERM or SIGKILL at the PATCH: the store never loses a password devpi accepted."""

    def test_the_new_password_is_on_disk_before_devpi_hears_of_it(self, engine, interrupting, stored):
        # What a SIGKILL at the PATCH leaves: the files as they were when devpi got the request.
        devpi = interrupting(taken=True)
        invoke("password", "--rotate")
        assert devpi.on_disk_at_patch == {"stored": stored, "pending": devpi.password}
        assert stat.S_IMODE(Instance("default").pending_password_file.stat().st_mode) == 0o600

    @pytest.mark.parametrize("taken", [True, False], ids=["devpi-took-it", "devpi-never-got-it"])
    def test_interrupt_keeps_both_and_names_the_files(self, engine, interrupting, stored, taken):
        devpi = interrupting(taken=taken)
        line = one_error_line(invoke("password", "--rotate"), 130)
        instance = Instance("default")
        assert str(instance.pending_password_file) in line and str(instance.password_file) in line
        assert read_root_password(instance) == stored
        assert devpi.password in (stored, instance.pending_password_file.read_text().strip())
        assert stored not in line and devpi.password not in line

    @pytest.mark.parametrize("taken", [True, False], ids=["devpi-took-it", "devpi-never-got-it"])
    def test_the_next_rotation_asks_devpi_and_keeps_the_one_it_holds(self, engine, interrupting, stored, taken):
        devpi = interrupting(taken=taken)
        assert invoke("password", "--rotate").exit_code == 130
        devpi.signal = None  # the next run is not interrupted
        result = invoke("password", "--rotate")
        assert result.exit_code == 0, result.output
        instance = Instance("default")
        assert read_root_password(instance) == devpi.password
        assert sorted(state_files()) == ["root-password"]
        settled = "moved" if taken else "dropped"
        assert settled in result.stdout and str(instance.pending_password_file) in result.stdout

    def test_sigterm_takes_the_same_path(self, engine, interrupting, stored):
        from devpictl.errors import Terminated

        devpi = interrupting(taken=True, signal=Terminated)
        one_error_line(invoke("password", "--rotate"), 130)
        assert Instance("default").pending_password_file.read_text().strip() == devpi.password


class TestSettlePending:
    """Any command that logs in as root (up, set-upstream, rotate) first settles a pending password."""

    def test_taken_pending_password_becomes_the_stored_one(self, stored):
        from devpictl.password import login_root
        from devpictl.settings import stage_root_password

        instance = Instance("default")
        stage_root_password(instance, "the-new-one")
        server = FakeDevpi(password="the-new-one")
        with DevpiClient("http://127.0.0.1:3141", transport=server.transport()) as client:
            note = login_root(client, instance)
        assert read_root_password(instance) == "the-new-one"
        assert not instance.pending_password_file.exists()
        assert str(instance.password_file) in note

    def test_refused_pending_password_is_dropped(self, stored):
        from devpictl.password import login_root
        from devpictl.settings import stage_root_password

        instance = Instance("default")
        stage_root_password(instance, "never-taken")
        server = FakeDevpi(password=stored)
        with DevpiClient("http://127.0.0.1:3141", transport=server.transport()) as client:
            note = login_root(client, instance)
        assert read_root_password(instance) == stored
        assert not instance.pending_password_file.exists()
        assert "dropped" in note
        assert server.calls() == [("POST", "/+login"), ("POST", "/+login")]


SIGTERM_SELF = """
import os, signal, sys, time
from devpictl import cli
from devpictl.errors import Terminated

@cli.app.command("term-self")
def term_self():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    except Terminated:
        print("cleaned up")
        raise

sys.argv = ["devpictl", "term-self"]
cli.main()
"""


def test_main_turns_sigterm_into_the_interrupt_clean_up_path():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SIGTERM_SELF], capture_output=True, text=True, timeout=120)
    assert done.returncode == 143, done.stderr  # without the handler: -15, nothing cleaned up
    assert done.stdout == "cleaned up\n"


class TestOneCommandAtATime:
    """A second state-changing command on the same cache fails clearly instead of racing the first."""

    @pytest.mark.parametrize("args", [["up"], ["down"], ["password", "--rotate"], ["set-upstream", "tuna"]])
    def test_a_held_lock_refuses_the_second_command(self, engine, stored, args):
        from devpictl.settings import cache_lock

        before = state_files()
        with cache_lock(Instance("default")):
            line = one_error_line(invoke(*args), 4)
        assert "another devpictl command" in line and "cache 'default'" in line
        assert engine.calls == [] and state_files() == before

    def test_the_lock_dir_is_private_and_a_shared_one_is_refused(self, stored, tmp_path, monkeypatch):
        import stat

        from devpictl.errors import BadInput
        from devpictl.settings import cache_lock, lock_file

        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
        (tmp_path / "run").mkdir()
        directory = lock_file(Instance("default")).parent
        assert directory.parent == tmp_path / "run" and stat.S_IMODE(directory.stat().st_mode) == 0o700
        directory.chmod(0o777)  # another user could plant or hold locks here
        with pytest.raises(BadInput, match="is not a private directory of yours"), cache_lock(Instance("default")):
            pass

    def test_the_same_name_in_another_data_dir_is_another_cache(self, stored, tmp_path, monkeypatch):
        from devpictl.settings import lock_file

        first = lock_file(Instance("default"))
        monkeypatch.setenv("DEVPICTL_DATA_DIR", str(tmp_path / "elsewhere"))
        assert lock_file(Instance("default")) != first

    def test_other_caches_are_not_held_up(self, stored):
        from devpictl.settings import cache_lock

        with cache_lock(Instance("default")), cache_lock(Instance("other")):
            pass

    def test_released_at_the_end_even_after_an_error(self, stored):
        from devpictl.settings import cache_lock, lock_file

        with pytest.raises(RuntimeError), cache_lock(Instance("default")):
            raise RuntimeError("boom")
        assert not lock_file(Instance("default")).exists()
        with cache_lock(Instance("default")):
            pass

    def test_a_killed_holder_does_not_block_the_next_command(self, stored):
        import subprocess
        import sys

        # The child takes the lock and dies by SIGKILL, leaving its file behind.
        code = "import os, signal; from devpictl.settings import Instance, cache_lock\nwith cache_lock(Instance('default')):\n    os.kill(os.getpid(), signal.SIGKILL)"
        done = subprocess.run([sys.executable, "-c", code], timeout=60)
        assert done.returncode == -9
        from devpictl.settings import cache_lock

        with cache_lock(Instance("default")):
            pass


def send_sigint() -> None:
    """A Ctrl-C at this point: SIGINT to this process, which Python turns into KeyboardInterrupt here or as soon as it may."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


class TestRotateNeverReportsSuccessWhenInterrupted:
    """An interrupted `password --rotate` exits 130 with one line saying what it left; a finished one exits 0."""

    def test_ctrl_c_at_login_changes_nothing_and_says_so(self, engine, devpi, stored, monkeypatch):
        def login_then_ctrl_c(client, instance):
            send_sigint()
            return None

        monkeypatch.setattr(pw, "login_root", login_then_ctrl_c)
        line = one_error_line(invoke("password", "--rotate"), 130)
        assert "before devpi was asked to change the root password" in line
        assert read_root_password(Instance("default")) == stored == devpi.password

    def test_ctrl_c_as_the_store_takes_the_new_password_says_the_rotation_is_complete(self, engine, devpi, stored, monkeypatch):
        commit = pw.commit_root_password

        def commit_then_ctrl_c(instance):
            commit(instance)
            send_sigint()

        monkeypatch.setattr(pw, "commit_root_password", commit_then_ctrl_c)
        result = invoke("password", "--rotate")
        line = one_error_line(result, 130)
        assert "it is complete" in line and "Rotated" not in result.output
        assert read_root_password(Instance("default")) == devpi.password != stored
        assert sorted(state_files()) == ["root-password"]

    def test_ctrl_c_while_success_is_printed_does_not_turn_it_into_130(self, engine, devpi, stored, monkeypatch):
        from devpictl.cli import ui

        say = ui.out.print

        def print_then_ctrl_c(*args, **kwargs):
            say(*args, **kwargs)
            if "Rotated" in str(args[0]):
                send_sigint()

        monkeypatch.setattr(ui.out, "print", print_then_ctrl_c)
        result = invoke("password", "--rotate")
        assert result.exit_code == 0, result.output
        assert "Rotated the root password" in result.stdout and result.stderr == ""
        assert read_root_password(Instance("default")) == devpi.password
