"""Editing one key of a stack file in place: every other byte stays as the author wrote it."""

from __future__ import annotations

import re

from bookinfo_mesh.pulumi_yaml import resolve_plain
from stacks.config import PROJECT

# One `key: value  # comment` line; the value is quoted or plain (a plain value has no '#').
_VALUE_LINE = re.compile(
    r"(?P<head>[ \t]+(?P<key>[^\s:#]+(?::[^\s:#]+)?):)"
    r"(?P<value>[ \t]+(?:'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^\s#](?:[^#\r\n]*[^\s#])?))?"
    r"(?P<tail>[ \t]+#[^\r\n]*|[ \t]*)(?P<eol>\r?\n?)"
)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _scalar(value: str) -> str:
    """A YAML scalar Pulumi reads back as `value`: plain when that is safe, else single-quoted.

    Pulumi reads plain scalars by YAML 1.2's core rules (`0o10` is 8, `yes` is text).
    """
    if _PLAIN.fullmatch(value) and resolve_plain(value) == value:
        return value
    return "'" + value.replace("'", "''") + "'"


def _config_block(lines: list[str]) -> tuple[int, int, str]:
    """(first line after `config:`, end of the block, indentation of its keys)."""
    start = next((i + 1 for i, line in enumerate(lines) if re.match(r"config:\s*(#.*)?$", line)))
    end, indent = len(lines), None
    for i in range(start, len(lines)):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not lines[i][0].isspace():
            end = i
            break
        if indent is None:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    return start, end, indent or "  "


def _key_span(lines: list[str], key: str, project: str) -> tuple[int, int] | None:
    """Lines [i, j) that hold `key` (with or without namespace): its line and deeper ones."""
    start, end, indent = _config_block(lines)
    names = {key, f"{project}:{key}"}
    for i in range(start, end):
        match = _VALUE_LINE.fullmatch(lines[i])
        if match and match["key"] in names and lines[i].startswith(indent + match["key"]):
            j = i + 1
            while j < end and lines[j].strip() and lines[j].startswith(indent + " "):
                j += 1
            return i, j
    return None


def set_key(
    text: str,
    key: str,
    value: str | None,
    anchors: tuple[str, ...] = (),
    flow: bool = False,
    project: str = PROJECT,
) -> str:
    """`text` with `project`'s `key` set to `value` (None: removed), every other line kept
    byte for byte.

    A new key goes after the first of `anchors` the file has, else first in `config:`. With
    `flow`, `value` is JSON text written as YAML's flow mapping (an object), not a string.
    """
    written = value if flow or value is None else _scalar(value)
    lines = text.splitlines(keepends=True)
    if not any(re.match(r"config:\s*(#.*)?$", line) for line in lines):
        if value is None:
            return text
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append("config:\n")
    span = _key_span(lines, key, project)
    eol = next((line[len(line.rstrip("\r\n")) :] for line in lines if line.endswith("\n")), "\n")
    if span is None:
        if value is None:
            return text
        start, _, indent = _config_block(lines)
        spans = (_key_span(lines, anchor, project) for anchor in anchors if anchor != key)
        anchor = next((span for span in spans if span is not None), None)
        at = anchor[1] if anchor else start
        lines.insert(at, f"{indent}{project}:{key}: {written}{eol}")
        return "".join(lines)
    i, j = span
    if value is None:
        del lines[i:j]
        return "".join(lines)
    match = _VALUE_LINE.fullmatch(lines[i])
    assert match is not None  # _key_span matched it
    line_eol = match["eol"] or ("" if j == len(lines) else eol)
    lines[i:j] = [f"{match['head']} {written}{match['tail']}{line_eol}"]
    return "".join(lines)
