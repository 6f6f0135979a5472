"""pip's part of pip-config: what it sets, where pip reads it, and editing pip.conf without losing what is in it."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from devpictl.clientconfig import pip
from devpictl.errors import BadInput
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL

NEW = {"index-url": HTTP_URL, "trusted-host": "127.0.0.1"}


def read_ini(text: str) -> configparser.RawConfigParser:
    """Read ``text`` the way pip does (RawConfigParser, strict)."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


class TestPipSettings:
    def test_http_adds_trusted_host(self):
        assert pip.settings(HTTP_URL) == {"index-url": HTTP_URL, "trusted-host": "127.0.0.1"}

    def test_http_host_without_port(self):
        assert pip.settings("http://cache.lan/root/pypi/+simple/")["trusted-host"] == "cache.lan"

    def test_https_has_no_trusted_host(self):
        assert pip.settings(HTTPS_URL) == {"index-url": HTTPS_URL}

    def test_render(self):
        assert pip.render_conf(pip.settings(HTTP_URL)) == (f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n")


class TestSetIniKeys:
    def test_empty_text_gets_a_global_section(self):
        assert pip.set_ini_keys("", "global", NEW) == f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"

    def test_keeps_comments_other_sections_and_other_keys_in_order(self):
        old = (
            "# my pip config\n"
            "; written by hand\n"
            "[global]\n"
            "timeout = 60\n"
            "index-url = https://old.example/simple\n"
            "extra-index-url = https://extra.example/simple\n"
            "\n"
            "[install]\n"
            "index-url = https://install-only.example/simple\n"
            "no-compile = true\n"
        )
        new = pip.set_ini_keys(old, "global", NEW)
        assert new == (
            "# my pip config\n"
            "; written by hand\n"
            "[global]\n"
            "timeout = 60\n"
            f"index-url = {HTTP_URL}\n"
            "extra-index-url = https://extra.example/simple\n"
            "trusted-host = 127.0.0.1\n"
            "\n"
            "[install]\n"
            "index-url = https://install-only.example/simple\n"
            "no-compile = true\n"
        )
        parsed = read_ini(new)
        assert parsed["global"]["index-url"] == HTTP_URL
        assert parsed["install"]["index-url"] == "https://install-only.example/simple"

    def test_replaces_underscore_spelling_and_its_continuation_lines(self):
        old = (
            "[global]\n"
            "index_url = https://old.example/simple\n"
            "    https://continued.example/simple\n"
            "\thttps://tabbed.example/simple\n"
            "timeout = 60\n"
        )
        new = pip.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\nindex-url = {HTTP_URL}\ntimeout = 60\n"

    def test_replaces_multiline_trusted_host_and_keeps_others_continuations(self):
        old = "[global]\ntrusted-host = a.example\n    b.example\nfind-links =\n    /srv/wheels\n    /opt/wheels\n"
        new = pip.set_ini_keys(old, "global", NEW)
        assert new == (f"[global]\ntrusted-host = 127.0.0.1\nfind-links =\n    /srv/wheels\n    /opt/wheels\nindex-url = {HTTP_URL}\n")
        assert read_ini(new)["global"]["find-links"] == "\n/srv/wheels\n/opt/wheels"

    def test_both_spellings_collapse_into_one_key(self):
        old = "[global]\nindex-url = https://a/simple\nindex_url = https://b/simple\n"
        new = pip.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\nindex-url = {HTTP_URL}\n"
        read_ini(new)  # no DuplicateOptionError

    def test_key_case_and_colon_delimiter(self):
        old = "[global]\nINDEX-URL: https://a/simple\n"
        assert pip.set_ini_keys(old, "global", {"index-url": HTTP_URL}) == f"[global]\nindex-url = {HTTP_URL}\n"

    def test_adds_global_when_missing(self):
        old = "[install]\nno-compile = true"  # no final newline
        assert pip.set_ini_keys(old, "global", NEW) == (
            f"[install]\nno-compile = true\n\n[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        )

    def test_new_keys_go_after_the_last_line_of_the_section(self):
        old = "[global]\ntimeout = 60\n\n\n[install]\nno-compile = true\n"
        new = pip.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\ntimeout = 60\nindex-url = {HTTP_URL}\n\n\n[install]\nno-compile = true\n"

    def test_is_idempotent(self):
        old = "# c\n[global]\ntimeout = 60\n"
        once = pip.set_ini_keys(old, "global", NEW)
        assert pip.set_ini_keys(once, "global", NEW) == once

    def test_indented_key_is_replaced(self):
        old = "[global]\n  index-url = https://old/simple\n"
        new = pip.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert read_ini(new)["global"]["index-url"] == HTTP_URL

    def test_none_removes_a_key_and_its_continuation_lines(self):
        old = "[global]\ntrusted-host = a\n    b\ntimeout = 60\n"
        assert pip.set_ini_keys(old, "global", {"trusted-host": None}) == "[global]\ntimeout = 60\n"
        assert pip.set_ini_keys("[global]\n", "global", {"trusted-host": None}) == "[global]\n"


class TestPipUserConfigFile:
    def test_honours_xdg_config_home(self, tmp_path):
        env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
        assert pip.user_config_file(env) == tmp_path / "xdg" / "pip" / "pip.conf"

    def test_falls_back_to_home_config(self, tmp_path):
        assert pip.user_config_file({"HOME": str(tmp_path)}) == tmp_path / ".config" / "pip" / "pip.conf"

    def test_reads_the_process_environment(self, isolation):
        assert pip.user_config_file() == isolation / ".config" / "pip" / "pip.conf"


class TestEditPipConf:
    def test_adds_the_cache_host_to_the_users_trusted_hosts(self):
        old = "[global]\ntrusted-host = a.example b.example\n"
        new, added = pip.edit_conf(old, HTTP_URL)
        assert read_ini(new)["global"]["trusted-host"].split() == ["a.example", "b.example", "127.0.0.1"]
        assert added == {"trusted-host": ["127.0.0.1"]}

    def test_multiline_trusted_host_stays_multiline(self):
        old = "[global]\ntrusted-host =\n    a.example\n    b.example\n"
        new, _ = pip.edit_conf(old, HTTP_URL)
        assert new == f"[global]\ntrusted-host =\n    a.example\n    b.example\n    127.0.0.1\nindex-url = {HTTP_URL}\n"
        assert read_ini(new)["global"]["trusted-host"].split() == ["a.example", "b.example", "127.0.0.1"]

    def test_a_host_the_user_trusted_already_is_not_recorded_as_ours(self):
        new, added = pip.edit_conf("[global]\ntrusted-host = 127.0.0.1\n", HTTP_URL)
        assert added == {}
        # ... so moving to an https cache leaves it alone.
        newer, _ = pip.edit_conf(new, HTTPS_URL, added)
        assert read_ini(newer)["global"]["trusted-host"] == "127.0.0.1"

    def test_https_takes_back_only_the_host_devpictl_added(self):
        first, added = pip.edit_conf("[global]\ntrusted-host = a.example\n", HTTP_URL)
        second, added = pip.edit_conf(first, HTTPS_URL, added)
        assert second == f"[global]\ntrusted-host = a.example\nindex-url = {HTTPS_URL}\n"
        assert added == {}

    def test_https_drops_the_key_devpictl_created(self):
        first, added = pip.edit_conf("", HTTP_URL)
        second, _ = pip.edit_conf(first, HTTPS_URL, added)
        assert second == f"[global]\nindex-url = {HTTPS_URL}\n"

    def test_unchanged_when_already_set(self):
        text = f"# mine\n[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        assert pip.edit_conf(text, HTTP_URL)[0] == text

    def test_unparsable_file_names_itself(self):
        with pytest.raises(BadInput, match=r"^/x/pip.conf is not a valid pip config file \(.*\): fix it"):
            pip.edit_conf("index-url = no section\n", HTTP_URL, where="/x/pip.conf")


class TestPipConfigFiles:
    def test_follows_pips_order(self, tmp_path, monkeypatch):
        monkeypatch.setattr(pip, "ETC_DIR", tmp_path / "etc")
        env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": f"{tmp_path}/a:{tmp_path}/b"}
        files = pip.config_files(env, prefix=tmp_path / "venv")
        assert files == {
            "global": [tmp_path / "a/pip/pip.conf", tmp_path / "b/pip/pip.conf", tmp_path / "etc/pip.conf"],
            "user": [tmp_path / ".pip/pip.conf", tmp_path / ".config/pip/pip.conf"],
            "site": [tmp_path / "venv/pip.conf"],
        }
        # Like `pip config --SCOPE set`, devpictl writes the scope's last file, which wins.
        assert pip.config_file("global", env) == tmp_path / "etc/pip.conf"
        assert pip.config_file("site", env, prefix=tmp_path / "venv") == tmp_path / "venv/pip.conf"

    def test_default_global_dir(self, tmp_path):
        assert pip.config_files({"HOME": str(tmp_path)})["global"] == [Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf")]

    def test_python_prefix(self, tmp_path):
        assert pip.python_prefix(sys.executable) == Path(sys.prefix)
        with pytest.raises(BadInput, match="cannot run .*nope.*give --python the path of a Python interpreter"):
            pip.python_prefix(tmp_path / "nope")
