"""What each installer needs for a cache, where it reads it, and editing those files
without losing what is in them (the installers themselves read the results in
test_tools_read_config.py)."""

from __future__ import annotations

import configparser
import os
import stat
import sys
import tomllib
from pathlib import Path

import pytest

from devpictl.clientconfig import manifest as mf
from devpictl.clientconfig import pdm, pip, pipenv, poetry, registry, shell, uv
from devpictl.errors import BadInput, Conflict, DevpictlError

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
        assert pip.settings(HTTP_URL) == {"index-url": HTTP_URL, "trusted-host": "127.0.0.1"}

    def test_http_host_without_port(self):
        assert pip.settings("http://cache.lan/root/pypi/+simple/")["trusted-host"] == "cache.lan"

    def test_https_has_no_trusted_host(self):
        assert pip.settings(HTTPS_URL) == {"index-url": HTTPS_URL}

    def test_render(self):
        assert pip.render_conf(pip.settings(HTTP_URL)) == (
            f"[global]\nindex-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
        )


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
        old = (
            "[global]\n"
            "trusted-host = a.example\n"
            "    b.example\n"
            "find-links =\n"
            "    /srv/wheels\n"
            "    /opt/wheels\n"
        )
        new = pip.set_ini_keys(old, "global", NEW)
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
        new = pip.set_ini_keys(old, "global", {"index-url": HTTP_URL})
        assert new == f"[global]\nindex-url = {HTTP_URL}\n"
        read_ini(new)  # no DuplicateOptionError

    def test_key_case_and_colon_delimiter(self):
        old = "[global]\nINDEX-URL: https://a/simple\n"
        assert pip.set_ini_keys(old, "global", {"index-url": HTTP_URL}) == f"[global]\nindex-url = {HTTP_URL}\n"

    def test_adds_global_when_missing(self):
        old = "[install]\nno-compile = true"  # no final newline
        assert pip.set_ini_keys(old, "global", NEW) == (
            "[install]\nno-compile = true\n\n[global]\n" f"index-url = {HTTP_URL}\ntrusted-host = 127.0.0.1\n"
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


UV_USER = """\
# my uv settings
link-mode = "copy"   # no hardlinks on this disk

[[index]]
name = "pytorch"  # gpu wheels
url = "https://download.example/whl/cu121"
explicit = true

[pip]
annotation-style = "line"
"""

UV_BLOCK = f'''[[index]]
name = "devpictl"
url = "{HTTP_URL}"
default = true
'''


class TestEditUvToml:
    def test_appends_our_index_and_keeps_everything_else(self):
        new = uv.edit_toml(UV_USER, HTTP_URL)
        # After the last [[index]], laid out as it is (tomlkit keeps an array of tables together).
        assert new == UV_USER.replace("\n[pip]\n", "\n" + UV_BLOCK + "\n[pip]\n")
        data = tomllib.loads(new)
        assert data["index"][-1] == {"name": "devpictl", "url": HTTP_URL, "default": True}
        assert data["link-mode"] == "copy" and data["pip"] == {"annotation-style": "line"}

    def test_replaces_only_its_own_entry_in_place(self):
        once = uv.edit_toml(UV_USER, HTTP_URL)
        moved = once.replace("\n[pip]\n", '\n[[index]]\nname = "later"  # mine\nurl = "https://later.example/simple"\n\n[pip]\n')
        again = uv.edit_toml(moved, HTTPS_URL)
        assert again == moved.replace(HTTP_URL, HTTPS_URL)
        assert uv.edit_toml(again, HTTPS_URL) == again

    def test_an_array_split_by_another_table_keeps_its_data_and_comments(self):
        # As an older devpictl wrote it: our [[index]] at the end, after [pip]. tomlkit
        # (like poetry and pdm on these files) writes the array's elements together.
        split = UV_USER + "\n" + UV_BLOCK + '\n[[index]]\nname = "later"  # mine\nurl = "https://later.example/simple"\n'
        new = uv.edit_toml(split, HTTPS_URL)
        assert tomllib.loads(new) == tomllib.loads(split.replace(HTTP_URL, HTTPS_URL))
        for comment in ("# my uv settings", "# no hardlinks on this disk", "# gpu wheels", "# mine"):
            assert comment in new
        assert uv.edit_toml(new, HTTPS_URL) == new

    def test_plain_http_needs_no_insecure_host(self):
        assert "insecure" not in uv.edit_toml("", HTTP_URL)
        assert uv.edit_toml("", HTTP_URL) == UV_BLOCK

    def test_refuses_to_take_over_another_default(self):
        other = '[[index]]\nname = "corp"\nurl = "https://corp.example/simple"\ndefault = true\n'
        with pytest.raises(Conflict, match=r"index 'corp' in /u/uv.toml is already uv's default index .*--force"):
            uv.edit_toml(other, HTTP_URL, where="/u/uv.toml")

    def test_refuses_a_legacy_index_url(self):
        with pytest.raises(Conflict, match=r"already sets uv's default index \(index-url = 'https://old.example/simple'\).*--force"):
            uv.edit_toml('index-url = "https://old.example/simple"\n', HTTP_URL)
        with pytest.raises(Conflict, match=r"pip.index-url"):
            uv.edit_toml('[pip]\nindex-url = "https://old.example/simple"\n', HTTP_URL)

    def test_force_puts_ours_before_the_other_default(self):
        # uv uses the first index marked default.
        other = '# corp\n[[index]]\nname = "corp"\nurl = "https://corp.example/simple"\ndefault = true\n'
        new = uv.edit_toml(other, HTTP_URL, force=True)
        assert new == "# corp\n" + UV_BLOCK + "\n" + other[len("# corp\n"):]
        assert [i["name"] for i in tomllib.loads(new)["index"]] == ["devpictl", "corp"]

    def test_after_taking_over_a_later_write_needs_no_force(self):
        legacy = 'index-url = "https://old.example/simple"\n'
        taken = uv.edit_toml(legacy, HTTP_URL, force=True)
        assert uv.edit_toml(taken, HTTPS_URL) == taken.replace(HTTP_URL, HTTPS_URL)
        other = '[[index]]\nname = "corp"\nurl = "https://corp.example/simple"\ndefault = true\n'
        taken = uv.edit_toml(other, HTTP_URL, force=True)
        assert uv.edit_toml(taken, HTTPS_URL) == taken.replace(HTTP_URL, HTTPS_URL)
        # ... but a default added ahead of ours since is in the way again.
        with pytest.raises(Conflict, match="index 'first'"):
            uv.edit_toml('[[index]]\nname = "first"\nurl = "https://f.example/simple"\ndefault = true\n\n' + taken, HTTPS_URL)

    def test_inline_array_is_refused_not_rewritten(self):
        text = 'index = [{name = "a", url = "https://a.example/simple"}]\n'
        with pytest.raises(BadInput, match=r"cannot change uv.toml without rewriting it .*inline array.*by hand"):
            uv.edit_toml(text, HTTP_URL)

    def test_invalid_toml_names_the_file(self):
        with pytest.raises(BadInput, match=r"^/u/uv.toml is not valid TOML \(.*\): fix it, then run devpictl again$"):
            uv.edit_toml("[[index]\n", HTTP_URL, where="/u/uv.toml")

    def test_multiline_strings_and_arrays_are_kept(self):
        text = (
            'note = """\n[[index]]\nname = "devpictl"\n"""\n'
            "exclude-newer-package = { a = \"2024-01-01T00:00:00Z\" }\n"
            "no-binary-package = [\n  \"a\",  # ] not the end\n  'b',\n]\n"
        )
        new = uv.edit_toml(text, HTTP_URL)
        assert new.startswith(text)
        assert tomllib.loads(new)["note"] == '[[index]]\nname = "devpictl"\n'


PDM_USER = """\
# pdm
check_update = false

[venv]
backend = "venv"  # keep
"""


class TestEditPdmToml:
    def test_adds_a_pypi_table(self):
        new, added = pdm.edit_toml(PDM_USER, HTTP_URL)
        assert new == PDM_USER + f'\n[pypi]\nurl = "{HTTP_URL}"\nverify_ssl = false\n'
        assert added == {"pypi.verify_ssl": {"was": None}}

    def test_sets_keys_in_the_existing_table_keeping_comments(self):
        old = '[pypi]\nurl = "https://old.example/simple"  # old\nverify_ssl = true\n\n[venv]\nbackend = "venv"\n'
        new, added = pdm.edit_toml(old, HTTP_URL)
        assert new == f'[pypi]\nurl = "{HTTP_URL}"  # old\nverify_ssl = false\n\n[venv]\nbackend = "venv"\n'
        # An https cache puts back what verify_ssl was before devpictl.
        newer, added = pdm.edit_toml(new, HTTPS_URL, added)
        assert newer == old.replace("https://old.example/simple", HTTPS_URL)
        assert added == {}

    def test_https_removes_the_verify_ssl_devpictl_added(self):
        first, added = pdm.edit_toml(PDM_USER, HTTP_URL)
        second, added = pdm.edit_toml(first, HTTPS_URL, added)
        assert second == PDM_USER + f'\n[pypi]\nurl = "{HTTPS_URL}"\n'

    def test_the_users_own_verify_ssl_false_stays(self):
        first, added = pdm.edit_toml("[pypi]\nverify_ssl = false\n", HTTP_URL)
        assert added == {}
        second, _ = pdm.edit_toml(first, HTTPS_URL, added)
        assert tomllib.loads(second)["pypi"]["verify_ssl"] is False

    def test_dotted_keys_stay_dotted(self):
        old = 'pypi.url = "https://old.example/simple"\ncheck_update = false\n\n[venv]\nbackend = "venv"\n'
        new, _ = pdm.edit_toml(old, HTTP_URL)
        assert new == f'pypi.url = "{HTTP_URL}"\npypi.verify_ssl = false\ncheck_update = false\n\n[venv]\nbackend = "venv"\n'

    def test_inline_table_is_refused(self):
        with pytest.raises(BadInput, match=r"cannot change config.toml without rewriting it .*pdm config pypi.url"):
            pdm.edit_toml('pypi = { url = "https://old.example/simple" }\n', HTTP_URL)


PYPROJECT = """\
[project]
name = "demo"  # the name
version = "0.1.0"
dependencies = [
    "requests",  # http
]

[[tool.poetry.source]]
name = "corp"
url = "https://corp.example/simple/"
priority = "supplemental"

[build-system]
requires = ["poetry-core>=2.0"]
build-backend = "poetry.core.masonry.api"
"""


class TestEditPoetryPyproject:
    def test_appends_a_primary_source(self):
        new = poetry.edit_pyproject(PYPROJECT, HTTP_URL)
        block = f'[[tool.poetry.source]]\nname = "devpictl"\nurl = "{HTTP_URL}"\npriority = "primary"\n'
        assert new == PYPROJECT.replace("[build-system]", block + "\n[build-system]")
        sources = tomllib.loads(new)["tool"]["poetry"]["source"]
        assert [s["name"] for s in sources] == ["corp", "devpictl"]

    def test_replaces_its_own_source(self):
        once = poetry.edit_pyproject(PYPROJECT, HTTP_URL)
        assert poetry.edit_pyproject(once, HTTPS_URL) == once.replace(HTTP_URL, HTTPS_URL)


PIPFILE = """\
# my project
[[source]]
url = "https://pypi.example/simple"
verify_ssl = true
name = "pypi"  # the default

[packages]
requests = "*"
"""


class TestEditPipfile:
    def test_puts_its_source_first_keeping_everything_else(self):
        new = pipenv.edit_pipfile(PIPFILE, HTTP_URL)
        block = f'[[source]]\nname = "devpictl"\nurl = "{HTTP_URL}"\nverify_ssl = false\n\n'
        assert new == PIPFILE.replace("[[source]]\n", block + "[[source]]\n", 1)
        assert [s["name"] for s in tomllib.loads(new)["source"]] == ["devpictl", "pypi"]

    def test_replaces_its_own_source_in_place(self):
        once = pipenv.edit_pipfile(PIPFILE, HTTP_URL)
        again = pipenv.edit_pipfile(once, HTTPS_URL)
        assert again == once.replace(HTTP_URL, HTTPS_URL).replace("verify_ssl = false", "verify_ssl = true", 1)
        assert pipenv.edit_pipfile(again, HTTPS_URL) == again

    def test_moves_its_source_ahead_of_one_added_before_it(self):
        once = pipenv.edit_pipfile(PIPFILE, HTTPS_URL)
        other = '[[source]]\nname = "corp"\nurl = "https://corp.example/simple"\nverify_ssl = true\n\n'
        new = pipenv.edit_pipfile(other + once.split("\n", 1)[1], HTTPS_URL)
        assert [s["name"] for s in tomllib.loads(new)["source"]] == ["devpictl", "corp", "pypi"]

    def test_a_pipfile_without_sources(self):
        new = pipenv.edit_pipfile('[packages]\nrequests = "*"\n', HTTPS_URL)
        assert tomllib.loads(new) == {
            "packages": {"requests": "*"}, "source": [{"name": "devpictl", "url": HTTPS_URL, "verify_ssl": True}],
        }

    def test_inline_array_is_refused_not_rewritten(self):
        with pytest.raises(BadInput, match=r"cannot change Pipfile without rewriting it .*inline array.*by hand"):
            pipenv.edit_pipfile('source = [{name = "a", url = "https://a.example/simple", verify_ssl = true}]\n', HTTP_URL)

    def test_invalid_toml_names_the_file(self):
        with pytest.raises(BadInput, match=r"^/p/Pipfile is not valid TOML"):
            pipenv.edit_pipfile("[[source]\n", HTTP_URL, where="/p/Pipfile")


class TestEnvironment:
    def test_http(self):
        assert registry.get("pip").env_vars(HTTP_URL) == {"PIP_INDEX_URL": HTTP_URL, "PIP_TRUSTED_HOST": "127.0.0.1"}
        assert registry.get("uv").env_vars(HTTP_URL) == {"UV_DEFAULT_INDEX": HTTP_URL}
        assert registry.get("pdm").env_vars(HTTP_URL) == {"PDM_PYPI_URL": HTTP_URL, "PDM_PYPI_VERIFY_SSL": "false"}
        assert registry.get("poetry").env_vars(HTTP_URL) == {}
        assert registry.get("pipenv").env_vars(HTTP_URL) == {"PIPENV_PYPI_MIRROR": HTTP_URL}

    def test_https_gets_no_exceptions(self):
        for tool in registry.TOOLS:
            assert not any("TRUSTED" in k or "VERIFY" in k or "INSECURE" in k for k in registry.get(tool).env_vars(HTTPS_URL))

    def test_quoting_for_each_shell(self):
        value = "http://h/it's $x"
        assert shell.render({"A": value}) == "export A='http://h/it'\"'\"'s $x'\n"
        assert shell.render({"A": value}, "fish") == "set -gx A 'http://h/it\\'s $x'\n"
        assert shell.render({"A": value}, "powershell") == "$env:A = 'http://h/it''s $x'\n"

    def test_parse_tools(self):
        assert registry.parse_tools(None) == ("pip",)
        assert registry.parse_tools(["uv,pip", "PDM", "uv"]) == ("uv", "pip", "pdm")
        with pytest.raises(BadInput, match="unknown tool 'conda': use pip, uv, pdm, poetry"):
            registry.parse_tools(["pip,conda"])


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


class TestManifestAndUndo:
    @pytest.fixture
    def manifest(self, tmp_path):
        return mf.Manifest(tmp_path / "data" / "clientconfig")

    def write(self, manifest, path, url, tool="pip"):
        change = mf.plan_change(registry.get(tool), path, url, manifest=manifest)
        return change, mf.apply_change(change, manifest)

    def test_keeps_the_first_original_and_restores_it_exactly(self, tmp_path, manifest):
        (tmp_path / "conf").mkdir()
        path = tmp_path / "conf" / "pip.conf"
        original = b"# mine\r\n[global]\r\ntimeout = 60\r\n"
        path.write_bytes(original)
        path.chmod(0o640)
        _, applied = self.write(manifest, path, HTTP_URL)
        assert applied.first and applied.backup.read_bytes() == original
        assert stat.S_IMODE(applied.backup.stat().st_mode) == 0o600
        assert path.read_bytes() == (
            b"# mine\r\n[global]\r\ntimeout = 60\r\nindex-url = " + HTTP_URL.encode() + b"\r\ntrusted-host = 127.0.0.1\r\n"
        )
        _, again = self.write(manifest, path, HTTPS_URL)
        assert not again.first and again.backup.read_bytes() == original
        assert [p.name for p in path.parent.iterdir()] == ["pip.conf"]  # nothing left beside the file

        path.chmod(0o600)
        (restore,) = mf.plan_undo(manifest, ("pip",))
        mf.apply_restore(restore, manifest)
        assert path.read_bytes() == original
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert manifest.entries() == {} and list(manifest.backups.iterdir()) == []

    def test_a_file_that_did_not_exist_is_deleted_by_undo(self, tmp_path, manifest):
        path = tmp_path / "uv" / "uv.toml"
        self.write(manifest, path, HTTP_URL, "uv")
        assert manifest.get(path)["backup"] is None
        self.write(manifest, path, HTTPS_URL, "uv")  # still remembered as absent
        (restore,) = mf.plan_undo(manifest)
        assert restore.original is None
        mf.apply_restore(restore, manifest)
        assert not path.exists()

    def test_writes_keep_the_mode(self, tmp_path, manifest):
        path = tmp_path / "config.toml"
        path.write_text('[repository.private]\npassword = "s3cret"\n')
        path.chmod(0o600)
        self.write(manifest, path, HTTP_URL, "pdm")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert tomllib.loads(path.read_text())["repository"]["private"]["password"] == "s3cret"

    def test_undo_refuses_a_file_changed_since(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        self.write(manifest, path, HTTP_URL)
        path.write_text(path.read_text() + "timeout = 5\n")
        with pytest.raises(Conflict, match=r"pip.conf changed since devpictl wrote it.*--force"):
            mf.plan_undo(manifest)
        (restore,) = mf.plan_undo(manifest, force=True)
        mf.apply_restore(restore, manifest)
        assert not path.exists()

    def test_nothing_to_undo(self, manifest):
        assert mf.plan_undo(manifest, ("uv",)) == []

    def test_adopts_an_older_devpictls_backup(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        (tmp_path / "pip.conf.devpictl-backup").write_bytes(b"[global]\ntimeout = 1\n")
        path.write_text(f"[global]\ntimeout = 1\nindex-url = {HTTP_URL}\n")
        self.write(manifest, path, HTTPS_URL)
        mf.apply_restore(mf.plan_undo(manifest)[0], manifest)
        assert path.read_bytes() == b"[global]\ntimeout = 1\n"

    def test_writes_through_a_symlink(self, tmp_path, manifest):
        target = tmp_path / "dotfiles" / "pip.conf"
        target.parent.mkdir()
        target.write_text("[global]\ntimeout = 60\n")
        link = tmp_path / "pip.conf"
        link.symlink_to(target)
        self.write(manifest, link, HTTP_URL)
        assert link.is_symlink()
        assert HTTP_URL in target.read_text()
        mf.apply_restore(mf.plan_undo(manifest, paths=[link])[0], manifest)
        assert link.is_symlink() and target.read_text() == "[global]\ntimeout = 60\n"

    def test_a_failed_write_forgets_the_record(self, tmp_path, manifest, monkeypatch):
        path = tmp_path / "pip.conf"
        change = mf.plan_change(registry.get("pip"), path, HTTP_URL, manifest=manifest)

        real_replace = os.replace

        def replace(src, dst):
            if dst == path:
                raise PermissionError(13, "Permission denied")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(DevpictlError, match=r"cannot write .*pip.conf \(Permission denied\)"):
            mf.apply_change(change, manifest)
        monkeypatch.undo()
        assert manifest.entries() == {} and not path.exists()

    def test_diff(self, tmp_path, manifest):
        path = tmp_path / "pip.conf"
        path.write_text("[global]\ntimeout = 60\n")
        change = mf.plan_change(registry.get("pip"), path, HTTP_URL, manifest=manifest)
        assert change.diff() == (
            f"--- {path}\n+++ {path}\n@@ -1,2 +1,4 @@\n [global]\n timeout = 60\n"
            f"+index-url = {HTTP_URL}\n+trusted-host = 127.0.0.1\n"
        )
