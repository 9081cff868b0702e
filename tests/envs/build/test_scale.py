"""Complexity scaling: the structure of every level, built from hand-made executed atoms (no sandbox)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from hone.envs.build import Atom, Backend, Call, Scenario, ToolDoc, VerifiedAtom, scale


def _doc(name: str, args: list[str], effect: str = "read") -> ToolDoc:
    props = {a: {"type": "string"} for a in args}
    return ToolDoc(
        name=name,
        description=f"Does {name}.",
        parameters={"type": "object", "properties": props, "required": args},
        effect=effect,
    )  # type: ignore[arg-type]


def _atom(
    scenario: str, name: str, args: dict[str, Any], result: Any, text: str, mentions: dict[str, str], read: bool = True
) -> VerifiedAtom:
    atom = Atom(
        scenario=scenario,
        call=Call(name=name, arguments=args),
        text=text,
        mentions=mentions,
        answer_from_result=read,
        phrasing=text[:6],
    )
    return VerifiedAtom(atom=atom, result=result, answer=str(result) if read and not isinstance(result, dict) else None)


def _world() -> tuple[list[Scenario], dict[str, list[VerifiedAtom]]]:
    shop_tools = [
        _doc("find_customer", ["name"]),
        _doc("get_orders", ["customer_id"]),
        _doc("cancel_order", ["order_id"], "write"),
        _doc("order_info", ["order_id"]),
    ]
    zoo_tools = [_doc("feed_animal", ["animal"], "write"), _doc("animal_age", ["animal"])]
    backend = Backend(source="", state={})
    shop = Scenario(name="shop", title="Shop", description="", tools=shop_tools, backend=backend)
    zoo = Scenario(name="zoo", title="Zoo", description="", tools=zoo_tools, backend=backend)
    names = ["Ana Ruiz", "Bo Lee", "Cy Park", "Di Noor", "Ed Moss", "Fay Wu"]
    shop_atoms: list[VerifiedAtom] = []
    for i, name in enumerate(names):
        cid = f"CU-{i + 10}"
        shop_atoms.append(
            _atom(
                "shop",
                "find_customer",
                {"name": name},
                cid,
                f"Find the customer named {name}.",
                {"name": f"named {name}"},
            )
        )
        shop_atoms.append(
            _atom(
                "shop",
                "get_orders",
                {"customer_id": cid},
                i + 1,
                f"How many orders does customer {cid} have?",
                {"customer_id": f"customer {cid}"},
            )
        )
        shop_atoms.append(
            _atom(
                "shop",
                "cancel_order",
                {"order_id": f"OR-{i}"},
                "ok",
                f"Please cancel order OR-{i}.",
                {"order_id": f"order OR-{i}"},
                read=False,
            )
        )
        shop_atoms.append(
            _atom(
                "shop",
                "order_info",
                {"order_id": f"OR-{i}"},
                {"id": f"OR-{i}", "total": 3},
                f"Show me the details of order OR-{i}.",
                {"order_id": f"of order OR-{i}"},
            )
        )
    zoo_atoms = [
        _atom("zoo", "animal_age", {"animal": a}, 3 + i, f"How old is the {a}?", {"animal": f"the {a}"})
        for i, a in enumerate(["lion", "zebra", "okapi", "tapir", "lemur", "otter", "heron", "bison"])
    ]
    zoo_atoms += [
        _atom("zoo", "feed_animal", {"animal": a}, "fed", f"Feed the {a} now.", {"animal": f"the {a}"}, read=False)
        for a in ["lion", "zebra"]
    ]
    return [shop, zoo], {"shop": shop_atoms, "zoo": zoo_atoms}


def _levels(counts: dict[int, int], heldout: frozenset[str] = frozenset(), seed: int = 0) -> dict[int, list[Any]]:
    scenarios, atoms = _world()
    planned, _ = scale(scenarios, atoms, counts, seed=seed, heldout=heldout)
    out: dict[int, list[Any]] = {}
    for task, answer in planned:
        out.setdefault(task.level, []).append((task, answer))
    return out


def test_level_1_offers_only_the_needed_tool() -> None:
    tasks = _levels({1: 4})[1]
    assert len(tasks) == 8
    for task, answer in tasks:
        assert task.offered == [task.reference[0][0].name] and len(task.reference) == 1 and len(task.reference[0]) == 1
        assert answer is (task.reference[0][0].name != "cancel_order" and task.reference[0][0].name != "feed_animal")


def test_level_2_hides_the_tool_among_distractors() -> None:
    for task, _ in _levels({2: 5})[2]:
        need = task.reference[0][0].name
        assert need in task.offered and len(task.offered) >= 3 and len(set(task.offered)) == len(task.offered)
    zoo = [t for t, _ in _levels({2: 5})[2] if t.scenario == "zoo"]
    # The zoo has one other tool: the rest are the most similar tools of the shop (same side of the split).
    assert any(set(t.offered) & {"find_customer", "get_orders", "cancel_order", "order_info"} for t in zoo)
    held = [t for t, _ in _levels({2: 5}, heldout=frozenset({"zoo"}))[2] if t.scenario == "zoo"]
    assert held and all(set(t.offered) == {"feed_animal", "animal_age"} for t in held)  # nothing across the split


def test_level_3_joins_independent_requests_in_one_step() -> None:
    tasks = _levels({3: 6})[3]
    assert tasks
    connectives = set()
    for task, answer in tasks:
        assert len(task.reference) == 1 and 2 <= len(task.reference[0]) <= 3 and answer is False
        calls = task.reference[0]
        assert sum(c.name in ("cancel_order", "feed_animal") for c in calls) <= 1
        assert len({(c.name, str(c.arguments)) for c in calls}) == len(calls)
        assert set(task.offered) == {c.name for c in calls}
        connectives.add(re.findall(r"[.?!] (\w+)", task.prompt)[0])
    assert len(connectives) >= 2


def test_level_4_chains_a_result_into_a_later_argument() -> None:
    tasks = _levels({4: 6})[4]
    assert tasks
    for task, answer in tasks:
        first, second = task.reference
        assert len(first) == len(second) == 1 and first[0].name == "find_customer" and second[0].name == "get_orders"
        cid = second[0].arguments["customer_id"]
        assert cid not in task.prompt and first[0].arguments["name"] in task.prompt  # reached only through A
        assert "customer id" in task.prompt and answer is True


def test_level_5_removes_one_required_value_and_keeps_it_as_a_hidden_fact() -> None:
    tasks = _levels({5: 6})[5]
    assert tasks
    for task, _ in tasks:
        call = task.reference[0][0]
        [(arg, said)] = task.hidden_facts.items()
        assert said == str(call.arguments[arg]) and said not in task.prompt
        assert not re.search(r"\b(of|named|the)[.?]", task.prompt)


def test_level_6_offers_tools_that_do_not_apply() -> None:
    by_level = _levels({6: 6})
    tasks = by_level[6]
    assert len(tasks) == 12
    shop_texts = {va.atom.text for va in _world()[1]["shop"]}
    for task, answer in tasks:
        assert task.reference == [] and answer is False and task.offered
        if task.scenario == "zoo":
            assert task.prompt in shop_texts or "zoo" not in task.prompt  # another scenario's request, or off-topic
    # Held out apart, the two scenarios lend each other nothing: the requests are off-topic ones.
    held = _levels({6: 3}, heldout=frozenset({"zoo"}))[6]
    all_texts = {va.atom.text for vs in _world()[1].values() for va in vs}
    assert not {t.prompt for t, _ in held} & all_texts


def test_ids_are_stable_unique_and_prompts_never_repeat() -> None:
    counts = {1: 4, 2: 4, 3: 4, 4: 4, 5: 4, 6: 4}
    a = [t for ts in _levels(counts).values() for t, _ in ts]
    b = [t for ts in _levels(counts).values() for t, _ in ts]
    assert [t.id for t in a] == [t.id for t in b]
    assert len({t.id for t in a}) == len(a) and len({t.prompt for t in a}) == len(a)
    assert all(re.fullmatch(rf"{t.scenario}-L{t.level}-[0-9a-f]{{12}}", t.id) for t in a)
    c = [t for ts in _levels(counts, seed=1).values() for t, _ in ts]
    assert [t.id for t in a] != [t.id for t in c]
    assert Counter(t.level for t in a) == Counter(t.level for t in b)


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_each_level_alone(level: int) -> None:
    planned = _levels({level: 2})
    assert set(planned) == {level}
