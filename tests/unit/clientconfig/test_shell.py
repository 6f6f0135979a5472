"""pip-config --shell: the environment variables, quoted for each shell."""

from __future__ import annotations

from devpictl.clientconfig import shell


class TestEnvironment:
    def test_quoting_for_each_shell(self):
        value = "http://h/it's $x"
        assert shell.render({"A": value}) == "export A='http://h/it'\"'\"'s $x'\n"
        assert shell.render({"A": value}, "fish") == "set -gx A 'http://h/it\\'s $x'\n"
        assert shell.render({"A": value}, "powershell") == "$env:A = 'http://h/it''s $x'\n"
