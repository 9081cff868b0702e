"""FSM specs (AutoWebWorld) as a build input: validation, semantics, shortest reference paths, the sandboxed backend."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from _inputs_sandbox import run_calls

from hone.core import ConfigError
from hone.envs.build import _fsmcore as core
from hone.envs.build._fsm import _moves, load_fsm
from hone.envs.build._inputs import load_source
from hone.envs.build._spec import BuiltTask

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def checkout():  # type: ignore[no-untyped-def]
    return load_source(SPECS / "checkout.yaml")


def test_actions_become_tools(checkout) -> None:  # type: ignore[no-untyped-def]
    assert checkout.kind == "fsm" and checkout.name == "checkout"
    assert [t.name for t in checkout.tools] == ["log_in", "add_item", "remove_item", "pay", "ship", "current_state"]
    add = checkout.tools[1]
    assert add.parameters == {
        "type": "object",
        "properties": {"item": {"type": "string", "enum": ["book", "pen", "lamp"], "description": "Which item."}},
        "required": ["item"],
    }
    assert add.effect == "write" and checkout.tools[-1].effect == "read"
    assert checkout.data["pools"] == {"item": ["book", "pen", "lamp"], "carrier": ["post", "courier"]}
    assert checkout.backend.state == {"logged_in": False, "items": 0, "last_item": "none", "order": "open"}


def test_tasks_follow_the_shortest_paths(checkout) -> None:  # type: ignore[no-untyped-def]
    goals = checkout.data["goals"]
    # Each task carries its goal's conditions (completeness checks them, not the reference's exact state).
    assert all(t["goal"] == goals[t["id"].split("-")[1]]["when"] for t in checkout.data["tasks"])
    tasks = [BuiltTask.model_validate(t) for t in checkout.data["tasks"]]
    assert not any(t.verified for t in tasks)
    by_goal: dict[str, list[BuiltTask]] = {}
    for task in tasks:
        by_goal.setdefault(task.id.rsplit("-", 1)[0], []).append(task)
    assert set(by_goal) == {"fsm-logged_in", "fsm-lamp_in_cart", "fsm-two_paid", "fsm-shipped"}
    steps = {g: [(c.name, c.arguments) for step in ts[0].reference for c in step] for g, ts in by_goal.items()}
    assert steps["fsm-logged_in"] == [("log_in", {})]
    assert steps["fsm-lamp_in_cart"] == [("log_in", {}), ("add_item", {"item": "lamp"})]
    assert steps["fsm-shipped"] == [
        ("log_in", {}),
        ("add_item", {"item": "book"}),
        ("pay", {}),
        ("ship", {"carrier": "post"}),
    ]
    assert [t.level for t in by_goal["fsm-logged_in"]] == [1, 1, 1] and by_goal["fsm-shipped"][0].level == 4
    prompts = [t.prompt for t in by_goal["fsm-two_paid"]]
    assert prompts[0] == "Get two things into the cart and pay." and len(set(prompts)) == len(prompts) == 4
    assert by_goal["fsm-shipped"][0].offered == [t.name for t in checkout.tools]


def _reaches(fsm: dict[str, Any], when: list[Any], depth: int) -> bool:
    """Brute force, independent of the search: does any sequence of `depth` moves end in a goal state?"""
    start = {v: s["initial"] for v, s in fsm["variables"].items()}
    moves = list(_moves(fsm))
    for sequence in itertools.product(moves, repeat=depth):
        values: dict[str, Any] | str = start
        for action, args in sequence:
            values = core._fsm_next(fsm, values, action, args)  # type: ignore[arg-type]
            if isinstance(values, str):
                break
        if not isinstance(values, str) and core._fsm_holds(when, values, {}) is None:
            return True
    return False


def test_no_shorter_path_exists(checkout) -> None:  # type: ignore[no-untyped-def]
    fsm = checkout.data["fsm"]
    for goal, spec in checkout.data["goals"].items():
        task = next(t for t in checkout.data["tasks"] if t["id"].startswith(f"fsm-{goal}-"))
        length = len(task["reference"])
        assert _reaches(fsm, spec["when"], length)
        assert not any(_reaches(fsm, spec["when"], k) for k in range(1, length)), goal


def test_semantics_preconditions_effects_goals(checkout) -> None:  # type: ignore[no-untyped-def]
    fsm = checkout.data["fsm"]
    start = dict(checkout.backend.state)
    assert core._fsm_next(fsm, start, "pay", {}) == "logged_in is false, it must be == true"
    logged = core._fsm_next(fsm, start, "log_in", {})
    assert logged == {**start, "logged_in": True}
    assert core._fsm_next(fsm, logged, "log_in", {}) == "logged_in is true, it must be == false"
    one = core._fsm_next(fsm, logged, "add_item", {"item": "pen"})
    assert one == {**logged, "items": 1, "last_item": "pen"}  # increment + assignment from a parameter
    full = {**one, "items": 3}
    assert core._fsm_next(fsm, full, "add_item", {"item": "pen"}) == "items is 3, it must be < 3"
    paid = {**one, "order": "paid"}
    assert core._fsm_next(fsm, paid, "ship", {"carrier": "courier"}) == "carrier is 'courier', it must be != 'courier'"
    assert core._fsm_holds(checkout.data["goals"]["two_paid"]["when"], {**paid, "items": 2}, {}) is None
    assert core._fsm_holds(checkout.data["goals"]["two_paid"]["when"], paid, {}) == "items is 1, it must be == 2"
    assert core._fsm_bad_args(fsm, "add_item", {"item": "sofa"}) == "item must be one of 'book', 'pen', 'lamp'"


def test_backend_in_the_sandbox(checkout) -> None:  # type: ignore[no-untyped-def]
    shipped = next(t for t in checkout.data["tasks"] if t["id"] == "fsm-shipped-1")
    path = [(c["name"], c["arguments"]) for step in shipped["reference"] for c in step]
    done, blocked, courier, bad = run_calls(
        checkout,
        [*path, ("current_state", {})],
        [("pay", {})],
        [("log_in", {}), ("add_item", {"item": "pen"}), ("pay", {}), ("ship", {"carrier": "courier"})],
        [("log_in", {}), ("add_item", {"item": "sofa"})],
    )
    final = {"logged_in": True, "items": 1, "last_item": "book", "order": "shipped"}
    assert done.state == final and done.results is not None and done.results[-1] == [final]
    assert done.results[1] == [{"logged_in": True, "items": 1, "last_item": "book", "order": "open"}]
    assert blocked.error == "pay: value_error: action pay is not allowed now: logged_in is false, it must be == true"
    assert courier.failed_step == 3 and "action ship is not allowed now: carrier is 'courier'" in (courier.error or "")
    assert bad.error == "add_item: value_error: item must be one of 'book', 'pen', 'lamp'"


def _base() -> dict[str, Any]:
    return {
        "fsm": "door",
        "variables": {"open": {"type": "bool"}, "locked": {"type": "bool", "initial": True}},
        "actions": {
            "unlock": {"description": "Unlock the door.", "requires": {"locked": True}, "effects": {"locked": False}},
            "open_door": {
                "description": "Open the door.",
                "requires": {"locked": False, "open": False},
                "effects": {"open": True},
            },
        },
        "goals": {"inside": {"description": "Open the door.", "when": {"open": True}}},
    }


def _bad(case: str) -> dict[str, Any]:
    doc = copy.deepcopy(_base())
    actions, goals = doc["actions"], doc["goals"]
    if case == "unreachable":
        goals["inside"]["when"] = {"open": True, "locked": True}
    elif case == "unknown_variable":
        actions["open_door"]["effects"] = {"ajar": True}
    elif case == "unknown_goal_variable":
        goals["inside"]["when"] = {"window": True}
    elif case == "outside_domain":
        actions["unlock"]["effects"] = {"locked": "maybe"}
    elif case == "never_enabled":
        actions["knock"] = {"description": "Knock.", "requires": {"open": True, "locked": True}}
    elif case == "holds_initially":
        goals["inside"]["when"] = {"locked": True}
    elif case == "unknown_param":
        actions["unlock"]["effects"] = {"locked": "$key"}
    elif case == "no_description":
        del actions["unlock"]["description"]
    elif case == "bad_initial":
        doc["variables"]["open"] = {"values": ["yes", "no"], "initial": "ajar"}
    elif case == "builtin_name":
        actions["print"] = actions.pop("unlock")
    elif case == "empty_goal_description":
        goals["inside"]["description"] = "  "
    elif case == "order_on_enum":
        actions["unlock"]["requires"] = {"locked": {"<": 3}}
    return doc


BAD = {
    "unreachable": "goal 'inside': is unreachable from the initial state",
    "unknown_variable": "action 'open_door': effect on unknown variable 'ajar'",
    "unknown_goal_variable": "goal 'inside': unknown variable 'window'",
    "outside_domain": "action 'unlock': effect sets 'locked' to 'maybe', outside its values",
    "never_enabled": "action 'knock': is never enabled in any reachable state",
    "holds_initially": "goal 'inside': already holds in the initial state",
    "unknown_param": "action 'unlock': unknown parameter '$key'",
    "no_description": "action 'unlock': has no description",
    "bad_initial": "variable 'open': initial value 'ajar' is outside its values",
    "order_on_enum": "action 'unlock': `<` needs an integer variable",
    "builtin_name": "action 'print': is not a usable tool name",
    "empty_goal_description": "goal 'inside': has no description",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_machines_are_refused(tmp_path: Path, case: str) -> None:
    path = tmp_path / "door.json"
    path.write_text(json.dumps(_base()))
    assert load_source(path).data["tasks"][0]["reference"] == [
        [{"name": "unlock", "arguments": {}}],
        [{"name": "open_door", "arguments": {}}],
    ]
    path.write_text(json.dumps(_bad(case)))
    with pytest.raises(ConfigError) as info:
        load_source(path)
    message = str(info.value)
    assert message.startswith("door.json: ") and BAD[case] in message and "\n" not in message


def test_state_space_cap(tmp_path: Path) -> None:
    doc = {
        "variables": {"a": {"range": [0, 99]}, "b": {"range": [0, 99]}},
        "actions": {
            "inc_a": {"description": "Add one to a.", "effects": {"a": {"add": 1}}},
            "inc_b": {"description": "Add one to b.", "effects": {"b": {"add": 1}}},
        },
        "goals": {"far": {"description": "Reach the corner.", "when": {"a": 99, "b": 99}}},
    }
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(doc))
    assert len(load_fsm(path, doc).data["tasks"][0]["reference"]) == 198
    with pytest.raises(ConfigError, match=r"^grid\.json: the state space exceeds 500 reachable states; shrink"):
        load_fsm(path, doc, max_states=500)


def test_goal_names_that_slug_alike_keep_distinct_task_ids(tmp_path: Path) -> None:
    doc = _base()
    doc["goals"]["in-side"] = {"description": "Unlock the door.", "when": {"locked": False}}
    doc["goals"]["in_side"] = {"description": "Open it.", "when": {"open": True}}
    path = tmp_path / "door.json"
    path.write_text(json.dumps(doc))
    ids = [t["id"] for t in load_source(path).data["tasks"]]
    assert len(ids) == len(set(ids)) and "fsm-in_side-1" in ids and "fsm-in_side_2-1" in ids
