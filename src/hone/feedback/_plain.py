"""Plain data as tagged JSON: what crosses between a sandboxed candidate and the trusted parent.

Only values of exactly these built-in types are encodable: None, bool, int, float (nan and
inf included), str, bytes, list, tuple, dict, set, frozenset. `encode` (hone's side: expected
values, arguments) refuses subclasses ("unencodable: MyInt"); the sandboxed runner sends a
subclass instance as its base type's value. Either way what the parent decodes can only be
built-in values with built-in comparison, hashing and repr.

    None, True/False  -> null, true/false     str     -> a JSON string
    int               -> ["i", hex]           float   -> ["f", repr]     bytes -> ["b", hex]
    list/tuple        -> ["l"/"t", [...]]     set/frozenset -> ["s"/"fs", [...]]
    dict              -> ["d", [[key, value], ...]]

JSON numbers never appear, so the parent never parses a number literal; ints travel in hex
(linear to parse, no digit-count quadratic). `loads` (the parent's side) enforces hard limits
(`PlainLimits`) and raises `PlainError` for anything else. Sandboxed programs carry their own
copy of the encoder (`_calls.RUNNER_LIB`); what they print is untrusted, only `loads` is trusted.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

_SCALARS = (type(None), bool, str)
_SEQ_TAGS: dict[type, str] = {list: "l", tuple: "t", set: "s", frozenset: "fs"}
_SEQ_TYPES = {"l": list, "t": tuple, "s": set, "fs": frozenset}


class PlainError(ValueError):
    """A value is not plain data, or an encoded text breaks the format or a limit."""


@dataclass(frozen=True)
class PlainLimits:
    """Hard limits on what `loads` accepts from an untrusted side."""

    max_bytes: int = 1_000_000
    max_depth: int = 64
    max_elements: int = 200_000
    # 14000 bits, about 4215 decimal digits: under CPython's int-to-str limit (4300), so every decoded value
    # has a repr (a test's message, the feedback text) and str() of it cannot raise ValueError in trusted code
    max_int_hex_digits: int = 3_500
    max_hash_collisions: int = 32  # per hash value in one set or dict: defeats crafted int collisions


def encode(value: Any, _depth: int = 0) -> Any:
    """`value` as JSON-ready tagged data; raises PlainError naming the first non-plain type found."""
    if _depth > 200:
        raise PlainError("nested too deeply")
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is int:
        return ["i", format(value, "x")]
    if kind is float:
        return ["f", repr(value)]
    if kind is bytes:
        return ["b", value.hex()]
    tag = _SEQ_TAGS.get(kind)
    if tag is not None:
        return [tag, [encode(v, _depth + 1) for v in value]]
    if kind is dict:
        return ["d", [[encode(k, _depth + 1), encode(v, _depth + 1)] for k, v in value.items()]]
    raise PlainError(f"unencodable: {kind.__name__}")


def dumps(value: Any) -> str:
    """`value` encoded as one line of JSON."""
    return json.dumps(encode(value), separators=(",", ":"))


def _no_number(text: str) -> Any:
    raise PlainError("a JSON number (numbers travel tagged)")


class _Decoder:
    def __init__(self, limits: PlainLimits) -> None:
        self.limits = limits
        self.elements = 0

    def value(self, node: Any, depth: int) -> Any:
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise PlainError(f"more than {self.limits.max_elements} elements")
        if depth > self.limits.max_depth:
            raise PlainError(f"nested deeper than {self.limits.max_depth}")
        if node is None or type(node) is bool or type(node) is str:
            return node
        if type(node) is not list or len(node) != 2 or type(node[0]) is not str:
            raise PlainError("not a tagged value")
        tag, body = node
        if tag in ("i", "f", "b"):
            if type(body) is not str:
                raise PlainError(f"tag {tag!r} needs a string")
            return self.atom(tag, body)
        if type(body) is not list:
            raise PlainError(f"tag {tag!r} needs a list")
        if tag == "d":
            pairs = []
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise PlainError("a dict entry is not a [key, value] pair")
                pairs.append((self.value(pair[0], depth + 1), self.value(pair[1], depth + 1)))
            self.check_hashes([k for k, _ in pairs])
            return dict(pairs)
        kind = _SEQ_TYPES.get(tag)
        if kind is None:
            raise PlainError(f"unknown tag {tag[:20]!r}")
        items = [self.value(v, depth + 1) for v in body]
        if kind is set or kind is frozenset:
            self.check_hashes(items)
        return kind(items)

    def atom(self, tag: str, body: str) -> Any:
        if tag == "i":
            digits = body[1:] if body.startswith("-") else body
            if (
                not digits
                or len(digits) > self.limits.max_int_hex_digits
                or not all(c in "0123456789abcdef" for c in digits)
            ):
                raise PlainError("a bad or too long int")
            return int(body, 16)
        if tag == "f":
            if len(body) > 40:
                raise PlainError("a bad float")
            try:
                return float(body)
            except ValueError:
                raise PlainError("a bad float") from None
        if len(body) > 2 * self.limits.max_bytes:
            raise PlainError("bytes too long")
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise PlainError("bad bytes") from None

    def check_hashes(self, keys: list[Any]) -> None:
        try:
            counts = Counter(hash(k) for k in keys)
        except TypeError:
            raise PlainError("an unhashable set element or dict key") from None
        if keys and max(counts.values()) > self.limits.max_hash_collisions:
            raise PlainError("too many hash collisions in one set or dict")


def loads_node(text: str | bytes, limits: PlainLimits | None = None) -> Any:
    """Parse untrusted `text` as JSON without numbers, within `limits.max_bytes`; the raw (still tagged) node."""
    limits = limits or PlainLimits()
    if len(text) > limits.max_bytes:
        raise PlainError(f"more than {limits.max_bytes} bytes")
    try:
        return json.loads(text, parse_int=_no_number, parse_float=_no_number, parse_constant=_no_number)
    except PlainError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PlainError(f"not JSON ({type(exc).__name__})") from None


def decode_node(node: Any, limits: PlainLimits | None = None) -> Any:
    """A tagged node (from `loads_node`) as built-in values, within `limits`; PlainError otherwise."""
    try:
        return _Decoder(limits or PlainLimits()).value(node, 0)
    except RecursionError:
        raise PlainError("nested too deeply") from None


def loads(text: str | bytes, limits: PlainLimits | None = None) -> Any:
    """Decode untrusted `text` into built-in values only, within `limits`; PlainError otherwise."""
    return decode_node(loads_node(text, limits), limits)


def plain_repr(value: Any) -> str:
    """`repr(value)` for feedback text; never raises (the value may be the candidate's, and the caller is trusted)."""
    try:
        return repr(value)
    except (ValueError, RecursionError, MemoryError):  # an int past the int-to-str digit limit, deep nesting
        return f"<a {type(value).__name__} that has no printable form>"


def plain_equal(got: Any, want: Any, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    """Strict equality of plain values: types match exactly (True is not 1, a tuple is not a list; set members
    and dict keys included), nan equals nan, and a float `want` accepts an int or float `got` within the
    tolerances."""
    if type(want) is float:
        if type(got) not in (int, float):
            return False
        got_f = float(got)
        if math.isnan(want) or math.isnan(got_f):
            return math.isnan(want) and math.isnan(got_f)
        return got_f == want or math.isclose(got_f, want, rel_tol=rel_tol, abs_tol=abs_tol)
    if type(got) is not type(want):
        return False
    if type(want) in (list, tuple):
        return len(got) == len(want) and all(
            plain_equal(g, w, rel_tol, abs_tol) for g, w in zip(got, want, strict=True)
        )
    if type(want) is dict:
        by_key = _typed_keys(got)
        return len(by_key) == len(want) and all(
            _typed(k) in by_key and plain_equal(by_key[_typed(k)], v, rel_tol, abs_tol) for k, v in want.items()
        )
    if type(want) in (set, frozenset):
        return {_typed(x) for x in got} == {_typed(x) for x in want}
    return bool(got == want)  # scalars and bytes: built-in equality on built-in values


def _typed(key: Any) -> Any:
    """A hashable plain value with its type kept at every level: built-in hashing takes True, 1 and 1.0 for
    the same set member or dict key, and exact comparison must not."""
    kind = type(key)
    if kind is tuple:
        return ("t", tuple(_typed(x) for x in key))
    if kind is frozenset:
        return ("fs", frozenset(_typed(x) for x in key))
    return (kind.__name__, key)


def _typed_keys(d: dict[Any, Any]) -> dict[Any, Any]:
    return {_typed(k): v for k, v in d.items()}


def plain_same(a: Any, b: Any) -> bool:
    """Whether two plain values are the same data: exact types all the way down, floats equal bit for bit in
    sign (0.0 is not -0.0) with nan equal to nan. How recorded arguments are matched."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(plain_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        by_key = _typed_keys(b)
        return len(by_key) == len(a) and all(
            _typed(k) in by_key and plain_same(v, by_key[_typed(k)]) for k, v in a.items()
        )
    if type(a) in (set, frozenset):
        return {_typed(x) for x in a} == {_typed(x) for x in b}
    return bool(a == b)
