"""Pulumi's reading of its YAML files: gopkg.in/yaml.v3's scalar rules, and Go's JSON for values.

The Pulumi CLI (sdk v3.272.0, sdk/go/common/workspace/loaders.go and resource/config) parses
stack files with yaml.v3 v3.0.1, writes them back and parses them again, then turns each value
into the string the program gets: strings as they are, anything else as Go's json.Marshal
writes it. PyYAML reads YAML 1.1, where `yes` is true and `3:00` is 180; this module reads
plain scalars as yaml.v3's resolve.go does instead, so the offline tools see what `pulumi up`
sees. tests/harness/stackconfig runs Pulumi's own loader to judge it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_SPECIAL_FLOATS = {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
# resolve.go's yamlStyleFloat, and the shape Go's strconv.ParseFloat reads after a leading "."
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
# Go's strconv.ParseInt(s, 0, 64) and ParseUint: an optional sign, then 0x, 0o, 0b or a
# leading 0 (octal) or decimal digits. No number of a longer spelling fits in 64 bits.
_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_LONGEST_INT = 70
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
# parseTimestamp: the Go layouts yaml.v3 tries, after checking for four digits and "-".
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:\.(?P<frac>[0-9]{1,9}))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_PLAIN_TAG = "tag:bookinfo-mesh,2026:plain"
_CORE = "tag:yaml.org,2002:"


class PulumiYamlError(ValueError):
    """YAML that Pulumi's loader refuses, with its reason."""


@dataclass(frozen=True)
class GoTime:
    """A YAML timestamp as Go's time.Time holds it: the instant, and its offset from UTC."""

    moment: datetime.datetime  # aware

    def _fraction(self) -> str:
        digits = f"{self.moment.microsecond:06d}".rstrip("0")
        return f".{digits}" if digits else ""

    def _offset(self) -> int:
        offset = self.moment.utcoffset()
        return int(offset.total_seconds()) if offset else 0

    def go_string(self) -> str:
        """time.Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST"."""
        seconds = self._offset()
        sign = "-" if seconds < 0 else "+"
        numeric = f"{sign}{abs(seconds) // 3600:02d}{abs(seconds) % 3600 // 60:02d}"
        name = "UTC" if self.moment.tzinfo is datetime.UTC else numeric
        stamp = self.moment.strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp}{self._fraction()} {numeric} {name}"

    def rfc3339(self) -> str:
        """What json.Marshal writes for a time.Time: RFC 3339 with nanoseconds, trimmed."""
        seconds = self._offset()
        if self.moment.tzinfo is datetime.UTC:
            zone = "Z"
        else:
            sign = "-" if seconds < 0 else "+"
            zone = f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
        return self.moment.strftime("%Y-%m-%dT%H:%M:%S") + self._fraction() + zone


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), else ParseUint(text, 0, 64), as yaml.v3 tries them."""
    if len(text) > _LONGEST_INT or not (match := _GO_INT.fullmatch(text)):
        return None
    sign, digits = match.groups()
    body = digits.lower()
    if body.startswith(("0x", "0o", "0b")):
        value = int(body[2:], {"x": 16, "o": 8, "b": 2}[body[1]])
    elif body.startswith("0") and len(body) > 1:
        value = int(body[1:], 8)
    else:
        value = int(body)
    value = -value if sign == "-" else value
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if not sign and value <= _UINT64_MAX:
        return value
    return None


def _timestamp(text: str) -> GoTime | None:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    try:
        if match["sep"] == " " and match["zone"]:
            return None  # the space layout has no zone
        zone = datetime.UTC
        if match["zone"] and match["zone"] != "Z":
            hours, minutes = int(match["zone"][1:3]), int(match["zone"][4:6])
            if hours > 23 or minutes > 59:
                return None
            delta = datetime.timedelta(hours=hours, minutes=minutes)
            zone = datetime.timezone(delta if match["zone"][0] == "+" else -delta)
        moment = datetime.datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"] or 0),
            int(match["mi"] or 0),
            int(match["s"] or 0),
            int((match["frac"] or "").ljust(6, "0")[:6]),
            tzinfo=zone,
        )
    except ValueError:  # a month 13, a February 30th
        return None
    return GoTime(moment)


def resolve_plain(text: str) -> Any:
    """A plain (unquoted, untagged) scalar as yaml.v3's resolve() reads it."""
    first = text[:1]
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if first == ".":
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    if not first or not (first.isascii() and (first.isdigit() or first in "+-")):
        return text
    if (moment := _timestamp(text)) is not None:
        return moment
    plain = text.replace("_", "")
    if (number := _go_int(plain)) is not None:
        return number
    if _YAML_FLOAT.fullmatch(plain):
        value = float(plain)
        if math.isfinite(value):  # Go's ParseFloat fails past the float range
            return value
    return text


