"""README.md tells the truth about the CLI: its command table and option lists match `--help`.

`python -m tests.unit.test_readme` rewrites README's option list from the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from devpictl.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- options: made from the CLI; tests/unit/test_readme.py -->", "<!-- end of options -->"


def commands(group=None, prefix: tuple[str, ...] = ()):
    """(path, command) of every command people see, subcommands after their group."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*prefix, name), command
        if isinstance(command, TyperGroup):
            yield from commands(command, (*prefix, name))


def describe(param) -> str:
    if isinstance(param, TyperArgument):
        return (param.metavar or param.name.upper()) + ("..." if param.nargs == -1 else "")
    names = [*param.opts, *param.secondary_opts]
    return "/".join(f"{n}" for n in names)


def options_block() -> str:
    """The README's option list, as the CLI defines it today."""
    lines = [START]
    for path, command in commands():
        params = [p for p in command.params if isinstance(p, (TyperOption, TyperArgument)) and p.name != "help"]
        shown = ", ".join(f"`{describe(p)}`" for p in params) or "none"
        lines.append(f"- `devpictl {' '.join(path)}`: {shown}")
    lines.append(END)
    return "\n".join(lines)


def regenerate(text: str) -> str:
    """``text`` with its option list made from the CLI: from START to the last of the END lines that follow it."""
    start = text.index(START)
    end = text.index(END, start) + len(END)
    while text.startswith("\n" + END, end):  # ends that an earlier, careless regeneration left
        end += 1 + len(END)
    return text[:start] + options_block() + text[end:]


def test_the_option_lists_are_the_clis():
    text = README.read_text()
    assert START in text and END in text, "README lost its option list"
    assert text.count(START) == 1 and text.count(END) == 1, "README has more than one option list: run python -m tests.unit.test_readme"
    assert regenerate(text) == text, "README's option list is out of date: run python -m tests.unit.test_readme"


def test_regenerating_twice_changes_nothing_more():
    text = README.read_text()
    once = regenerate(text)
    assert regenerate(once) == once
    assert once.count(END) == 1
    stale = text.replace(END, f"{END}\n{END}\n{END}")
    assert regenerate(stale) == once


def test_the_exit_codes_are_in_numeric_order_and_are_devpictls():
    from devpictl import errors

    text = README.read_text()
    table = text[text.index("| code | meaning |") :]
    table = table[: table.index("\n\n")]
    codes = [int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)]
    assert codes == sorted(codes)
    defined = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert set(codes) == {0} | defined


def test_the_command_table_names_every_command():
    text = README.read_text()
    table = text[text.index("| command | what it does |") :]
    table = table[: table.index("\n\n")]
    named = set(re.findall(r"^\| `([a-z-]+)", table, flags=re.M))
    assert named == {path[0] for path, _ in commands()}


def test_the_layout_names_every_module_and_template():
    text = README.read_text()
    layout = text[text.index("## Layout") :]
    root = README.parent
    names = [p.name for p in (root / "devpictl").glob("*.py") if not p.name.startswith("__")]
    names += [p.stem for p in (root / "devpictl" / "clientconfig").glob("*.py") if not p.name.startswith("__")]
    names += [p.name for p in (root / "devpictl" / "cli").glob("*.py") if not p.name.startswith("__")]
    names += [p.name for p in (root / "templates").iterdir()]
    missing = [name for name in names if name not in layout]
    assert missing == [], f"README's Layout does not name {missing}"


def test_the_commands_without_json_are_the_ones_readme_names():
    text = " ".join(README.read_text().split())
    claim = re.search(r"Every command but (.+?) takes `--json`", text)
    assert claim, "README lost its sentence on --json"
    named = set(re.findall(r"`([^`]+)`", claim.group(1)))
    without = {
        " ".join(path) for path, command in commands() if not any("--json" in p.opts for p in command.params if isinstance(p, TyperOption))
    }
    assert named == without


def test_the_first_command_says_root_or_sudo():
    """Where the user is root there is no sudo: the README says the apt-get runs as root, or with sudo."""
    text = README.read_text()
    first = text.index("sudo apt-get install")
    assert "as root, or with `sudo`" in " ".join(text[:first].split()[-30:])


if __name__ == "__main__":
    README.write_text(regenerate(README.read_text()))
