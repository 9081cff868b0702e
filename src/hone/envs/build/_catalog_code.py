"""Code generation for catalog backends: one small Python module per scenario (runs only in the sandbox).

The module follows the backend contract of `_spec.Backend`: it reads and writes the global
`state` ({entity: {id: record}}), defines one function per tool, and raises `ValueError` with a
one-line reason for bad input (a wrong type, a value outside an enum, an unknown id). Numbers
it returns are rounded to 2 decimals so answers compare cleanly.
"""

from __future__ import annotations

from typing import Any, Protocol

_PRELUDE = """import math
import re


def _str(v, a):
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"{a} must be a non-empty string")
    return v.strip()


def _num(v, a, lo=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{a} must be a number, got {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{a} must be at least {lo}, got {v!r}")
    return v


def _int(v, a, lo=None):
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{a} must be an integer, got {v!r}")
    return _num(v, a, lo)


def _enum(v, a, allowed):
    if v not in allowed:
        raise ValueError(f"{a} must be one of {', '.join(allowed)}; got {v!r}")
    return v


def _pattern(v, a, rx, shape):
    if not isinstance(v, str) or not re.fullmatch(rx, v):
        raise ValueError(f"{a} must look like {shape}, got {v!r}")
    return v


def _row(t, k):
    if not isinstance(k, str) or k not in state[t]:
        raise ValueError(f"unknown {_N[t][0]} ID {k!r}")
    return state[t][k]


def _key(t, k):
    _row(t, k)
    return k


def _find(t, f, v):
    want = _str(v, f).casefold()
    for k in sorted(state[t]):
        if str(state[t][k][f]).casefold() == want:
            return k
    raise ValueError(f"no {_N[t][0]} has {f} {v!r}")


def _rows(t, f=None, v=None):
    return [(k, r) for k, r in sorted(state[t].items()) if f is None or r[f] == v]


def _r(x):
    return round(x, 2) if isinstance(x, float) else x


def _agg(op, t, vals):
    if not vals and op == "sum":
        return 0
    if not vals:
        raise ValueError(f"no {_N[t][1]} match")
    if op == "sum":
        return _r(float(sum(vals))) if any(isinstance(x, float) for x in vals) else sum(vals)
    if op == "avg":
        return round(sum(vals) / len(vals), 2)
    return max(vals) if op == "max" else min(vals)


def _best(t, rows, f, high):
    if not rows:
        raise ValueError(f"no {_N[t][1]} match")
    pick = max if high else min
    return pick(rows, key=lambda kr: kr[1][f])[0]


def _new(t, prefix, rec):
    n = max([int(k.rsplit("-", 1)[1]) for k in state[t]] or [100]) + 1
    k = f"{prefix}-{n}"
    state[t][k] = rec
    return k
"""


class FieldLike(Protocol):
    name: str
    label: str
    kind: Any
    enum: list[str] | None
    ref: str | None
    range: tuple[str, float, float] | None


def field_check(f: FieldLike, var: str) -> str:
    """A Python expression that validates argument `var` against field `f` and evaluates to the value."""
    if f.enum:
        return f"_enum({var}, {var!r}, {tuple(f.enum)!r})"
    if f.ref:
        return f"_key({f.ref!r}, {var})"
    if f.range:
        kind, lo, _ = f.range
        low = ", 0" if lo >= 0 else ""
        return f"_int({var}, {var!r}{low})" if kind == "int" else f"_num({var}, {var!r}{low})"
    if f.kind == "date":
        return f"_pattern({var}, {var!r}, r'\\d{{4}}-\\d{{2}}-\\d{{2}}', 'YYYY-MM-DD')"
    if f.kind == "time":
        return f"_pattern({var}, {var!r}, r'\\d{{2}}:\\d{{2}}', 'HH:MM')"
    return f"_str({var}, {var!r})"


def _body(i: dict[str, Any]) -> list[str]:
    op, t, f, params = i["op"], i["table"], i.get("field"), i["params"]
    key = params[0] if params else ""
    if op == "find":
        return [f"return _find({t!r}, {f!r}, {params[0]})"]
    if op == "get":
        return [f"return _r(_row({t!r}, {key})[{f!r}])"]
    if op == "set":
        return [f"r = _row({t!r}, {key})", f"r[{f!r}] = {i['check']}", f"return r[{f!r}]"]
    if op == "del":
        return [f"_row({t!r}, {key})", f"del state[{t!r}][{key}]", f"return {key}"]
    if op in ("inc", "dec"):
        arg = i["arg"]
        body = [f"r = _row({t!r}, {key})", f"a = _num({arg}, {arg!r})"]
        body.append(f"if a <= 0:\n        raise ValueError('{arg} must be positive, got ' + repr(a))")
        if op == "dec":
            body.append(
                f"if a > r[{f!r}]:\n        raise ValueError('not enough: ' + {key} + ' has ' + repr(r[{f!r}]))"
            )
        sign = "+" if op == "inc" else "-"
        return [*body, f"r[{f!r}] = _r(r[{f!r}] {sign} a)", f"return r[{f!r}]"]
    if op == "add":
        fields = [f"{name!r}: {check}" for name, check in i["checks"]]
        fields += [f"{name!r}: {value!r}" for name, value in i["defaults"].items()]
        return [f"return _new({t!r}, {i['prefix']!r}, {{{', '.join(fields)}}})"]
    if op in ("calc", "code"):
        checks = [f"{p} = {check}" for p, check in i["checks"]]
        return checks + list(i["body"])
    # count / sum / avg / max / min / top / bottom, filtered by nothing, an enum field or a parent id
    by = i.get("by")
    lines: list[str] = []
    if by and i.get("ref"):
        lines.append(f"_row({i['ref']!r}, {params[0]})")
        rows = f"_rows({t!r}, {by!r}, {params[0]})"
    elif by:
        lines.append(f"{params[0]} = {i['check_by']}")
        rows = f"_rows({t!r}, {by!r}, {params[0]})"
    else:
        rows = f"_rows({t!r})"
    if op == "count":
        return [*lines, f"return len({rows})"]
    if op in ("top", "bottom"):
        return [*lines, f"return _best({t!r}, {rows}, {f!r}, {op == 'top'})"]
    return [*lines, f"return _agg({op!r}, {t!r}, [r[{f!r}] for _, r in {rows}])"]


def backend_source(entities: dict[str, tuple[str, str]], impls: list[dict[str, Any]]) -> str:
    """The module text: the prelude, entity names for messages, lookup tables, one function per tool."""
    out = [_PRELUDE, f"_N = {entities!r}\n"]
    for impl in impls:
        for name, table in impl.get("tables", {}).items():
            out.append(f"{name} = {table!r}\n")
    for impl in impls:
        args = ", ".join(impl["params"])
        head = f"def {impl['name']}(*, {args}):" if args else f"def {impl['name']}():"
        out.append("\n" + head + "\n" + "\n".join("    " + line for line in _body(impl)) + "\n")
    return "\n".join(out)
