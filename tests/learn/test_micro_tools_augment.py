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
            said = fn["name"].replace("_", " ") in user.lower()
            spelled += said
            described = fn["description"].rstrip(".").lower() in user.lower()
            assert said or described or len(tools) == 1  # asked for by name, description, or the only one
            args = json.loads(call["function"]["arguments"])
            assert list(args) == list(fn["parameters"]["properties"])  # every parameter, in schema order
            for p, v in args.items():
                # Each value is in the request with its parameter's words (toolgen's labels may drop a final "name").
                assert str(v) in user and p.replace("_", " ").removesuffix(" name") in user.lower(), (p, v, user)
                enum = fn["parameters"]["properties"][p].get("enum")
                assert enum is None or v in enum
        results = [m["content"] for m in rec["messages"] if m["role"] == "tool"]
        assert rec["messages"][-1]["content"] == f"Answer: {results[-1].strip(chr(34))}"  # the last result copied
    assert len(names) > 200  # names are random, not a fixed set
    assert 0.3 < spelled / sum(len(r["messages"][1]["tool_calls"]) for r in records) < 0.8  # often only in <tools>
    assert tool_copy_records(5, seed=4) == tool_copy_records(5, seed=4) != tool_copy_records(5, seed=5)


def test_copy_records_offer_as_many_tools_as_toolgen_choice_tasks() -> None:
    from hone.learn.micro_tools._copy import tool_copy_records

    offered = [len(json.loads(r["tools"])) for r in tool_copy_records(300, seed=2, words=["order", "room"])]
    assert min(offered) == 1 and max(offered) == 5
    assert sum(n >= 4 for n in offered) > 60  # choosing among 4-5, like toolgen's `choice` tasks


def test_choice_copy_records_always_make_the_request_decide_the_tool() -> None:
    from collections import Counter

    from hone.learn.micro_tools._copy import choice_copy_records

    records = choice_copy_records(400, seed=3, words=["order", "room", "price"])
    position = Counter()
    for rec in records:
        tools = [t["function"] for t in json.loads(rec["tools"])]
        calls = rec["messages"][1]["tool_calls"]
        assert 2 <= len(tools) <= 5 and len(calls) == 1  # a choice every time, one call
        name = calls[0]["function"]["name"]
        (fn,) = [t for t in tools if t["name"] == name]
        user = rec["messages"][0]["content"].lower()
        assert fn["name"].replace("_", " ") in user or fn["description"].rstrip(".").lower() in user, (name, user)
        for p, v in json.loads(calls[0]["function"]["arguments"]).items():
            assert str(v) in rec["messages"][0]["content"], (p, v)  # the values are the request's
        assert rec["messages"][-1]["content"].startswith("Answer: ")
        position[(tools.index(fn), len(tools))] += 1
    # The asked-for tool is anywhere in the list: first and last are each chosen near 1/k of the time.
    for k in (3, 4, 5):
        total = sum(c for (_, n), c in position.items() if n == k)
        assert total > 50 and all(position[(i, k)] < 2.2 * total / k for i in range(k)), (k, position)
    assert choice_copy_records(5, seed=3) == choice_copy_records(5, seed=3) != choice_copy_records(5, seed=4)


def _wine_record() -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_wine_bottle_price",
                "description": "Get the price per bottle of a wine by its ID.",
                "parameters": {
                    "type": "object",
                    "properties": {"wine_id": {"type": "string", "description": "The wine ID, like WN-101."}},
                    "required": ["wine_id"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "count_wines_by_colour",
                "description": "Count the wines with a given colour.",
                "parameters": {
                    "type": "object",
                    "properties": {"colour": {"type": "string", "enum": ["red", "white"]}},
                    "required": ["colour"],
                },
            },
        },
    ]
    call = {
        "id": "c0",
        "type": "function",
        "function": {"name": "get_wine_bottle_price", "arguments": '{"wine_id": "WN-104"}'},
    }
    messages = [
        {"role": "system", "content": "Use the tools for wines."},
        {"role": "user", "content": "Wines first: what does a bottle of WN-104 cost? (Not a swine.)"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "12.5", "tool_call_id": "c0", "name": "get_wine_bottle_price"},
        {"role": "assistant", "content": "Answer: 12.5"},
    ]
    return {"messages": messages, "tools": tools}


