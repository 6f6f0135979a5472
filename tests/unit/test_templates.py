"""templates/*.py are Python as they stand, so ruff and mypy check what the image runs.

Jinja fills in the layout's names (devpictl/layout.py) before a script reaches the
image. Kept inside string literals, a ``{{ name }}`` is text to ruff and mypy, and
the code they check is the code that runs; a rendered script passes ruff too.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from devpictl import image as img

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "templates").glob("*.py"))
STRINGS = {tokenize.STRING, *(getattr(tokenize, name) for name in ("FSTRING_MIDDLE",) if hasattr(tokenize, name))}


def jinja_outside_strings(source: str) -> list[str]:
    """Where ``source`` has Jinja that is not inside a string literal, as 'line: text'; a block or comment anywhere."""
    lines = source.splitlines(keepends=True)
    masked = [list(line) for line in lines]  # the source with every string literal blanked out
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in STRINGS:
            (row, col), (end_row, end_col) = token.start, token.end
            for r in range(row, end_row + 1):
                first = col if r == row else 0
                last = end_col if r == end_row else len(masked[r - 1])
                masked[r - 1][first:last] = " " * (last - first)
    found = []
    for number, (line, blanked) in enumerate(zip(lines, masked, strict=True), 1):
        if "{%" in line or "{#" in line or "{{" in "".join(blanked):
            found.append(f"{number}: {line.strip()}")
    return found


def ruff(*args: str, stdin: str, name: str) -> subprocess.CompletedProcess:
    """ruff with the project's settings on ``stdin``, as if it were templates/``name``."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", f"templates/{name}", "-"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_every_script_is_checked():
    assert "upstream_check.py" in SCRIPTS and "prune.py" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_jinja_sits_inside_string_literals(name):
    assert jinja_outside_strings((ROOT / "templates" / name).read_text()) == []


def test_jinja_outside_a_string_is_found():
    assert jinja_outside_strings("port = {{ metrics_port }}\n") == ["1: port = {{ metrics_port }}"]
    assert jinja_outside_strings('{% if front %}\nx = "{{ run_dir }}"\n{% endif %}\n') != []
    assert jinja_outside_strings('x = "{{ run_dir }}"  # ok\n') == []


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_rendered_script_passes_ruff(name):
    rendered = img.render_template(name)
    compile(rendered, name, "exec")
    check = ruff("check", "--no-cache", stdin=rendered, name=name)
    assert check.returncode == 0, check.stdout + check.stderr
    form = ruff("format", "--check", stdin=rendered, name=name)
    assert form.returncode == 0, form.stdout + form.stderr
