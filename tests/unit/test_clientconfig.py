"""pip settings for a cache, and editing pip's config file without losing what is in it."""

from __future__ import annotations

import configparser
import os
import stat
import subprocess
import sys

import pytest

from devpictl import clientconfig as cc

HTTP_URL = "http://127.0.0.1:3141/root/pypi/+simple/"
HTTPS_URL = "https://cache.example/root/pypi/+simple/"
NEW = {"index-url": HTTP_URL, "trusted-host": "127.0.0.1"}


def read_ini(text: str) -> configparser.RawConfigParser:
    """Read ``text`` the way pip does (RawConfigParser, strict)."""
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


class TestPipSettings:
    def test_http_adds_trusted_host(self):
        assert cc.pip_settings(HTTP_URL) == {"index-url": HTTP_URL, "trusted-host": "127.0.0.1"}

    def test_http_host_without_port(self):
        assert cc.pip_settings("http://cache.lan/root/pypi/+simple/")["trusted-host"] == "cache.lan"

    def test_https_has_no_trusted_host(self):
        assert cc.pip_settings(HTTPS_URL) == {"index-url": HTTPS_URL}

    def test_render(self):
        assert cc.render_pip_conf(cc.pip_settings(HTTP_URL)) == (
            f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        )


class TestSetIniKeys:
    def test_empty_text_gets_a_global_section(self):
        assert cc.set_ini_keys("", "global", NEW) == f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"

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
        new = cc.set_ini_keys(old, "global", NEW)
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
        new = cc.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\nindex-url = {HTTP_URL}\ntimeout = 60\n"

    def test_replaces_multiline_trusted_host_and_keeps_others_continuations(self):
        old = (
            "[global]\n"
            "trusted-host = a.example\n"
            "    b.example\n"
            "find-links =\n"
            "    /srv/wheels\n"
            "    /opt/wheels\n"
        )
        new = cc.set_ini_keys(old, "global", NEW)
        assert new == (
            "[global]\n"
            "trusted-host = 127.0.0.1\n"
            "find-links =\n"
            "    /srv/wheels\n"
            "    /opt/wheels\n"
            f"index-url = {HTTP_URL}\n"
        )
        assert read_ini(new)["global"]["find-links"] == "\n/srv/wheels\n/opt/wheels"

    def test_both_spellings_collapse_into_one_key(self):
        old = "[global]\nindex-url = https://a/simple\nindex_url = https://b/simple\n"
        new = cc.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\nindex-url = {HTTP_URL}\n"
        read_ini(new)  # no DuplicateOptionError

    def test_key_case_and_colon_delimiter(self):
        old = "[global]\nINDEX-URL: https://a/simple\n"
        assert cc.set_ini_keys(old, "global", {"index-url": HTTP_URL}) == f"[global]\nindex-url = {HTTP_URL}\n"

    def test_adds_global_when_missing(self):
        old = "[install]\nno-compile = true"  # no final newline
        assert cc.set_ini_keys(old, "global", NEW) == (
            "[install]\nno-compile = true\n\n[global]\n" f"index-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        )

    def test_new_keys_go_after_the_last_line_of_the_section(self):
        old = "[global]\ntimeout = 60\n\n\n[install]\nno-compile = true\n"
        new = cc.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\ntimeout = 60\nindex-url = {HTTP_URL}\n\n\n[install]\nno-compile = true\n"

    def test_is_idempotent(self):
        old = "# c\n[global]\ntimeout = 60\n"
        once = cc.set_ini_keys(old, "global", NEW)
        assert cc.set_ini_keys(once, "global", NEW) == once

    def test_indented_key_is_replaced(self):
        old = "[global]\n  index-url = https://old/simple\n"
        new = cc.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert read_ini(new)["global"]["index-url"] == HTTP_URL


class TestWritePipConfig:
    def test_creates_the_file_without_a_backup(self, tmp_path):
        path = tmp_path / "pip" / "pip.conf"
        assert cc.write_pip_config(path, HTTP_URL) is None
        assert path.read_text() == f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        assert not (tmp_path / "pip" / "pip.conf.devpictl-backup").exists()
        assert sorted(p.name for p in path.parent.iterdir()) == ["pip.conf"]

    def test_backs_up_the_exact_old_bytes_only_the_first_time(self, tmp_path):
        folder = tmp_path / "conf"
        folder.mkdir()
        path = folder / "pip.conf"
        original = b"# mine\r\n[global]\r\ntimeout = 60\r\n"
        path.write_bytes(original)
        backup = cc.write_pip_config(path, HTTP_URL)
        assert backup == folder / "pip.conf.devpictl-backup"
        assert backup.read_bytes() == original
        assert "index-url = " + HTTP_URL in path.read_text()
        assert "timeout = 60" in path.read_text()

        assert cc.write_pip_config(path, HTTPS_URL) is None
        assert backup.read_bytes() == original
        text = path.read_text()
        assert f"index-url = {HTTPS_URL}" in text
        assert HTTP_URL not in text
        assert sorted(p.name for p in folder.iterdir()) == ["pip.conf", "pip.conf.devpictl-backup"]

    def test_keeps_the_files_mode(self, tmp_path):
        path = tmp_path / "pip.conf"
        path.write_text("[global]\nextra-index-url = https://user:token@private.example/simple\n")
        path.chmod(0o600)
        cc.write_pip_config(path, HTTP_URL)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


class TestPipUserConfigFile:
    def test_honours_xdg_config_home(self, tmp_path):
        env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
        assert cc.pip_user_config_file(env) == tmp_path / "xdg" / "pip" / "pip.conf"

    def test_falls_back_to_home_config(self, tmp_path):
        assert cc.pip_user_config_file({"HOME": str(tmp_path)}) == tmp_path / ".config" / "pip" / "pip.conf"

    def test_reads_the_process_environment(self, isolation):
        assert cc.pip_user_config_file() == isolation / ".config" / "pip" / "pip.conf"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pip's per-user path checked for Linux")
def test_pip_reads_what_was_written(isolation, tmp_path):
    path = cc.pip_user_config_file()
    path.parent.mkdir(parents=True)
    path.write_text("[global]\ntimeout = 61\nindex_url = https://old.example/simple\n")
    cc.write_pip_config(path, HTTP_URL)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(HOME=str(isolation), XDG_CONFIG_HOME=str(isolation / ".config"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The machine's /etc/pip.conf may add keys of its own; ours must be there, once.
    assert f"global.index-url='{HTTP_URL}'" in lines
    assert "global.trusted-host='127.0.0.1'" in lines
    assert "global.timeout='61'" in lines
    assert [line for line in lines if "index-url" in line or "index_url" in line] == [f"global.index-url='{HTTP_URL}'"]
