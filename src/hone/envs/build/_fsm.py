"""An FSM spec (AutoWebWorld: variables, actions with preconditions and effects, goals) -> `SourceSpec` (kind "fsm").

The format (JSON or YAML; docs/env-specs.md has a complete example):

    fsm: checkout                      # the name (optional)
    variables:                         # finite domains: values [...], type: bool, or range: [lo, hi]
      cart: {values: [empty, filled], initial: empty}
    actions:
      add_item:
        description: Put an item into the cart.
        parameters: {item: [book, pen]}            # enum-valued
        requires: {logged_in: true, items: {"<": 3}, $item: {"!=": pen}}
        effects: {items: {add: 1}, cart: filled, last: $item}
    goals:
      two_items: {description: Put two items in the cart., when: {items: 2}}

A condition maps a variable (or `$param`) to a value, `$param`, or {op: operand} with op one of
== != < <= > >= in, "not in". Effects apply in order: a value, `$param`, or {add: n}; an effect
that would leave a domain blocks the action. Validation at load (each a one-line ConfigError):
unknown variables and parameters, values outside domains, actions never enabled, goals that hold
initially or are unreachable (breadth-first search, capped at `MAX_STATES`). The backend is
`_fsmcore.py` plus one tool per action and a `current_state` read tool; `data["tasks"]` holds one
unverified `BuiltTask` per goal and phrasing with the shortest path as reference.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hone.core import ConfigError

from . import _fsmcore as core
from ._inputkit import make_doc, problem, slug, usable_name
from ._spec import Backend, BuiltTask, Call, SourceSpec, ToolDoc

MAX_STATES = 200_000
"""Reachable states the validation explores before it gives up with a message."""

_TYPES = {str: "string", int: "integer", bool: "boolean"}


def is_fsm(document: Any) -> bool:
    return isinstance(document, dict) and ("fsm" in document or {"actions", "goals"} <= set(document))


def load_fsm(path: Path, document: Any, name: str | None = None, *, max_states: int = MAX_STATES) -> SourceSpec:
    """Validate an FSM spec and compile it: action tools, a backend, and reference tasks per goal."""
    fsm, docs, goals = _normalise(path, document)
    paths = _shortest_paths(path, fsm, goals, max_states)
    spec_name = name or slug(str(document.get("fsm") or document.get("name") or path.stem))
    observe = next(n for n in ("current_state", "current_state_2", "view_world") if n not in fsm["actions"])
    tools = [
        make_doc(
            a,
            docs[a],
            _parameters(fsm, a),
            returns="the variables after the action (JSON object)",
            effect="write" if fsm["actions"][a]["effects"] else "read",
        )
        for a in fsm["actions"]
    ]
    tools.append(
        ToolDoc(
            name=observe,
            description="Show the current state: every variable and its value.",
            returns="the variables (JSON object)",
            effect="read",
            utterances=["Show me the current state.", "What is the state right now?"],
        )
    )
    source = _compile(fsm, observe)
    scenario = re.sub(r"[^a-z0-9]+", "_", spec_name.lower()).strip("_")[:48] or "fsm"  # the one scenario's name
    tasks = _tasks(scenario, goals, paths, [t.name for t in tools])
    pools: dict[str, list[Any]] = {}
    for action in fsm["actions"].values():
        for param, domain in action["parameters"].items():
            pools.setdefault(param, [])
            pools[param] += [v for v in domain if v not in pools[param]]
    return SourceSpec(
        kind="fsm",
        name=spec_name,
        description=str(document.get("description", "")),
        tools=tools,
        backend=Backend(source=source, state={v: s["initial"] for v, s in fsm["variables"].items()}),
        data={"pools": pools, "fsm": fsm, "goals": goals, "tasks": tasks},
    )


def _normalise(path: Path, document: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
    if not isinstance(document, dict):
        raise problem(path, "", "an FSM spec must be an object", "give variables, actions and goals")
    for key in ("variables", "actions", "goals"):
        if not isinstance(document.get(key), dict) or not document[key]:
            raise problem(path, key, "is missing or empty", f"give `{key}` as a mapping of names to definitions")
    variables: dict[str, dict[str, Any]] = {}
    for var, raw in document["variables"].items():
        variables[str(var)] = _variable(path, str(var), raw)
    fsm: dict[str, Any] = {"variables": variables, "actions": {}}
    docs: dict[str, str] = {}
    param_docs: dict[str, str] = {}
    for action, raw in document["actions"].items():
        where = f"action {action!r}"
        if not isinstance(raw, dict) or not isinstance(raw.get("description"), str) or not raw["description"].strip():
            raise problem(path, where, "has no description", "add `description: what it does`")
        if not isinstance(action, str) or not usable_name(action):
            raise problem(
                path,
                where,
                "is not a usable tool name (letters, digits, _; not a Python keyword or builtin)",
                "rename it",
            )
        params: dict[str, list[Any]] = {}
        for p, spec in (raw.get("parameters") or {}).items():
            values = spec.get("values") if isinstance(spec, dict) else spec
            if not isinstance(values, list) or not values or not all(isinstance(v, str | int | bool) for v in values):
                raise problem(path, f"{where}, parameter {p!r}", "needs a non-empty list of values", "list them")
            params[str(p)] = values
            if isinstance(spec, dict) and isinstance(spec.get("description"), str):
                param_docs[f"{action}.{p}"] = spec["description"]
        fsm["actions"][action] = {
            "parameters": params,
            "requires": _conditions(path, where, raw.get("requires") or {}, variables, params),
            "effects": _effects(path, where, raw.get("effects") or {}, variables, params),
        }
        docs[action] = raw["description"].strip()
    fsm["parameter_docs"] = param_docs
    goals: dict[str, dict[str, Any]] = {}
    for goal, raw in document["goals"].items():
        where = f"goal {goal!r}"
        if not isinstance(raw, dict) or not isinstance(raw.get("description"), str) or not raw["description"].strip():
            raise problem(path, where, "has no description", "add `description:` (it becomes the task prompt)")
        if not isinstance(raw.get("when"), dict) or not raw["when"]:
            raise problem(path, where, "has no `when` conditions", "say which variable values reach it")
        phrasings = raw.get("phrasings") or []
        goals[str(goal)] = {
            "description": raw["description"].strip(),
            "phrasings": [str(p) for p in phrasings] if isinstance(phrasings, list) else [],
            "when": _conditions(path, where, raw["when"], variables, {}),
        }
    return fsm, docs, goals


def _variable(path: Path, var: str, raw: Any) -> dict[str, Any]:
    where = f"variable {var!r}"
    if not isinstance(raw, dict):
        raise problem(path, where, "must be an object", "give values/type/range and initial")
    if raw.get("type") == "bool" or raw.get("type") == "boolean":
        domain: list[Any] = [False, True]
    elif "range" in raw:
        lo_hi = raw["range"]
        if not (isinstance(lo_hi, list) and len(lo_hi) == 2 and all(type(x) is int for x in lo_hi)):
            raise problem(path, where, "range must be [low, high] integers", "e.g. range: [0, 5]")
        domain = list(range(lo_hi[0], lo_hi[1] + 1))
        if not domain or len(domain) > 1000:
            raise problem(path, where, f"range {lo_hi} is empty or over 1000 values", "use a small range")
    elif isinstance(raw.get("values"), list) and raw["values"]:
        domain = list(raw["values"])
    else:
        raise problem(path, where, "has no domain", "give values: [...], type: bool, or range: [low, high]")
    initial = raw.get("initial", domain[0])
    if initial not in domain:
        raise problem(path, where, f"initial value {initial!r} is outside its values", "pick one of them")
    return {"domain": domain, "initial": initial}


def _operand(path: Path, where: str, raw: Any, params: dict[str, list[Any]]) -> dict[str, Any]:
    if isinstance(raw, str) and raw.startswith("$"):
        if raw[1:] not in params:
            raise problem(path, where, f"unknown parameter {raw!r}", "declare it under `parameters`")
        return {"param": raw[1:]}
    return {"value": raw}


def _domain_of(name: str, variables: dict[str, dict[str, Any]], params: dict[str, list[Any]]) -> list[Any]:
    return params[name[1:]] if name.startswith("$") else list(variables[name]["domain"])


def _conditions(
    path: Path, where: str, raw: Any, variables: dict[str, dict[str, Any]], params: dict[str, list[Any]]
) -> list[list[Any]]:
    if not isinstance(raw, dict):
        raise problem(path, where, "conditions must be a mapping", "write {variable: value}")
    out: list[list[Any]] = []
    for name, test in raw.items():
        name = str(name)
        if name.startswith("$") and name[1:] not in params:
            raise problem(path, where, f"unknown parameter {name!r}", "declare it under `parameters`")
        if not name.startswith("$") and name not in variables:
            raise problem(path, where, f"unknown variable {name!r}", "declare it under `variables`")
        op, operand = ("==", test)
        if isinstance(test, dict):
            if len(test) != 1 or next(iter(test)) not in core._OPS:
                raise problem(path, where, f"condition on {name!r} is not {{op: value}}", f"use one of {core._OPS}")
            op, operand = next(iter(test.items()))
        parsed = _operand(path, where, operand, params)
        domain = _domain_of(name, variables, params)
        if "value" in parsed:
            values = parsed["value"] if op in ("in", "not in") else [parsed["value"]]
            if not isinstance(values, list):
                raise problem(path, where, f"`{op}` on {name!r} needs a list", "give [a, b]")
            if op in ("==", "!=", "in", "not in"):
                outside = [v for v in values if v not in domain]
                if outside:
                    raise problem(
                        path, where, f"value {outside[0]!r} is outside the values of {name!r}", f"use one of {domain}"
                    )
        if op in ("<", "<=", ">", ">=") and not all(type(v) is int for v in domain):
            raise problem(path, where, f"`{op}` needs an integer variable, {name!r} is not", "use == or in")
        out.append([name, op, parsed])
    return out


def _effects(
    path: Path, where: str, raw: Any, variables: dict[str, dict[str, Any]], params: dict[str, list[Any]]
) -> list[list[Any]]:
    if not isinstance(raw, dict):
        raise problem(path, where, "effects must be a mapping", "write {variable: new value}")
    out: list[list[Any]] = []
    for var, value in raw.items():
        var = str(var)
        if var not in variables:
            raise problem(path, where, f"effect on unknown variable {var!r}", "declare it under `variables`")
        domain = variables[var]["domain"]
        if isinstance(value, dict):
            if set(value) != {"add"} or type(value["add"]) is not int:
                raise problem(path, where, f"effect on {var!r} is not a value or {{add: n}}", "fix the effect")
            if not all(type(v) is int for v in domain):
                raise problem(path, where, f"`add` needs an integer variable, {var!r} is not", "assign a value")
            out.append([var, "add", {"value": value["add"]}])
            continue
        parsed = _operand(path, where, value, params)
        candidates = params[parsed["param"]] if "param" in parsed else [parsed["value"]]
        outside = [v for v in candidates if v not in domain]
        if outside:
            raise problem(
                path, where, f"effect sets {var!r} to {outside[0]!r}, outside its values", f"use one of {domain}"
            )
        out.append([var, "set", parsed])
    return out


def _moves(fsm: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for action, spec in fsm["actions"].items():
        names = list(spec["parameters"])
        for combo in itertools.product(*(spec["parameters"][n] for n in names)):
            yield action, dict(zip(names, combo, strict=True))


def _shortest_paths(
    path: Path, fsm: dict[str, Any], goals: dict[str, dict[str, Any]], max_states: int
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Breadth-first search from the initial state: each goal's shortest path (first found in a fixed order)."""
    order = list(fsm["variables"])
    start = {v: fsm["variables"][v]["initial"] for v in order}
    for goal, spec in goals.items():
        if core._fsm_holds(spec["when"], start, {}) is None:
            raise problem(path, f"goal {goal!r}", "already holds in the initial state", "change its conditions")
    moves = list(_moves(fsm))
    parent: dict[tuple[Any, ...], tuple[tuple[Any, ...], str, dict[str, Any]] | None] = {
        tuple(start[v] for v in order): None
    }
    queue = deque([start])
    found: dict[str, tuple[Any, ...]] = {}
    enabled: set[str] = set()
    while queue:
        values = queue.popleft()
        key = tuple(values[v] for v in order)
        for goal, spec in goals.items():
            if goal not in found and core._fsm_holds(spec["when"], values, {}) is None:
                found[goal] = key
        for action, args in moves:
            nxt = core._fsm_next(fsm, values, action, args)
            if isinstance(nxt, str):
                continue
            enabled.add(action)
            nkey = tuple(nxt[v] for v in order)
            if nkey not in parent:
                if len(parent) >= max_states:
                    raise ConfigError(
                        f"{path.name}: the state space exceeds {max_states} reachable states; "
                        "shrink the variables' domains (or split the machine)"
                    )
                parent[nkey] = (key, action, args)
                queue.append(nxt)
    for goal in goals:
        if goal not in found:
            raise problem(
                path,
                f"goal {goal!r}",
                "is unreachable from the initial state",
                "check its conditions and the actions' preconditions and effects",
            )
    never = [a for a in fsm["actions"] if a not in enabled]
    if never:
        raise problem(
            path,
            f"action {never[0]!r}",
            "is never enabled in any reachable state",
            "relax its preconditions or remove it",
        )
    paths: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for goal, key in found.items():
        steps: list[tuple[str, dict[str, Any]]] = []
        link = parent[key]
        while link is not None:
            key, action, args = link
            steps.append((action, args))
            link = parent[key]
        paths[goal] = steps[::-1]
    return paths


