"""The shell-environment output (--shell): installers' variables as sh, fish or powershell lines."""

from __future__ import annotations

import shlex

from devpictl.errors import BadInput

SHELLS = {"sh": "sh", "bash": "sh", "zsh": "sh", "ksh": "sh", "fish": "fish", "powershell": "powershell", "pwsh": "powershell"}


def parse_shell(value: str) -> str:
    try:
        return SHELLS[value.strip().lower()]
    except KeyError:
        raise BadInput(f"unknown shell {value!r}: use sh (bash, zsh), fish or powershell") from None


def render(variables: dict[str, str], shell: str = "sh") -> str:
    """Lines that set ``variables`` in ``shell`` (sh, fish or powershell syntax)."""
    lines = []
    for name, value in variables.items():
        if shell == "fish":
            quoted = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
            lines.append(f"set -gx {name} {quoted}")
        elif shell == "powershell":
            lines.append(f"$env:{name} = '" + value.replace("'", "''") + "'")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return "".join(line + "\n" for line in lines)
