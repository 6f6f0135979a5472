"""Team indexes and their users against an in-memory devpi (httpx MockTransport): what is asked of devpi, what is
kept, and every bad input refused in one line with nothing changed. Also the .pypirc upload-config writes, and undo."""

from __future__ import annotations

import configparser
import contextlib
import json
import stat

import httpx
import pytest

from devpictl import teams, teamusers
from devpictl.clientconfig import manifest as mf
from devpictl.clientconfig import pypirc
from devpictl.devpi import DevpiClient
from devpictl.errors import BadInput, Conflict, DevpiError
from devpictl.settings import Instance, forget_cache
from tests.unit.clihelp import assert_one_line_error, invoke

BASE = "http://cache.example:3141"
JSON = {"type": "list:userconfig"}


class MemoryDevpi:
    """The parts of devpi's API teams.py uses, over a dict of users and their indexes; ``changes`` records every write."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {
            "root": {"username": "root", "indexes": {"pypi": {"type": "mirror", "bases": [], "volatile": False, "mirror_url": "x"}}}
        }
        self.passwords: dict[str, str] = {}
        self.projects: dict[str, list[str]] = {}
        self.changes: list[str] = []
        self.refuse: set[tuple[str, str]] = set()  # (METHOD, path) devpi answers 400

    def __call__(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path.strip("/")
        body = json.loads(request.content) if request.content else None
        if method != "GET":
            self.changes.append(f"{method} /{path}")
        if (method, "/" + path) in self.refuse:
            return httpx.Response(400, json={"message": "refused\nfor the test"})
        parts = path.split("/") if path else []
        if method == "GET" and not parts:
            return httpx.Response(200, json={**JSON, "result": self.users})
        if len(parts) == 1:
            return self.user(method, parts[0], body)
        user, name = parts
        indexes = self.users.get(user, {}).get("indexes")
        if indexes is None:
            return httpx.Response(404, json={"message": f"no user {user}"})
        if method == "PUT":
            if name in indexes:
                return httpx.Response(409, json={"message": "exists"})
            indexes[name] = {k: v for k, v in body.items()}
            return httpx.Response(200, json={"result": indexes[name]})
        if name not in indexes:
            return httpx.Response(404, json={"message": "no index"})
        config = indexes[name]
        if method == "GET":
            return httpx.Response(200, json={"result": {**config, "projects": self.projects.get(path, [])}})
        if method == "PATCH":
            for change in body:
                key, op, value = (change.split("+=") + [""])[0], "+=", change.partition("+=")[2]
                if "-=" in change:
                    key, _, value = change.partition("-=")
                    config[key] = [v for v in config.get(key, []) if v != value]
                elif "+=" in change:
                    config.setdefault(key, []).append(value)
                else:
                    key, _, value = change.partition("=")
                    config[key] = value == "True" if key == "volatile" else value
                del op
            return httpx.Response(200, json={"result": config})
        if method == "DELETE":
            if not config.get("volatile", True):
                return httpx.Response(403, json={"message": "non-volatile"})
            del indexes[name]
            return httpx.Response(201, json={})
        return httpx.Response(405)

    def user(self, method: str, user: str, body) -> httpx.Response:
        if method == "PUT":
            if user in self.users:
                return httpx.Response(409, json={"message": "user already exists"})
            self.users[user] = {"username": user, "indexes": {}}
            self.passwords[user] = body["password"]
            return httpx.Response(201, json={"result": self.users[user]})
        if method == "PATCH":
            self.passwords[user] = body["password"]
            return httpx.Response(200, json={"result": {"password": "token"}})
        if method == "DELETE":
            del self.users[user]
            return httpx.Response(200, json={})
        return httpx.Response(405)

    def session(self) -> teams.Session:
        return teams.Session(DevpiClient(BASE, transport=httpx.MockTransport(self)), BASE, "default")


@pytest.fixture
def devpi(monkeypatch) -> MemoryDevpi:
    server = MemoryDevpi()

    @contextlib.contextmanager
    def session(instance, command=None):
        yield server.session()

    monkeypatch.setattr(teams, "session", session)
    return server


INSTANCE = Instance("default")


def team_dev(devpi: MemoryDevpi) -> None:
    teams.create_index(devpi.session(), INSTANCE, "team/dev")
    devpi.changes.clear()


class TestCreateIndex:
    def test_makes_the_user_with_a_kept_password_and_an_index_on_the_mirror(self, devpi):
        made = teams.create_index(devpi.session(), INSTANCE, "team/dev")
        assert devpi.changes == ["PUT /team", "PUT /team/dev"]
        config = devpi.users["team"]["indexes"]["dev"]
        # Nobody but the named users uploads, test results included (devpi's default lets anyone).
        assert config == {
            "type": "stage",
            "bases": ["root/pypi"],
            "volatile": False,
            "acl_upload": ["team"],
            "acl_toxresult_upload": ["team"],
        }
        kept = teams.user_password_file(INSTANCE, "team")
        assert made.password_file == kept and stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert kept.read_text().strip() == devpi.passwords["team"] and len(devpi.passwords["team"]) >= 32
        assert made.as_dict()["index_url"] == f"{BASE}/team/dev/+simple/"
        assert made.as_dict()["upload_url"] == f"{BASE}/team/dev/"
        assert devpi.passwords["team"] not in json.dumps(made.as_dict())

    def test_an_existing_user_is_used_and_upload_by_names_the_uploaders(self, devpi):
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        devpi.changes.clear()
        teams.create_index(devpi.session(), INSTANCE, "root/dev", upload_by=["ci", "root"], volatile=True)
        assert devpi.changes == ["PUT /root/dev"]
        assert devpi.users["root"]["indexes"]["dev"]["acl_upload"] == ["ci", "root"]

    @pytest.mark.parametrize(
        ("name", "kwargs", "error", "fragment"),
        [
            ("team", {}, BadInput, "has no user part: write USER/INDEX"),
            ("team/", {}, BadInput, "has no user part"),
            ("te am/dev", {}, BadInput, "is not allowed"),
            ("team/dev", {"bases": ["nope/x"]}, BadInput, "unknown base nope/x"),
            ("team/dev", {"bases": ["nope"]}, BadInput, "has no user part"),
            ("team/dev", {"upload_by": ["ghost"]}, BadInput, "no such user"),
            ("team/dev", {"upload_by": [":ANONYMOUS:"]}, BadInput, "anonymous uploads are never allowed"),
            ("root/pypi", {}, Conflict, "exists already"),
        ],
    )
    def test_bad_input_changes_nothing(self, devpi, name, kwargs, error, fragment):
        with pytest.raises(error, match=fragment) as raised:
            teams.create_index(devpi.session(), INSTANCE, name, **kwargs)
        assert "\n" not in str(raised.value)
        assert devpi.changes == []
        assert not (INSTANCE.state_dir / "users").exists() or not list((INSTANCE.state_dir / "users").iterdir())

    def test_an_index_devpi_refuses_takes_the_new_user_back(self, devpi):
        devpi.refuse.add(("PUT", "/team/dev"))
        with pytest.raises(DevpiError, match="refused to create index team/dev"):
            teams.create_index(devpi.session(), INSTANCE, "team/dev")
        assert "team" not in devpi.users
        assert not teams.user_password_file(INSTANCE, "team").exists()


class TestUsers:
    def test_create_allows_uploads_and_keeps_the_password(self, devpi):
        team_dev(devpi)
        made = teamusers.create_user(devpi.session(), INSTANCE, "ci", ["team/dev"])
        assert devpi.changes == ["PUT /ci", "PATCH /team/dev"]
        config = devpi.users["team"]["indexes"]["dev"]
        assert config["acl_upload"] == ["team", "ci"] and config["acl_toxresult_upload"] == ["team", "ci"]
        assert made.info.upload_to == ["team/dev"]
        assert teams.read_user_password(INSTANCE, "ci") == devpi.passwords["ci"]

    @pytest.mark.parametrize(
        ("user", "upload_to", "error", "fragment"),
        [
            ("ci", ["team/nope"], BadInput, "has no index team/nope"),
            ("ci", ["root/pypi"], BadInput, "is the cache's mirror, which takes no uploads"),
            ("team", [], Conflict, "user team exists already"),
            ("-ci", [], BadInput, "is not allowed"),
            (":ANONYMOUS:", [], BadInput, "anonymous"),
        ],
    )
    def test_bad_input_changes_nothing(self, devpi, user, upload_to, error, fragment):
        team_dev(devpi)
        with pytest.raises(error, match=fragment):
            teamusers.create_user(devpi.session(), INSTANCE, user, upload_to)
        assert devpi.changes == []

    def test_remove_takes_the_rights_and_the_password(self, devpi):
        team_dev(devpi)
        teamusers.create_user(devpi.session(), INSTANCE, "ci", ["team/dev"])
        devpi.changes.clear()
        teamusers.remove_user(devpi.session(), INSTANCE, "ci")
        assert devpi.changes == ["PATCH /team/dev", "DELETE /ci"]
        assert devpi.users["team"]["indexes"]["dev"]["acl_upload"] == ["team"]
        assert not teams.user_password_file(INSTANCE, "ci").exists()

    @pytest.mark.parametrize(("user", "fragment"), [("root", "cannot be removed"), ("team", "owns team/dev"), ("ghost", "no user ghost")])
    def test_remove_refusals_change_nothing(self, devpi, user, fragment):
        team_dev(devpi)
        with pytest.raises((BadInput, Conflict), match=fragment):
            teamusers.remove_user(devpi.session(), INSTANCE, user)
        assert devpi.changes == []

    def test_rotate_changes_devpi_then_the_store(self, devpi):
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        old = teams.read_user_password(INSTANCE, "ci")
        teamusers.rotate_user_password(devpi.session(), INSTANCE, "ci")
        assert teams.read_user_password(INSTANCE, "ci") == devpi.passwords["ci"] != old

    def test_a_refused_rotation_keeps_the_old_password(self, devpi):
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        old = teams.read_user_password(INSTANCE, "ci")
        devpi.refuse.add(("PATCH", "/ci"))
        with pytest.raises(DevpiError):
            teamusers.rotate_user_password(devpi.session(), INSTANCE, "ci")
        assert teams.read_user_password(INSTANCE, "ci") == old
        assert [p.name for p in (INSTANCE.state_dir / "users").iterdir()] == ["ci.password"]

    def test_a_restored_cache_keeps_the_passwords_of_the_original_and_down_volumes_forgets_them(self, devpi):
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        copy = Instance("copy")
        assert teamusers.adopt_user_passwords("default", copy)
        assert teams.read_user_password(copy, "ci") == teams.read_user_password(INSTANCE, "ci")
        assert stat.S_IMODE(teams.user_password_file(copy, "ci").stat().st_mode) == 0o600
        assert "ci.password" in forget_cache(copy)
        assert not (copy.state_dir / "users").exists()


class TestRemoveIndex:
    def test_a_non_volatile_index_is_made_volatile_then_deleted(self, devpi):
        team_dev(devpi)
        teams.remove_index(devpi.session(), "team/dev")
        assert devpi.changes == ["PATCH /team/dev", "DELETE /team/dev"]
        assert devpi.users["team"]["indexes"] == {}

    @pytest.mark.parametrize(
        ("name", "fragment"), [("root/pypi", "is the cache itself"), ("team/nope", "has no index"), ("team/dev", "has team/dev as a base")]
    )
    def test_refusals_change_nothing(self, devpi, name, fragment):
        team_dev(devpi)
        teams.create_index(devpi.session(), INSTANCE, "team/staging", bases=["team/dev"])
        devpi.changes.clear()
        with pytest.raises((BadInput, Conflict), match=fragment):
            teams.remove_index(devpi.session(), name)
        assert devpi.changes == []


class TestCli:
    """The commands: one error line with its exit code, and --json shapes."""

    def test_bad_inputs(self, devpi):
        team_dev(devpi)
        cases = [
            (("index", "create", "dev"), 2, "has no user part"),
            (("index", "create", "team/x", "--bases", "root/nope"), 2, "unknown base root/nope"),
            (("index", "create", "team/dev"), 4, "index team/dev exists already"),
            (("index", "rm", "team/dev"), 2, "add --yes to confirm"),
            (("user", "create", "ci", "--upload-to", "nope/dev"), 2, "has no index nope/dev"),
            (("user", "password", "ghost"), 2, "keeps no password for user ghost"),
            (("user", "allow", "ci"), 2, "--upload-to INDEX"),
            (("upload-config", "--index", "team/dev", "--user", "team", "--shell", "sh", "--write"), 2, "--shell prints variables"),
            (("pip-config", "--index", "team/dev", "--url", "http://x.example/simple/"), 2, "leave out --index"),
            (("pip-config", "--index", "team/nope"), 2, "has no index team/nope"),
        ]
        for args, code, fragment in cases:
            assert_one_line_error(invoke(*args, "--name", "default"), code, fragment)
        assert devpi.changes == []

    def test_a_user_without_rights_gets_no_upload_config(self, devpi):
        team_dev(devpi)
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        result = invoke("upload-config", "--index", "team/dev", "--user", "ci", "--write", "--name", "default")
        assert_one_line_error(result, 2, "user ci may not upload to team/dev", "devpictl user allow ci --upload-to team/dev")
        assert not (pypirc.pypirc_file()).exists()

    def test_json_of_index_ls_and_show_and_user_ls(self, devpi):
        team_dev(devpi)
        listed = json.loads(invoke("index", "ls", "--json", "--name", "default").stdout)
        assert listed["name"] == "default"
        assert [(i["index"], i["type"], i["index_url"]) for i in listed["indexes"]] == [
            ("root/pypi", "mirror", f"{BASE}/root/pypi/+simple/"),
            ("team/dev", "stage", f"{BASE}/team/dev/+simple/"),
        ]
        shown = json.loads(invoke("index", "show", "team/dev", "--json", "--name", "default").stdout)
        assert set(shown) == {"name", "index", "type", "bases", "volatile", "upload_by", "index_url", "upload_url", "projects"}
        users = json.loads(invoke("user", "ls", "--json", "--name", "default").stdout)["users"]
        assert [(u["user"], u["indexes"], u["upload_to"]) for u in users] == [
            ("root", ["root/pypi"], []),
            ("team", ["team/dev"], ["team/dev"]),
        ]

    def test_the_password_is_printed_only_with_show(self, devpi):
        teamusers.create_user(devpi.session(), INSTANCE, "ci")
        secret = teams.read_user_password(INSTANCE, "ci")
        created = invoke("user", "create", "ci2", "--name", "default")
        told = invoke("user", "password", "ci", "--name", "default")
        assert secret not in created.output + told.output and "kept in" in told.stdout
        assert invoke("user", "password", "ci", "--show", "--name", "default").stdout == secret + "\n"

    def test_pip_config_index_points_every_tool_at_the_team_index(self, devpi):
        team_dev(devpi)
        result = invoke("pip-config", "--index", "team/dev", "--tool", "pip,uv,pdm,poetry,pipenv", "--json", "--name", "default")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["index_url"] == f"{BASE}/team/dev/+simple/"
        assert answer["tools"]["pip"]["settings"]["index-url"] == f"{BASE}/team/dev/+simple/"
        assert answer["tools"]["uv"]["env"] == {"UV_DEFAULT_INDEX": f"{BASE}/team/dev/+simple/"}


class TestUploadConfig:
    def pypirc_text(self, existing: str = "") -> str:
        return pypirc.Pypirc("team/dev", "ci", "s3cret").edit(existing, f"{BASE}/team/dev/", added={}, force=False, where="~/.pypirc")[0]

    def test_a_new_file_keeps_twines_default_servers_and_adds_the_index(self):
        parser = configparser.RawConfigParser()
        parser.read_string(self.pypirc_text())
        assert parser.get("distutils", "index-servers").split() == ["pypi", "testpypi", "devpictl-team-dev"]
        assert dict(parser.items("devpictl-team-dev")) == {"repository": f"{BASE}/team/dev/", "username": "ci", "password": "s3cret"}

    def test_an_existing_file_keeps_its_servers_sections_and_comments(self):
        existing = "# mine\n[distutils]\nindex-servers =\n    corp\n\n[corp]\nrepository = https://corp.example/\nusername = me\n"
        text = self.pypirc_text(existing)
        assert text.startswith("# mine\n[distutils]")
        parser = configparser.RawConfigParser()
        parser.read_string(text)
        assert parser.get("distutils", "index-servers").split() == ["corp", "devpictl-team-dev"]
        assert parser.get("corp", "username") == "me"
        assert self.pypirc_text(text) == text  # a second write changes nothing

    def test_write_is_0600_hides_the_password_and_undo_puts_the_file_back(self, devpi):
        team_dev(devpi)
        teamusers.create_user(devpi.session(), INSTANCE, "ci", ["team/dev"])
        secret = teams.read_user_password(INSTANCE, "ci")
        path = pypirc.pypirc_file()
        original = b"[pypi]\nusername = __token__\n"
        path.write_bytes(original)
        path.chmod(0o644)
        args = ("upload-config", "--index", "team/dev", "--user", "ci", "--name", "default")
        dry = invoke(*args, "--dry-run")
        assert dry.exit_code == 0 and "+password = ********" in dry.stdout and secret not in dry.output
        assert path.read_bytes() == original
        written = invoke(*args, "--write")
        assert written.exit_code == 0, written.output
        assert secret not in written.output and "twine upload -r devpictl-team-dev" in written.stdout
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and f"password = {secret}" in path.read_text()
        assert mf.Manifest().get(path)["tool"] == "twine"
        undone = invoke("pip-config", "--undo")
        assert undone.exit_code == 0, undone.output
        assert path.read_bytes() == original and stat.S_IMODE(path.stat().st_mode) == 0o644

    def test_shell_lines_fetch_the_password_as_they_run(self, devpi):
        team_dev(devpi)
        teamusers.create_user(devpi.session(), INSTANCE, "ci", ["team/dev"])
        secret = teams.read_user_password(INSTANCE, "ci")
        result = invoke("upload-config", "--index", "team/dev", "--user", "ci", "--shell", "sh", "--name", "default")
        assert result.exit_code == 0, result.output
        assert secret not in result.output
        assert f"export UV_PUBLISH_URL={BASE}/team/dev/\n" in result.stdout
        assert 'export UV_PUBLISH_PASSWORD="$(devpictl user password ci --show --name default)"\n' in result.stdout
        assert "export TWINE_USERNAME=ci\n" in result.stdout


class TestFront:
    """The front server (templates/nginx.conf.j2) serves a team index's files from disk and never caches its pages."""

    @staticmethod
    def first_regex_location(path: str) -> str | None:
        import re

        from devpictl import image as img

        conf = img.render_nginx_conf()
        for match in re.finditer(r"\n        location ~ (\S+) \{\n(.*?)\n        \}", conf, re.S):
            if re.search(match[1], path):
                return match[2]
        return None

    def test_an_upload_shows_on_the_page_at_once(self):
        from devpictl import image as img

        # No regex location takes a team index's page: `location /` passes it to devpi, which has no cache.
        assert self.first_regex_location("/team/dev/+simple/dpctl-team/") is None
        rest = img.render_nginx_conf().split("\n        location / {\n", 1)[1].split("\n        }", 1)[0]
        assert "proxy_pass http://devpi;" in rest and "proxy_cache" not in rest

    def test_its_stored_files_come_from_disk(self):
        body = self.first_regex_location("/team/dev/+f/0a1/b2c3d4e5f6a7b/dpctl_team-1.0-py3-none-any.whl")
        assert body is not None and "try_files $uri @devpi;" in body and "proxy_cache" not in body

    def test_the_page_at_slash_lists_team_indexes_with_their_install_url(self):
        from devpictl import image as img

        page = img.render_front_page(img.BuildOptions())
        assert 'json("/")' in page and 'index.type === "mirror"' in page
        assert '"/" + user + "/" + name + "/+simple/"' in page
