"""The FSM semantics, written once: `_fsm.py` uses it for validation and the shortest paths, and its
source text is the head of every compiled FSM backend (so the sandbox runs exactly these rules).

Standard library only, no hone imports: this file is copied into the sandbox. A normalised FSM is
plain JSON: `variables` {name: {"domain": [...], "initial": v}}, `actions` {name: {"parameters":
{p: [values]}, "requires": [[name, op, operand]], "effects": [[var, op, operand]]}}; a condition's
name is a variable or `$param`, an operand is {"value": v} or {"param": p}; effect ops are "set"/"add".
"""

from __future__ import annotations

from typing import Any

_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")


def _fsm_operand(operand: dict[str, Any], args: dict[str, Any]) -> Any:
    return args[operand["param"]] if "param" in operand else operand["value"]


def _fsm_test(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if not isinstance(left, int) or not isinstance(right, int):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _fsm_show(value: Any) -> str:
    return "true" if value is True else "false" if value is False else repr(value)


def _fsm_holds(conditions: list[Any], values: dict[str, Any], args: dict[str, Any]) -> str | None:
    """None when every condition holds, else why the first one fails (in words)."""
    for name, op, operand in conditions:
        left = args[name[1:]] if name.startswith("$") else values[name]
        right = _fsm_operand(operand, args)
        if not _fsm_test(left, op, right):
            shown = "[" + ", ".join(_fsm_show(v) for v in right) + "]" if isinstance(right, list) else _fsm_show(right)
            return f"{name.lstrip('$')} is {_fsm_show(left)}, it must be {op} {shown}"
    return None


def _fsm_bad_args(fsm: dict[str, Any], action: str, args: dict[str, Any]) -> str | None:
    """Why the arguments do not fit the action's parameters (bad input), or None."""
    params: dict[str, list[Any]] = fsm["actions"][action]["parameters"]
    for name in args:
        if name not in params:
            return f"{action} has no parameter {name!r}"
    for name, domain in params.items():
        if name not in args:
            return f"{action} needs the parameter {name!r}"
        if args[name] not in domain:
            return f"{name} must be one of {', '.join(_fsm_show(v) for v in domain)}"
    return None


def _fsm_next(fsm: dict[str, Any], values: dict[str, Any], action: str, args: dict[str, Any]) -> dict[str, Any] | str:
    """The variables after `action(args)`, or why the action is not allowed in `values`."""
    spec = fsm["actions"][action]
    why = _fsm_holds(spec["requires"], values, args)
    if why is not None:
        return why
    new = dict(values)
    for var, op, operand in spec["effects"]:
        value = _fsm_operand(operand, args)
        new[var] = new[var] + value if op == "add" else value
        if new[var] not in fsm["variables"][var]["domain"]:
            return f"{var} would become {_fsm_show(new[var])}, outside its values"
    return new