def test_swapped_words_are_replaced_consistently_with_case_and_plural() -> None:
    from hone.learn.micro_tools._augment import KEEP_WORDS, swap_words

    rec = _wine_record()
    out = swap_words(rec, random.Random(1), ["order", "room"], p_word=1.0)
    tools = {t["function"]["name"]: t["function"] for t in out["tools"]}
    price = next(n for n in tools if n.startswith("get_"))
    words = price.split("_")
    assert words[0] == "get" and "get" in KEEP_WORDS  # the shared verbs stay
    wine, bottle = words[1], words[2]
    assert {wine, bottle}.isdisjoint({"wine", "bottle", "price"}) and wine != bottle
    call = out["messages"][2]["tool_calls"][0]["function"]
    assert call["name"] == price and out["messages"][3]["name"] == price  # calls name an offered tool
    assert list(json.loads(call["arguments"])) == list(tools[price]["parameters"]["properties"])
    assert list(tools[price]["parameters"]["properties"]) == tools[price]["parameters"]["required"] == [f"{wine}_id"]
    assert tools[price]["description"] == f"Get the {words[3]} per {bottle} of a {wine} by its ID."
    user = out["messages"][1]["content"]
    assert user.startswith(f"{wine.capitalize()}s first: what does a {bottle} of WN-104 cost?")  # case, plural
    assert user.endswith("(Not a swine.)")  # not inside a longer word
    colour = next(n for n in tools if n.startswith("count_")).split("_")[-1]
    assert next(n for n in tools if n.startswith("count_")) == f"count_{wine}s_by_{colour}"
    assert out["messages"][0] == rec["messages"][0]  # the system prompt is left alone
    assert rec == _wine_record()  # the input is not modified


def test_verb_swap_replaces_the_leading_verbs_everywhere_and_nothing_else_of_the_glue() -> None:
    from hone.learn.micro_tools._augment import KEEP_WORDS, VERBS, swap_words

    out = swap_words(_wine_record(), random.Random(1), ["order", "room"], p_word=1.0, p_verb=1.0)
    names = [t["function"]["name"] for t in out["tools"]]
    firsts = [n.split("_")[0] for n in names]
    assert not set(firsts) & VERBS and not set(firsts) & KEEP_WORDS  # get_ and count_ are gone
    price, count = (t["function"] for t in out["tools"])
    assert price["description"].startswith(f"{firsts[0].capitalize()} the ")  # "Get the ..." follows the name
    assert count["description"].startswith(f"{firsts[1].capitalize()} the ")
    assert count["name"].split("_")[2] == "by" and price["parameters"]["required"][0].endswith("_id")  # glue kept
    call = out["messages"][2]["tool_calls"][0]["function"]
    assert call["name"] in names and out["messages"][3]["name"] == call["name"]
    # Without p_verb the stream of draws is the one the default recipe always used.
    assert swap_words(_wine_record(), random.Random(3), ["order"]) == swap_words(
        _wine_record(), random.Random(3), ["order"], p_verb=0.0
    )


def test_swap_is_deterministic_and_probability_zero_changes_nothing() -> None:
    from hone.learn.micro_tools._augment import swap_words

    assert swap_words(_wine_record(), random.Random(0), [], p_word=0.0) == _wine_record()
    a = swap_words(_wine_record(), random.Random(5), ["order"])
    assert (
        a
        == swap_words(_wine_record(), random.Random(5), ["order"])
        != swap_words(_wine_record(), random.Random(6), ["order"])
    )


def test_closings_are_one_per_kind() -> None:
    from hone.learn.micro_tools._augment import canonical_closing

    def closing(text: str, role: str = "assistant", result: str | None = '"RD-125"') -> str:
        before = [{"role": "tool", "content": r, "tool_call_id": "c"} for r in ("7", result) if r is not None]
        rec = {"messages": [*before, {"role": role, "content": text}], "tools": "[]"}
        out = canonical_closing(rec)
        assert rec["messages"][-1]["content"] == text  # the input is not modified
        return str(out["messages"][-1]["content"])

    # A read keeps its answer (leads dropped); a write's reply becomes the last result, rendered as answers are.
    assert closing("Here is what I found.\nAnswer: 7") == closing("I looked it up.\nAnswer: 7") == "Answer: 7"
    assert closing("Done. The change is saved.") == closing("All set.") == closing("Done.") == "Answer: RD-125"
    assert closing("Done. Results: 4; red.") == "Answer: RD-125"
    assert closing("All set.", result="[1.5, 2]") == "Answer: 1.5, 2"
    # Only a closing that follows tool results: not after an error, nor without any, nor another role's text.
    assert closing("Done.", result="Error: no such van") == "Done."
    assert closing("Done.", result=None) == "Answer: 7"
    rec = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "All set."}], "tools": "[]"}
    assert canonical_closing(rec)["messages"][-1]["content"] == "All set."
    # A reply to a user turn that came after the results is not a closing of those results.
    rec = {
        "messages": [
            {"role": "tool", "content": '"RD-125"', "tool_call_id": "c"},
            {"role": "user", "content": "Thanks."},
            {"role": "assistant", "content": "All set."},
        ],
        "tools": "[]",
    }
    assert canonical_closing(rec)["messages"][-1]["content"] == "All set."
    # One refusal and one question wording (the missing values kept).
    refusal = "None of my tools can do that, so I cannot help with it here."
    assert closing("I don't have a tool for this request, sorry.", result=None) == refusal
    assert closing("Which van id do you mean?") == "Could you tell me the van id?"
    assert (
        closing("I need the van id and the stops for that. What is it?")
        == "Could you tell me the van id and the stops?"
    )
    assert closing("Could you give me a bit more detail?") == "Could you give me a bit more detail?"
    assert closing("I looked it up.\nno answer line") == "I looked it up.\nno answer line"
    assert closing("I looked it up.\nAnswer: 7", role="user") == "I looked it up.\nAnswer: 7"
