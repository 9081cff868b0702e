"""Entity randomization for micro-tools training: values and names replaced consistently, nothing else."""

from __future__ import annotations

import json
import random
import re
from typing import Any

from hone.learn.micro_tools._augment import _shape, randomize_record

SYSTEM = "Call tools. End with 'Answer: <value>'. Like C-101 and 12."


def _record() -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "set_customer_tier",
                "description": "Change the tier of a customer, like C-101.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "customer_id": {"type": "string"},
                        "tier": {"type": "string", "enum": ["basic", "silver", "gold"]},
                        "visits": {"type": "integer"},
                    },
                },
            },
        },
        {"type": "function", "function": {"name": "get_customer", "description": "d", "parameters": {}}},
    ]
    call = {"customer_id": "C-108", "tier": "basic", "visits": 12}
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Set C-108 to basic after 12 visits (not 120, not 512, not C-1080, not XC-108)."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": "set_customer_tier", "arguments": json.dumps(call)},
                }
            ],
        },
        {"role": "tool", "content": '"basic"', "tool_call_id": "c0", "name": "set_customer_tier"},
        {"role": "assistant", "content": "Answer: basic"},
    ]
    return {"messages": messages, "tools": tools}


def test_values_and_names_are_replaced_consistently_everywhere() -> None:
    rec = _record()
    out = randomize_record(rec, random.Random(3), p_value=1.0, p_name=1.0)
    user = out["messages"][1]["content"]
    args = json.loads(out["messages"][2]["tool_calls"][0]["function"]["arguments"])
    for old, key in (("C-108", "customer_id"), ("basic", "tier"), ("12", "visits")):
        new = str(args[key])
        assert new != old and re.search(rf"(?<!\w){re.escape(new)}(?!\w)", user), (key, new, user)
    assert isinstance(args["visits"], int)  # an integer stays a JSON integer
    assert "not 120, not 512, not C-1080, not XC-108" in user  # no replacement inside a longer token
    tools = out["tools"]
    name = tools[0]["function"]["name"]
    assert name != "set_customer_tier" and out["messages"][2]["tool_calls"][0]["function"]["name"] == name
    assert out["messages"][3]["name"] == name and tools[1]["function"]["name"] != "get_customer"
    assert args["tier"] in tools[0]["function"]["parameters"]["properties"]["tier"]["enum"]
    assert out["messages"][3]["content"] == json.dumps(args["tier"]) and out["messages"][4]["content"].endswith(
        args["tier"]
    )
    assert out["messages"][0]["content"] == SYSTEM  # the system prompt and descriptions are left alone
    assert tools[0]["function"]["description"] == rec["tools"][0]["function"]["description"]
    assert rec == _record()  # the input is not modified


def test_only_copyable_values_are_replaced_and_probabilities_apply() -> None:
    rec = _record()
    rec["messages"][1]["content"] = "Set the customer to basic."  # C-108 and 12 are not in the request
    out = randomize_record(rec, random.Random(0), p_value=1.0, p_name=0.0)
    args = json.loads(out["messages"][2]["tool_calls"][0]["function"]["arguments"])
    assert args["customer_id"] == "C-108" and args["visits"] == 12 and args["tier"] != "basic"
    assert out["tools"][0]["function"]["name"] == "set_customer_tier"
    assert randomize_record(_record(), random.Random(0), p_value=0.0, p_name=0.0) == _record()


def test_deterministic_for_a_seed() -> None:
    a = randomize_record(_record(), random.Random(7))
    b = randomize_record(_record(), random.Random(7))
    assert a == b and a != randomize_record(_record(), random.Random(8))


def test_shape_keeps_case_digits_and_punctuation() -> None:
    rng = random.Random(1)
    for value in ("GM-105", "Aiko Haddad", "2026-03-16", "12", "x.y_z 9"):
        for _ in range(20):
            new = _shape(value, rng)
            assert len(new) == len(value)
            for a, b in zip(value, new, strict=True):
                assert a.isdigit() == b.isdigit() and a.isupper() == b.isupper() and a.islower() == b.islower()
                if not a.isalnum():
                    assert a == b
            assert not (len(new) > 1 and new[0] == "0" and value[0] != "0")  # "12" never becomes "07"


def test_copy_records_can_only_be_completed_by_copying() -> None:
    from hone.learn.micro_tools._copy import tool_copy_records

    records = tool_copy_records(300, seed=4, words=["order", "room", "price"])
    names = set()
    spelled = 0
    for rec in records:
        tools = {t["function"]["name"]: t["function"] for t in json.loads(rec["tools"])}
        user = rec["messages"][0]["content"]
        calls = rec["messages"][1]["tool_calls"]
        assert 1 <= len(calls) <= 2 and len(tools) >= len(calls)
        for call in calls:
            fn = tools[call["function"]["name"]]  # the called tool is offered
            names.add(fn["name"])
            said = fn["name"].replace("_", " ") in user
            spelled += said
            described = fn["description"].rstrip(".").lower() in user.lower()
            assert said or described or len(tools) == 1  # asked for by name, description, or the only one
            args = json.loads(call["function"]["arguments"])
            assert list(args) == list(fn["parameters"]["properties"])  # every parameter, in schema order
            for p, v in args.items():
                assert f"{p.replace('_', ' ')} {v}" in user  # each value copied from the request
                enum = fn["parameters"]["properties"][p].get("enum")
                assert enum is None or v in enum
        results = [m["content"] for m in rec["messages"] if m["role"] == "tool"]
        last = rec["messages"][-1]["content"]
        first = tools[calls[0]["function"]["name"]]["description"]
        read = first.startswith(("Get", "Compute", "Count", "Find"))  # a read answers with the result
        assert last == (f"Answer: {results[0].strip(chr(34))}" if read else "Done."), (first, last)
    assert len(names) > 200  # names are random, not a fixed set
    assert 0.3 < spelled / sum(len(r["messages"][1]["tool_calls"]) for r in records) < 0.8  # often only in <tools>
    assert tool_copy_records(5, seed=4) == tool_copy_records(5, seed=4) != tool_copy_records(5, seed=5)
