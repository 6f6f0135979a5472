"""Upstream credentials: never printed, never in devpi's readable mirror_url, and still used to fetch and check."""

from __future__ import annotations

import base64
import json
import stat
import subprocess

import pytest
from typer.testing import CliRunner

from devpictl import container as ctr
from devpictl import image as img
from devpictl import layout, password, probe, simplepage, switching
from devpictl.cli import app
from devpictl.mirrors import OFFICIAL, parse_index_url, resolve
from devpictl.settings import Instance, ensure_root_password
from tests.unit.fakes import OFFICIAL_URL, ROOT_PASSWORD, FakeDevpi, FakeEngine, configured, devpi_plugin
from tests.unit.upstream_check import local_server, run_check

SECRET = "s3cret-Pa55"
URL = f"https://deploy:{SECRET}@mirror.example/private/simple"
BASIC = "Basic " + base64.b64encode(f"deploy:{SECRET}".encode()).decode()
runner = CliRunner()


class TestUpstream:
    def test_credentials_are_split_from_the_url(self):
        upstream = resolve(URL)
        assert upstream.public_url == "https://mirror.example/private/simple"
        assert upstream.credentials == ("deploy", SECRET)
        assert upstream.display_url == "https://***@mirror.example/private/simple"

    def test_percent_encoded_credentials(self):
        assert resolve("https://a%40b:p%3Aw@mirror.example/simple").credentials == ("a@b", "p:w")

    def test_no_credentials(self):
        upstream = resolve("https://mirror.example/simple")
        assert upstream.credentials is None and upstream.display_url == upstream.public_url == upstream.url

    def test_devpi_gets_the_url_without_them(self):
        changes = switching.upstream_changes(resolve(URL), configured(OFFICIAL), OFFICIAL_URL)
        assert "mirror_url=https://mirror.example/private/simple" in changes
        assert not any(SECRET in c or "deploy" in c for c in changes)

    def test_a_malformed_url_is_refused_without_printing_them(self):
        with pytest.raises(Exception) as info:
            parse_index_url(f"https://deploy:{SECRET}@mirror.example:99999/simple")
        assert SECRET not in str(info.value)

    def test_an_uppercase_scheme_is_made_lowercase_for_devpi(self):
        assert parse_index_url("HTTP://mirror.example/simple") == "http://mirror.example/simple"


@pytest.fixture
def switch(monkeypatch):
    """set-upstream through the CLI on a running cache; records what is handed into the container."""
    ensure_root_password(Instance("default"))
    engine = FakeEngine()
    engine.add("default")
    server = FakeDevpi(configured(OFFICIAL))
    handed: list[dict[str, bytes]] = []
    checked: list[str] = []
    monkeypatch.setattr(ctr, "connect", lambda: engine)
    server.serve(monkeypatch)
    monkeypatch.setattr(probe, "check_upstream", lambda container, url, project, *a: checked.append(url))
    monkeypatch.setattr(password, "login_root", lambda client, instance: client.login("root", ROOT_PASSWORD))
    monkeypatch.setattr(ctr, "hand_in_files", lambda container, files: handed.append(dict(files)))
    return server, handed, checked


class TestSwitchWithCredentials:
    @pytest.mark.parametrize("json_output", [False, True])
    def test_nowhere_printed_nor_in_devpis_config(self, switch, json_output):
        server, handed, checked = switch
        result = runner.invoke(app, ["set-upstream", URL, *(["--json"] if json_output else [])])
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output and "deploy" not in result.output
        assert server.ixconfig["mirror_url"] == "https://mirror.example/private/simple"
        assert checked == ["https://mirror.example/private/simple"]

    def test_handed_to_the_container_and_kept_0600_for_the_next_one(self, switch):
        server, handed, _ = switch
        assert runner.invoke(app, ["set-upstream", URL]).exit_code == 0
        expected = {"https://mirror.example/private/simple": BASIC}
        assert [json.loads(files[layout.UPSTREAM_AUTH]) for files in handed] == [expected]
        stored = Instance("default").upstream_auth_file
        assert json.loads(stored.read_text()) == expected
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600

    def test_a_user_mirror_with_credentials_is_found_by_its_public_url(self, switch):
        assert runner.invoke(app, ["mirrors", "add", "corp", URL]).exit_code == 0
        from devpictl.mirrors import find_by_url

        found = find_by_url("https://mirror.example/private/simple/", OFFICIAL_URL)
        assert found.name == "corp" and found.credentials == ("deploy", SECRET)

    def test_mirrors_add_and_list_show_no_secret(self):
        added = runner.invoke(app, ["mirrors", "add", "corp", URL])
        assert added.exit_code == 0, added.output
        listed = runner.invoke(app, ["mirrors", "--json"])
        shown = runner.invoke(app, ["mirrors"])
        removed = runner.invoke(app, ["mirrors", "remove", "corp"])
        for result in (added, listed, shown, removed):
            assert SECRET not in result.output, result.output
        assert "***@mirror.example" in added.output


