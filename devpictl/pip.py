"""pip as a program devpictl runs (it has no public Python API): where it is, how to run it, the index it uses by default."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys


def pip_command() -> list[str] | None:
    """pip as this Python has it (a pipx venv shares one), else the first pip on PATH; None without pip."""
    candidates = [[sys.executable, "-m", "pip"]] + [[found] for found in map(shutil.which, ("pip3", "pip")) if found]
    for command in candidates:
        try:
            if run_pip(command, "--version", timeout=30).returncode == 0:
                return command
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def run_pip(
    command: list[str], *args: str, timeout: float | None = None, index_url: str | None = None, cert: str | None = None
) -> subprocess.CompletedProcess:
    """``pip ARGS`` with its output captured as text, never asking to upgrade itself.

    ``index_url``: pip reads only this index, isolated as ``--isolated`` would (no other PIP_*
    variable, no config file). It goes in pip's environment (PIP_INDEX_URL), not its command
    line, which `ps` shows anyone: a login it carries stays readable by this user alone
    (/proc/PID/environ). ``cert``: the CA bundle pip trusts (--cert), also as REQUESTS_CA_BUNDLE,
    which pip's requests would otherwise take over --cert.
    """
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if index_url is not None:
        env = {key: value for key, value in env.items() if not key.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_INDEX_URL=index_url)
    if cert is not None:
        env.pop("CURL_CA_BUNDLE", None)
        env["REQUESTS_CA_BUNDLE"] = cert
        args = (*args, "--cert", cert)
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=env)


def default_index_url() -> str | None:
    """The index pip uses by default, as pip's own help states it, or None without pip.

    devpictl names no index host of its own, so the official index is measured
    at the URL pip would fetch from. pip has no public API for it; its help
    text ("Base URL of the Python Package Index (default URL)") is public.
    """
    command = pip_command()
    if command is None:
        return None
    try:
        done = run_pip(command, "download", "--help", timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _PIP_DEFAULT_INDEX.search(" ".join(done.stdout.split()))
    return match[1] if done.returncode == 0 and match else None


_PIP_DEFAULT_INDEX = re.compile(r"--index-url <url> Base URL of the Python Package Index \(default (https?://[^\s)]+)\)")
