"""uv's part of pip-config: editing uv.toml without losing what is in it."""

from __future__ import annotations

import tomllib

import pytest

from devpictl.clientconfig import uv
from devpictl.errors import BadInput, Conflict
from tests.unit.clientconfig.urls import HTTP_URL, HTTPS_URL

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
        assert new == "# corp\n" + UV_BLOCK + "\n" + other[len("# corp\n") :]
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
            'exclude-newer-package = { a = "2024-01-01T00:00:00Z" }\n'
            "no-binary-package = [\n  \"a\",  # ] not the end\n  'b',\n]\n"
        )
        new = uv.edit_toml(text, HTTP_URL)
        assert new.startswith(text)
        assert tomllib.loads(new)["note"] == '[[index]]\nname = "devpictl"\n'
