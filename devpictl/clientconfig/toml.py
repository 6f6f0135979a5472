"""TOML edits through tomlkit, which keeps comments, order and layout."""

from __future__ import annotations

import tomllib

import tomlkit
from tomlkit.items import AoT, Whitespace

from devpictl.errors import BadInput


class LayoutError(Exception):
    """The file is valid TOML, but not in a layout devpictl can change without rewriting it."""


def parse(text: str, where: str) -> tomlkit.TOMLDocument:
    """``text`` as a tomlkit document; tomllib, as the installers' own reader, judges validity."""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{where} is not valid TOML ({exc}): fix it, then run devpictl again") from None
    return tomlkit.parse(text)


def dumps(doc: tomlkit.TOMLDocument) -> str:
    """``doc`` as text, checked to read back as the data it holds."""
    text = tomlkit.dumps(doc)
    if tomllib.loads(text) != doc.unwrap():
        raise LayoutError("tomlkit would change its meaning")
    return text


def put_array_entry(doc: tomlkit.TOMLDocument, path: tuple[str, ...], entry: dict, name: str, before: int | None = None) -> None:
    """Put ``entry`` into the array of tables ``path``: ahead of element ``before`` if given,
    else in place of the element named ``name``, else after the last element."""
    parent = doc
    for part in path[:-1]:
        if part not in parent:
            parent[part] = tomlkit.table(is_super_table=True)
        parent = parent[part]
        if not isinstance(parent, dict):
            raise LayoutError(f"{part} is not a table")
    items = parent.get(path[-1])
    if items is None:
        parent[path[-1]] = tomlkit.aot()
        items = parent[path[-1]]
    if not isinstance(items, AoT):
        raise LayoutError(f"{'.'.join(path)} is written as an inline array")
    ours = [i for i, item in enumerate(items) if item.get("name") == name]
    if before is None and ours:
        existing = items[ours[0]]  # in place: its comments stay
        for key in [key for key in existing if key not in entry]:
            del existing[key]
        existing.update(entry)
        for i in reversed(ours[1:]):
            del items[i]
        return
    for i in reversed(ours):
        del items[i]
        if before is not None and i < before:
            before -= 1
    new = tomlkit.table()
    new.update(entry)
    if before is not None:
        new.add(tomlkit.nl())
        items.insert(before, new)
        return
    if len(items) and _ends_blank(items[-1]):
        new.add(tomlkit.nl())  # laid out as the element before it
    elif len(items):
        new.trivia.indent = "\n"  # a blank line between the elements
    items.append(new)


def _ends_blank(table) -> bool:
    body = table.value.body
    return bool(body) and isinstance(body[-1][1], Whitespace)
