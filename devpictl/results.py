"""The one result type every command's --json answer comes from.

Each command returns a typed result (a dataclass in the core module it belongs
to); ``devpictl.cli.ui.print_json`` renders it, or a list of them, and nothing
else. ``tests/unit/test_json_contract.py`` pins each command's shape, so a
script that reads ``--json`` never breaks silently. The same thing has the same
key everywhere: ``name`` for the cache, ``index_url`` for its URL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    """What a command answers with: its JSON keys come from ``as_dict``."""

    def as_dict(self) -> dict[str, object]: ...


def to_json(result: Result | Sequence[Result]) -> str:
    """One result as a JSON object, several as a list of them (keys sorted, two-space indent)."""
    data = [r.as_dict() for r in result] if isinstance(result, Sequence) else result.as_dict()
    return json.dumps(data, indent=2, sort_keys=True, default=str)