class TestDevpiPlugin:
    """The plugin the image installs answers devpi's 401 with the stored header for that URL only."""

    @pytest.fixture
    def plugin(self, tmp_path, monkeypatch):
        module = devpi_plugin()
        monkeypatch.setattr(module, "AUTH_FILE", str(tmp_path / "upstream-auth.json"))
        return module, tmp_path / "upstream-auth.json"

    def test_answers_for_its_url(self, plugin):
        module, path = plugin
        path.write_text(json.dumps({"https://mirror.example/private/simple": BASIC}))
        # devpi passes its URL object, as a directory
        assert (
            module.devpiserver_get_mirror_auth(mirror_url="https://mirror.example/private/simple/", www_authenticate_header="Basic")
            == BASIC
        )
        assert module.devpiserver_get_mirror_auth(mirror_url="https://other.example/simple/", www_authenticate_header="Basic") is None

    def test_no_file_no_answer(self, plugin):
        module, _ = plugin
        assert module.devpiserver_get_mirror_auth(mirror_url="https://mirror.example/private/simple/", www_authenticate_header="") is None

    def test_the_image_installs_it_with_devpis_entry_point(self):
        dockerfile = img.render_dockerfile(img.BuildOptions())
        assert "[devpi_server]\\ndevpictl_mirror_auth = devpictl_mirror_auth" in dockerfile


def files_listed(done: subprocess.CompletedProcess) -> int:
    """How many distribution files the page the check fetched links, as the probe counts them."""
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return len(simplepage.parse(answer["text"], answer["url"]))


class TestUpstreamCheckUsesThem:
    """The check inside the container sends the stored header: an upstream that wants a login is reachable."""

    @pytest.fixture
    def private_upstream(self):
        def answer(path, headers):
            if headers.get("Authorization") != BASIC:
                return 401, b"", {"WWW-Authenticate": 'Basic realm="private"'}
            return 200, b'<a href="/f/six-1.16.0-py2.py3-none-any.whl">six-1.16.0-py2.py3-none-any.whl</a>', {}

        with local_server(answer) as base:
            yield f"{base}/simple"

    def run_check(self, tmp_path, url: str, entries: dict | None) -> subprocess.CompletedProcess:
        return run_check(f"{url}/six/", auth=entries, run_dir=tmp_path / "run")

    def test_with_the_stored_header_the_page_lists_files(self, private_upstream, tmp_path):
        done = self.run_check(tmp_path, private_upstream, {private_upstream: BASIC})
        assert (done.returncode, files_listed(done)) == (0, 1), done.stdout + done.stderr

    def test_a_page_of_other_links_lists_no_files(self, tmp_path):
        """A captive portal or login page answers 200 with links, but none to a distribution file."""
        portal = b'<html><a href="/login">Sign in</a> <a href="https://portal.example/terms">Terms</a></html>'
        with local_server(lambda path, headers: (200, portal, {})) as base:
            done = self.run_check(tmp_path, f"{base}/simple", None)
        assert (done.returncode, files_listed(done)) == (0, 0), done.stdout + done.stderr

    def test_without_it_the_upstream_refuses(self, private_upstream, tmp_path):
        done = self.run_check(tmp_path, private_upstream, None)
        assert done.returncode == 1 and "Unauthorized" in done.stdout
