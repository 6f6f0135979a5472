"""docs/reliability.md names real tests: every file, class and test it cites as proof exists."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELIABILITY = ROOT / "docs" / "reliability.md"
# A test file (unit/test_x.py), then the classes and tests after it on the same line: TestY::test_z, ::test_w, TestV (all).
CITATION = re.compile(r"((?:unit|integration)/[\w/]+\.py)|\b(Test\w+|test_\w+)\b")


@functools.cache
def defined(path: str) -> frozenset[str]:
    """The names of the classes and functions a test file defines."""
    tree = ast.parse((ROOT / "tests" / path).read_text())
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef)))


def citations(text: str) -> list[tuple[str, str | None]]:
    """(test file, name) for every name cited after a test file on its line; (file, None) for the file itself."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        current = None
        for match in CITATION.finditer(line):
            if match.group(1):
                current = match.group(1)
                found.append((current, None))
            elif current is not None:
                found.append((current, match.group(2)))
    return found


def missing(text: str) -> list[str]:
    """The cited files and tests of ``text`` that do not exist."""
    absent = []
    for path, name in citations(text):
        if not (ROOT / "tests" / path).is_file():
            absent.append(path)
        elif name is not None and name not in defined(path):
            absent.append(f"{path}::{name}")
    return absent


def test_every_cited_test_exists():
    text = RELIABILITY.read_text()
    assert len(citations(text)) > 100, "no citations found: did the format of docs/reliability.md change?"
    assert missing(text) == [], "docs/reliability.md cites tests that do not exist"


def test_a_wrong_citation_is_caught():
    text = "| a promise | unit/test_docs.py::test_every_cited_test_exists, ::test_gone, TestGone (all); unit/test_nothing.py |"
    assert missing(text) == ["unit/test_docs.py::test_gone", "unit/test_docs.py::TestGone", "unit/test_nothing.py"]
