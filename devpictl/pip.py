"""pip as a program devpictl runs (it has no public Python API): where it is, and how to run it."""

from __future__ import annotations

import os
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


def run_pip(command: list[str], *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``pip ARGS`` with its output captured as text, never asking to upgrade itself."""
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    )