def _parameters(fsm: dict[str, Any], action: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for p, domain in fsm["actions"][action]["parameters"].items():
        kinds = {_TYPES.get(type(v), "string") for v in domain}
        props[p] = {
            "type": kinds.pop() if len(kinds) == 1 else "string",
            "enum": list(domain),
            "description": fsm["parameter_docs"].get(f"{action}.{p}", f"The {p}."),
        }
    return {"type": "object", "properties": props, "required": list(props)}


def _compile(fsm: dict[str, Any], observe: str) -> str:
    engine = Path(core.__file__).read_text(encoding="utf-8")
    lines = [engine, "", f"_HONE_FSM = __import__('json').loads({json.dumps(json.dumps(fsm, sort_keys=True))})", ""]
    lines += [
        "",
        "def _hone_act(action, args):",
        "    bad = _fsm_bad_args(_HONE_FSM, action, args)",
        "    if bad is not None:",
        "        raise ValueError(bad)",
        "    nxt = _fsm_next(_HONE_FSM, state, action, args)",
        "    if isinstance(nxt, str):",
        "        raise ValueError('action %s is not allowed now: %s' % (action, nxt))",
        "    state.clear()",
        "    state.update(nxt)",
        "    return dict(state)",
        "",
        "",
        f"def {observe}():",
        "    return dict(state)",
    ]
    for action in fsm["actions"]:
        lines += ["", "", f"def {action}(**arguments):", f"    return _hone_act({action!r}, arguments)"]
    return "\n".join(lines) + "\n"


def _tasks(
    scenario: str,
    goals: dict[str, dict[str, Any]],
    paths: dict[str, list[tuple[str, dict[str, Any]]]],
    offered: list[str],
) -> list[dict[str, Any]]:
    """One `BuiltTask` (as a dict) per goal and phrasing; `goal` holds the goal's conditions (reaching
    the goal by any path is what AutoWebWorld counts as success)."""
    tasks: list[dict[str, Any]] = []
    used: set[str] = set()
    for goal, spec in goals.items():
        text = spec["description"].rstrip(".")
        lower = text[0].lower() + text[1:]
        prompts = [
            *spec["phrasings"],
            f"{text}.",
            f"Using the available actions, {lower}.",
            f"Please {lower}, one step at a time.",
        ]
        steps = paths[goal]
        reference = [[Call(name=action, arguments=args)] for action, args in steps]
        key, n = slug(goal), 2
        while key in used:  # goals "a-b" and "a_b" keep distinct task ids
            key, n = f"{slug(goal)}_{n}", n + 1
        used.add(key)
        for k, prompt in enumerate(dict.fromkeys(prompts), start=1):
            task = BuiltTask(
                id=f"fsm-{key}-{k}",
                scenario=scenario,
                level=1 if len(steps) == 1 else 4,
                prompt=prompt,
                offered=list(offered),
                reference=reference,
                phrasing=f"goal-{k}",
                goal=spec["when"],
            )
            tasks.append(task.model_dump())
    return tasks
