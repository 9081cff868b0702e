"""The shipped scenario catalog: its size, its documents, its generated backends (run in the real sandbox)."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from hone.envs.build import Call, Scenario
from hone.envs.build._catalog import CatalogError, _Builder, _read, expand_scenario, load_catalog, scenario_names
from hone.envs.build._harness import batch_program, new_nonce, parse_batch
from hone.sandbox import Sandbox

SLOT = re.compile(r"\{(\w+)\}")


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return [expand_scenario(n) for n in scenario_names()]


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(workers=2, timeout_s=60, memory_mb=512) as sb:
        yield sb


def _args(scenario: Scenario, tool: str, rng: random.Random) -> dict[str, Any]:
    """Arguments for one call, drawn as the template generator draws them (the tool's pool first)."""
    doc = scenario.tool(tool)
    return {p: rng.choice(scenario.pools.get(f"{tool}.{p}") or scenario.pools[p]) for p in doc.parameters["required"]}


def _run(sandbox: Sandbox, scenario: Scenario, tasks: list[list[list[Call]]]) -> list[Any]:
    nonce = new_nonce()
    result = sandbox.run_sync(batch_program(scenario.backend, tasks, nonce), timeout_s=60)
    assert result.status == "ok", (scenario.name, result.status, result.stderr[-500:])
    return parse_batch(result.stdout, nonce, len(tasks))


def test_catalog_size_and_heldout_scenarios(scenarios: list[Scenario]) -> None:
    assert len(scenarios) >= 40
    assert sum(len(s.tools) for s in scenarios) >= 300
    assert all(6 <= len(s.tools) <= 14 for s in scenarios)
    heldout = [s.name for s in scenarios if s.heldout]
    assert len(heldout) >= 8
    assert len({s.title for s in scenarios}) == len(scenarios)  # distinct domains


def test_every_tool_is_documented(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        for doc in s.tools:
            where = f"{s.name}.{doc.name}"
            assert doc.description.endswith(".") and doc.description.count(". ") == 0, where  # one sentence
            assert " a a" not in doc.description and "a account" not in doc.description, where
            assert doc.returns, where
            params = doc.parameters
            assert params["type"] == "object" and params["required"] == list(params["properties"]), where
            for name, schema in params["properties"].items():
                assert schema["type"] in ("string", "integer", "number"), (where, name)
                assert schema["description"].strip(), (where, name)
                if "enum" in schema:
                    assert schema["type"] == "string" and len(schema["enum"]) >= 2, (where, name)
            assert len(doc.utterances) >= 3 and len(set(doc.utterances)) == len(doc.utterances), where
            for u in doc.utterances:
                assert set(SLOT.findall(u)) == set(params["required"]), (where, u)
                assert "<" not in u and ">" not in u, (where, u)  # no unfilled template word
            assert all(s.pools.get(f"{doc.name}.{p}") or s.pools.get(p) for p in params["required"]), where
    effects = {d.effect for s in scenarios for d in s.tools}
    assert effects == {"read", "write"}


def test_every_scenario_has_reads_writes_and_an_id_finder(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        effects = [d.effect for d in s.tools]
        assert effects.count("read") >= 4 and effects.count("write") >= 1, s.name
        finders = [d for d in s.tools if d.name.startswith("find_")]
        assert finders, s.name


def test_load_catalog_is_one_group_per_scenario_with_its_backend() -> None:
    source = load_catalog(["bank", "zoo"])
    assert source.kind == "catalog" and source.tools == []
    assert [g["name"] for g in source.data["groups"]] == ["bank", "zoo"]
    assert source.data["heldout"] == ["zoo"]
    bank = Scenario.model_validate(source.data["scenarios"][0])
    assert bank.data == {"domain": "bank"} and "def find_customer(" in bank.backend.source
    assert source.data["groups"][0]["tools"] == [d.name for d in bank.tools]
    with pytest.raises(CatalogError, match="no catalog scenario 'nope'"):
        load_catalog(["nope"])


def test_expansion_is_deterministic_and_seeded() -> None:
    a, b = expand_scenario("hotel"), expand_scenario("hotel")
    assert a.model_dump() == b.model_dump()
    other = expand_scenario("hotel", seed=1)
    assert other.backend.state != a.backend.state and [d.name for d in other.tools] == [d.name for d in a.tools]


def test_every_backend_runs_every_tool_in_the_sandbox(scenarios: list[Scenario], sandbox: Sandbox) -> None:
    """One call per tool, each from a fresh state, through the pipeline's harness: nothing but ValueError fails."""
    refused = total = writes = changed = 0
    for s in scenarios:
        rng = random.Random(s.name)
        calls = [Call(name=d.name, arguments=_args(s, d.name, rng)) for d in s.tools]
        outcomes = _run(sandbox, s, [[[c]] for c in calls])
        for call, out in zip(calls, outcomes, strict=True):
            total += 1
            if out.error is not None:
                assert ": value_error: " in out.error, (s.name, call, out.error)  # bad input, never a crash
                refused += 1
                continue
            result = out.results[0][0]
            doc = s.tool(call.name)
            assert isinstance(result, str | int | float) and not isinstance(result, bool), (s.name, call, result)
            assert not isinstance(result, float) or round(result, 2) == result, (s.name, call, result)
            if doc.effect == "read":
                assert out.state == s.backend.state, (s.name, call.name)  # a read changes nothing
            else:
                writes += 1
                changed += out.state != s.backend.state  # (setting a field to its value changes nothing)
    assert refused <= total * 0.05, f"{refused} of {total} sample calls were refused"
    assert changed >= writes * 0.8, f"only {changed} of {writes} writes changed the state"


def test_chains_exist_in_every_scenario(scenarios: list[Scenario], sandbox: Sandbox) -> None:
    """A finder's result (an id) is accepted by another tool of the scenario: a level-4 chain."""
    for s in scenarios:
        rng = random.Random(s.name)
        pairs = []
        for finder in (d for d in s.tools if d.name.startswith("find_")):
            key = f"{finder.name[5:]}_id"
            users = [d for d in s.tools if key in d.parameters["required"] and d.effect == "read"]
            if users:
                pairs.append((Call(name=finder.name, arguments=_args(s, finder.name, rng)), users[0], key))
        assert pairs, f"{s.name}: no finder whose id another tool takes"
        found = _run(sandbox, s, [[[first]] for first, _, _ in pairs])
        seconds = []
        for (_, user, key), out in zip(pairs, found, strict=True):
            assert out.error is None, (s.name, out.error)
            value = out.results[0][0]
            assert isinstance(value, str) and re.fullmatch(r"[A-Z]{1,2}-\d{3}", value), (s.name, value)
            seconds.append(Call(name=user.name, arguments={**_args(s, user.name, rng), key: value}))
        for call, out in zip(seconds, _run(sandbox, s, [[[c]] for c in seconds]), strict=True):
            assert out.error is None or "not enough" in out.error, (s.name, call, out.error)


def test_backends_refuse_bad_input_with_value_error(sandbox: Sandbox) -> None:
    s = expand_scenario("bank")
    bad = [
        Call(name="get_account_balance", arguments={"account_id": "A-999"}),
        Call(name="set_customer_tier", arguments={"customer_id": "C-101", "tier": "diamond"}),
        Call(name="deposit", arguments={"account_id": "A-101", "amount": "lots"}),
        Call(name="deposit", arguments={"account_id": "A-101", "amount": -5}),
        Call(name="withdraw", arguments={"account_id": "A-101", "amount": 10**9}),
        Call(name="find_customer", arguments={"name": "Nobody Here"}),
        Call(name="convert_currency", arguments={"amount": 10, "from_currency": "EUR", "to_currency": "XXX"}),
    ]
    outcomes = _run(sandbox, s, [[[c]] for c in bad])
    errors = [o.error or "" for o in outcomes]
    assert all(": value_error: " in e for e in errors), errors
    assert "unknown account ID 'A-999'" in errors[0]
    assert "tier must be one of basic, silver, gold" in errors[1]
    assert "amount must be a number" in errors[2] and "positive" in errors[3] and "not enough" in errors[4]


def test_writes_change_exactly_what_they_say(sandbox: Sandbox) -> None:
    s = expand_scenario("bank")
    before = s.backend.state["account"]["A-101"]["balance"]
    steps = [
        [[Call(name="deposit", arguments={"account_id": "A-101", "amount": 100})]],
        [[Call(name="open_account", arguments={"customer_id": "C-101", "kind": "savings"})]],
        [[Call(name="convert_currency", arguments={"amount": 108, "from_currency": "USD", "to_currency": "EUR"})]],
    ]
    dep, opened, conv = _run(sandbox, s, steps)
    assert dep.results == [[round(before + 100, 2)]]
    assert dep.state["account"]["A-101"]["balance"] == round(before + 100, 2)
    new_id = opened.results[0][0]
    assert new_id == "A-121" and opened.state["account"][new_id] == {
        "customer_id": "C-101",
        "kind": "savings",
        "balance": 0,
    }
    assert conv.results == [[100.0]]


def _raw(**tools: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(_read("bank.json")))
    raw.update(tools)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tools": ["find customer name", "find customer name"]}, "duplicate tool names"),
        ({"tools": ["get customer shoe_size"]}, "has no field 'shoe_size'"),
        ({"tools": ["sum customer tier"]}, "sum needs a numeric field"),
        (
            {"tools": [{"op": "get", "entity": "customer", "field": "tier", "utterances": ["Tier of {name}?"] * 3}]},
            "slots",
        ),
        ({"tools": [{"op": "calc", "name": "x", "params": [], "expr": "1"}]}, "needs its own description"),
        ({"tools": ["frobnicate customer"]}, "unknown operation 'frobnicate'"),
    ],
)
def test_inconsistent_scenario_files_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        _Builder(_raw(**change), _read("_ops.json"), _read("_pools.json"), 0).scenario()


def test_a_unique_field_needs_a_big_enough_pool() -> None:
    raw = _raw()
    raw["entities"][0]["count"] = 500
    with pytest.raises(CatalogError, match="fewer than 500 values"):
        _Builder(raw, _read("_ops.json"), _read("_pools.json"), 0)


def test_reads_agree_with_the_records(sandbox: Sandbox) -> None:
    """Aggregates, counts, finders and arg-max computed in the sandbox match the seeded records."""
    s = expand_scenario("bank")
    customers, accounts = s.backend.state["customer"], s.backend.state["account"]
    cid, name = "C-103", customers["C-103"]["name"]
    mine = [a for a in accounts.values() if a["customer_id"] == cid]
    savings = {k: a["balance"] for k, a in accounts.items() if a["kind"] == "savings"}
    calls = [
        Call(name="find_customer", arguments={"name": name.upper()}),  # case-insensitive
        Call(name="count_customer_accounts", arguments={"customer_id": cid}),
        Call(name="total_balance_of_customer", arguments={"customer_id": cid}),
        Call(name="top_account_by_balance_for_kind", arguments={"kind": "savings"}),
        Call(name="get_account_customer_id", arguments={"account_id": "A-102"}),
    ]
    got = [o.results[0][0] for o in _run(sandbox, s, [[[c]] for c in calls])]
    assert got == [
        cid,
        len(mine),
        round(sum(a["balance"] for a in mine), 2),
        max(savings, key=lambda k: savings[k]),
        accounts["A-102"]["customer_id"],
    ]
    assert len(mine) >= 1  # every parent record has a child (so per-parent reads have answers)
