"""pip as a program devpictl runs: which pip it finds, and how it runs it."""

from __future__ import annotations

import subprocess
import sys

from devpictl import pip


def answers(working: set[str]):
    """A run_pip that succeeds for the commands whose first word is in ``working``; records what was tried."""
    tried: list[list[str]] = []

    def run_pip(command, *args, timeout=None):
        tried.append(command)
        if command[0] == "broken":
            raise OSError(8, "Exec format error")
        return subprocess.CompletedProcess([*command, *args], 0 if command[0] in working else 1, "", "")

    return run_pip, tried


def test_this_pythons_pip_comes_first(monkeypatch):
    run_pip, tried = answers({sys.executable})
    monkeypatch.setattr(pip, "run_pip", run_pip)
    assert pip.pip_command() == [sys.executable, "-m", "pip"]
    assert tried == [[sys.executable, "-m", "pip"]]


def test_else_the_first_pip_on_path_that_runs(monkeypatch):
    run_pip, tried = answers({"/usr/bin/pip"})
    monkeypatch.setattr(pip, "run_pip", run_pip)
    monkeypatch.setattr(pip.shutil, "which", {"pip3": "broken", "pip": "/usr/bin/pip"}.get)
    assert pip.pip_command() == ["/usr/bin/pip"]
    assert tried == [[sys.executable, "-m", "pip"], ["broken"], ["/usr/bin/pip"]]


def test_none_without_pip(monkeypatch):
    run_pip, _ = answers(set())
    monkeypatch.setattr(pip, "run_pip", run_pip)
    monkeypatch.setattr(pip.shutil, "which", lambda name: None)
    assert pip.pip_command() is None


def test_run_pip_captures_text_and_never_asks_to_upgrade():
    code = "import os, sys; print(sys.argv[1:], os.environ['PIP_DISABLE_PIP_VERSION_CHECK']); sys.exit(3)"
    done = pip.run_pip([sys.executable, "-c", code], "--version", timeout=60)
    assert done.returncode == 3
    assert done.stdout == "['--version'] 1\n"


def test_an_index_url_goes_in_the_environment_isolated_from_every_other_setting(monkeypatch):
    import os

    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://elsewhere.example/simple/")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/home/me/pip.conf")
    code = "import os, sys; print(sys.argv[1:], sorted((k, v) for k, v in os.environ.items() if k.startswith('PIP_')))"
    url = "https://root:s3cret@127.0.0.1:3141/root/pypi/+simple/"
    done = pip.run_pip([sys.executable, "-c", code], "install", timeout=60, index_url=url)
    args, variables = done.stdout.split("] ", 1)
    assert "s3cret" not in args  # the command line, which `ps` shows anyone
    assert variables.strip() == str([("PIP_CONFIG_FILE", os.devnull), ("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("PIP_INDEX_URL", url)])


def test_a_ca_bundle_wins_over_the_ones_requests_would_take_from_the_environment(monkeypatch):
    # pip's requests takes REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE over --cert: an HTTPS cache's CA must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/proxy-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/proxy-ca.pem")
    code = "import os, sys; print(sys.argv[1:], os.environ['REQUESTS_CA_BUNDLE'], os.environ.get('CURL_CA_BUNDLE'))"
    done = pip.run_pip([sys.executable, "-c", code], "install", timeout=60, cert="/state/tls/trust.pem")
    assert done.stdout == "['install', '--cert', '/state/tls/trust.pem'] /state/tls/trust.pem None\n"