def _explicit(tag: str, text: str) -> Any:
    """A scalar with an explicit core tag, as yaml.v3 decodes it (or refuses it)."""
    short = "!!" + tag.removeprefix(_CORE)
    if short == "!!str":
        return text
    if short == "!!binary":
        try:
            return base64.b64decode(text, validate=False).decode("utf-8", "replace")
        except binascii.Error:
            raise PulumiYamlError(f"!!binary value is not base64: {text[:40]!r}") from None
    value = resolve_plain(text)
    found = {
        bool: "!!bool",
        int: "!!int",
        float: "!!float",
        type(None): "!!null",
        GoTime: "!!timestamp",
    }.get(type(value), "!!str")
    if found == short:
        return value
    if short == "!!float" and found == "!!int":
        return float(value)
    raise PulumiYamlError(f"cannot decode {found} `{text[:40]}` as a {short}")


class _Loader(yaml.SafeLoader):
    """yaml.v3's view of a document: its scalar rules, and no mapping key twice."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return f"{_CORE}merge" if value == "<<" else _PLAIN_TAG
        return super().resolve(kind, value, implicit)

    def scan_to_next_token(self) -> None:
        """Spaces, comments and line breaks skipped, and tabs where libyaml skips them.

        yaml.v3's scanner (scannerc.go) takes a tab as a separator in flow context and in
        block context where no simple key may start, as after `key:`; PyYAML never does.
        """
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            while self.peek() == " " or (
                self.peek() == "\t" and (self.flow_level or not self.allow_simple_key)
            ):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if not self.scan_line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == f"{_CORE}merge":
                continue  # `<<: *base` brings keys the mapping may override
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f'mapping key "{key}" already defined at line {seen[key]}',
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {}
_Loader.add_constructor(_PLAIN_TAG, lambda loader, node: resolve_plain(node.value))
for _name in ("str", "int", "float", "bool", "null", "timestamp", "binary"):
    _Loader.add_constructor(
        f"{_CORE}{_name}",
        lambda loader, node: _explicit(node.tag, loader.construct_scalar(node)),
    )


def _other_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    """A tag yaml.v3 does not know (`!foo bar`): the value as if untagged, a scalar as text."""
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_multi_constructor("!", _other_tag)


def load(text: str) -> Any:
    """The first document of `text`, as yaml.v3 reads it; yaml.YAMLError if it cannot be."""
    documents = yaml.load_all(text, Loader=_Loader)
    try:
        return next(documents, None)  # Pulumi reads the first document and ignores the rest
    finally:
        documents.close()


def _reject_non_finite(value: Any) -> None:
    """Go's json.Marshal refuses infinities and NaN, which makes Pulumi refuse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        sign = "-" if value < 0 else "+"
        raise PulumiYamlError(f"unsupported value: {'NaN' if math.isnan(value) else sign + 'Inf'}")
    if isinstance(value, dict):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, list):
        for item in value:
            _reject_non_finite(item)


def check_encodable(value: Any) -> None:
    """PulumiYamlError if Pulumi's JSON step would refuse `value` (and with it, the file)."""
    _reject_non_finite(value)


def go_float(value: float) -> str:
    """A float as Go's encoding/json writes it: shortest digits, exponent only far out."""
    if value == 0:
        return "0"  # -0 reads back as the int 0 once Pulumi writes the file out and reads it
    digits = Decimal(repr(value)).normalize()
    if 1e-6 <= abs(value) < 1e21:
        return format(digits, "f")
    sign, numerals, exponent = digits.as_tuple()
    mantissa = "".join(map(str, numerals))
    power = int(exponent) + len(mantissa) - 1
    shown = mantissa[0] + (f".{mantissa[1:]}" if len(mantissa) > 1 else "")
    return f"{'-' if sign else ''}{shown}e{'-' if power < 0 else '+'}{abs(power):02d}".replace(
        "e-0", "e-"
    )


def _go_string(text: str) -> str:
    """A JSON string as Go writes it: UTF-8 kept, <, > and & and U+2028/9 escaped."""
    quoted = json.dumps(text, ensure_ascii=False)
    for character, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        quoted = quoted.replace(character, escaped)
    return quoted


def go_json(value: Any) -> str:
    """`value` as Go's json.Marshal writes it: compact, map keys sorted, Go's numbers."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, GoTime):
        return _go_string(value.rfc3339())
    if isinstance(value, dict):
        items = sorted((config_string(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for k, v in items) + "}"
    return "[" + ",".join(go_json(item) for item in value) + "]"


def config_string(value: Any) -> str:
    """The string a program gets for a config value (config.Value's MarshalString)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, GoTime):
        return value.go_string()
    return go_json(value)
