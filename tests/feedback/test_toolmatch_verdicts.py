"""BFCL matching, verdict by verdict: every field (kind, reason, name_ok, the failing arguments) and the
pairing of parallel calls, since rewards and feedback read all of them (written against mutation survivors)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hone.feedback._toolmatch import CallsVerdict, CallVerdict, ExpectedCall, match_call, match_calls


def fn(name: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "parameters": {"type": "dict", "properties": props, "required": required or []}}


AREA = fn(
    "area",
    {"base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}},
    ["base", "height"],
)
AREA_REF = ExpectedCall("area", {"base": [10], "height": [5], "unit": ["units", ""]})


def test_a_match_is_ok_with_its_name() -> None:
    assert match_call("area", {"base": 10, "height": 5}, AREA_REF, AREA) == CallVerdict(True, "ok", "matches", True)


def test_malformed_arguments_say_why_and_whether_the_name_was_right() -> None:
    bad_json = match_call("area", '{"base": 10,', AREA_REF, AREA)
    assert (bad_json.ok, bad_json.kind, bad_json.name_ok) == (False, "malformed", True)
    assert bad_json.reason.startswith("arguments are not valid JSON (")
    assert match_call("other", "[1, 2]", AREA_REF, AREA) == CallVerdict(
        False, "malformed", "arguments are a list, not a JSON object", False
    )
    assert match_call("area", {1: 10}, AREA_REF, AREA) == CallVerdict(  # type: ignore[dict-item]
        False, "malformed", "argument names must be strings", True
    )


def test_nesting_too_deep_is_a_full_malformed_verdict() -> None:
    deep: object = 1
    for _ in range(50_000):
        deep = [deep]
    too_deep = "arguments are nested too deeply to compare"
    assert match_call("f", {"x": deep}, ExpectedCall("f", {"x": [[1]]})) == CallVerdict(
        False, "malformed", too_deep, True
    )


def test_a_wrong_function_names_both() -> None:
    assert match_call("volume", {"base": 10}, AREA_REF, AREA) == CallVerdict(
        False, "wrong_function", "called 'volume', expected 'area'", False
    )


def test_every_failing_argument_is_listed_not_only_the_first() -> None:
    # An unexpected argument first, then a wrong type, then a wrong value, then a missing one:
    # each is checked (none stops the others) and the first in BFCL's order names the verdict.
    v = match_call("area", {"colour": "red", "base": "10", "height": 6}, AREA_REF, AREA)
    assert v == CallVerdict(
        False, "unexpected_argument", "unexpected argument 'colour'", True, (), ("colour",), ("base", "height")
    )
    ref = ExpectedCall("f", {"a": [1], "b": [2], "c": [3]})
    assert match_call("f", {"a": 1}, ref) == CallVerdict(
        False, "missing_argument", "missing argument 'b' (it is not optional)", True, ("b", "c")
    )
    assert match_call("area", {"height": 5}, AREA_REF, AREA) == CallVerdict(
        False, "missing_argument", "missing required argument 'base'", True, ("base",)
    )


def test_type_errors_name_the_types() -> None:
    assert match_call("area", {"base": True, "height": 5}, AREA_REF, AREA) == CallVerdict(
        False, "wrong_type", "argument 'base' has type bool, expected integer", True, (), (), ("base",)
    )
    # Without a schema the expected type is the reference's, named as Python names it.
    v = match_call("f", {"n": "2"}, ExpectedCall("f", {"n": [2]}))
    assert v.reason == "argument 'n' has type str, expected int"


def test_a_wrong_value_is_shown_beside_the_acceptable_ones_cut_to_80_characters() -> None:
    v = match_call("area", {"base": 10, "height": 6}, AREA_REF, AREA)
    assert v == CallVerdict(False, "wrong_value", "argument 'height' = 6 is not one of [5]", True, (), (), ("height",))
    schema = fn("f", {"s": {"type": "string"}})
    ref = ExpectedCall("f", {"s": ["x"]})
    fits = "a" * 78  # its repr is 80 characters: shown whole
    assert match_call("f", {"s": fits}, ref, schema).reason == f"argument 's' = {fits!r} is not one of ['x']"
    long = "a" * 79  # 81: cut to 77 and "..."
    assert match_call("f", {"s": long}, ref, schema).reason == f"argument 's' = '{'a' * 76}... is not one of ['x']"


def test_an_optional_reference_value_written_first_does_not_hide_the_type() -> None:
    ref = ExpectedCall("f", {"n": ["", 5]})
    assert match_call("f", {"n": 5}, ref).ok
    assert match_call("f", {}, ref).ok
    assert match_call("f", {"n": "5"}, ref).kind == "wrong_type"


def test_a_variable_compares_by_equality_not_by_standardised_text() -> None:
    # The reference's first value is an int for a string parameter: values of the reference's type are
    # "variables"; then a string, of the schema's own type, is compared with `==`, not standardised.
    schema = fn("f", {"s": {"type": "string"}})
    ref = ExpectedCall("f", {"s": [5, "New York"]})
    assert match_call("f", {"s": 5}, ref, schema).ok
    assert match_call("f", {"s": "New York"}, ref, schema).ok
    assert match_call("f", {"s": "new york"}, ref, schema).kind == "wrong_value"


def test_a_list_reference_for_a_scalar_parameter_is_a_variable() -> None:
    schema = fn("f", {"n": {"type": "integer"}})
    assert match_call("f", {"n": 1}, ExpectedCall("f", {"n": [[1]]}), schema).kind == "wrong_value"


def test_array_items_are_checked_against_the_schema_item_type_not_the_reference() -> None:
    schema = fn("f", {"xs": {"type": "array", "items": {"type": "integer"}}})
    # The items have the schema's type, so the type check passes and the values decide.
    assert match_call("f", {"xs": [1]}, ExpectedCall("f", {"xs": [["a"]]}), schema).kind == "wrong_value"
    # No `items` in the schema, or an item type given as a list: no item check, no crash.
    bare = fn("f", {"xs": {"type": "array"}})
    assert match_call("f", {"xs": [1, "a"]}, ExpectedCall("f", {"xs": [[1, "a"]]}), bare).ok
    odd = fn("f", {"xs": {"type": "array", "items": {"type": ["integer", "null"]}}})
    assert match_call("f", {"xs": [1]}, ExpectedCall("f", {"xs": [[1]]}), odd).ok


def test_an_unknown_or_listed_schema_type_means_no_type_check() -> None:
    ref = ExpectedCall("f", {"x": [1]})
    assert match_call("f", {"x": 1}, ref, fn("f", {"x": {"type": ["integer", "null"]}})).ok
    assert match_call("f", {"x": "1"}, ref, fn("f", {"x": {"type": "uuid"}})).kind == "wrong_value"
    # A property described by a bare string is no schema: its type comes from the reference.
    assert match_call("f", {"x": "1"}, ref, fn("f", {"x": "integer"})).kind == "wrong_type"


def test_dict_values_try_every_acceptable_dict() -> None:
    schema = fn("f", {"d": {"type": "dict"}})
    ref = ExpectedCall("f", {"d": ["", {"k": ["a"]}, {"k": ["b"]}]})
    assert match_call("f", {"d": {"k": "a"}}, ref, schema).ok
    assert match_call("f", {"d": {"k": "b"}}, ref, schema).ok
    assert match_call("f", {}, ref, schema).ok
    assert match_call("f", {"d": {"k": "c"}}, ref, schema).kind == "wrong_value"


def test_without_a_schema_lists_of_dicts_compare_as_dicts() -> None:
    ref = ExpectedCall("f", {"people": [[], [{"name": ["John Doe"], "age": [30, ""]}]]})
    assert match_call("f", {"people": [{"name": "john doe"}]}, ref).ok
    assert match_call("f", {"people": []}, ref).ok
    assert match_call("f", {"people": [{"name": "Jane"}]}, ref).kind == "wrong_value"
    assert match_call("f", {"xs": []}, ExpectedCall("f", {"xs": [[]]})).ok


def test_without_a_schema_an_int_is_accepted_for_a_float_reference() -> None:
    assert match_call("f", {"x": 2}, ExpectedCall("f", {"x": [2.0]})).ok
    assert match_call("f", {"x": 2}, ExpectedCall("f", {"x": [2.5]})).kind == "wrong_value"


def test_tuples_are_lists_only_for_tuple_parameters() -> None:
    # Calls parsed from Python source (BFCL's format) can carry tuples.
    tuple_schema = fn("f", {"t": {"type": "tuple", "items": {"type": "float"}}})
    assert match_call("f", {"t": (1.5, 2.5)}, ExpectedCall("f", {"t": [[1.5, 2.5]]}), tuple_schema).ok
    array_schema = fn("f", {"t": {"type": "array", "items": {"type": "float"}}})
    assert match_call("f", {"t": (1.5, 2.5)}, ExpectedCall("f", {"t": [[1.5, 2.5]]}), array_schema).kind == "wrong_type"


def test_openai_tools_and_bare_json_schemas_are_read_for_required_arguments() -> None:
    params = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    ref = ExpectedCall("f", {"x": ["", 1]})
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    for schema in (tool, params, {"name": "f", "parameters": params}):
        assert match_call("f", {}, ref, schema).kind == "missing_argument", schema
    assert match_call("f", {}, ref).ok  # no schema: nothing is required


def test_a_schema_without_properties_expects_no_arguments_and_odd_required_lists_are_ignored() -> None:
    ref = ExpectedCall("f", {"x": [1]})
    assert match_call("f", {"x": 1}, ref, {"type": "object"}).unexpected == ("x",)
    props = {"x": {"type": "integer"}}
    assert match_call("f", {"x": 1}, ref, {"type": "object", "properties": props, "required": True}).ok
    assert match_call("f", {"x": 1}, ref, {"type": "object", "properties": props, "required": [1, "x"]}).ok


def test_turn_verdicts_say_what_failed() -> None:
    refs = [AREA_REF, ExpectedCall("area", {"base": [3], "height": [4]})]
    one = [("area", {"base": 10, "height": 5})]
    v = match_calls(one, refs, {"area": AREA})
    ok = CallVerdict(True, "ok", "matches", True)
    assert v == CallsVerdict(False, "wrong_count", "1 call(s), expected 2", ((0, 0, ok),))
    two = [("area", {"base": 10, "height": 5}), ("area", {"base": 3, "height": 4})]
    assert match_calls(two, refs, {"area": AREA}) == CallsVerdict(
        True, "ok", "every expected call matched", ((0, 0, ok), (1, 1, ok))
    )
    wrong = match_calls([two[0], ("area", {"base": 3, "height": 5})], refs, {"area": AREA})
    assert (wrong.ok, wrong.kind) == (False, "wrong_value")
    assert wrong.reason == "call 1 vs expected 'area': argument 'height' = 5 is not one of [4]"


def test_turn_schemas_are_used() -> None:
    schema = fn("f", {"x": {"type": "integer"}}, ["x"])
    v = match_calls([("f", {})], [ExpectedCall("f", {"x": ["", 1]})], {"f": schema})
    assert v.kind == "missing_argument"


def test_failed_calls_are_paired_with_their_closest_references() -> None:
    # No call matches; each is paired with the reference it is nearest to (fewest failing arguments).
    refs = [ExpectedCall("f", {"a": [1], "b": [2]}), ExpectedCall("f", {"a": [5], "b": [6]})]
    calls = [("f", {"a": 5, "b": 7}), ("f", {"a": 1, "b": 9})]
    v = match_calls(calls, refs)
    assert [(i, j, p.wrong_values) for i, j, p in v.pairs] == [(1, 0, ("b",)), (0, 1, ("b",))]
    # Unexpected arguments count as failures too.
    refs = [ExpectedCall("f", {"a": [1], "b": [2], "c": [3]}), ExpectedCall("f", {"a": [9]})]
    calls = [("f", {"a": 9, "b": 2, "c": 3}), ("f", {"a": 1, "b": 2, "c": 4})]
    v = match_calls(calls, refs)
    assert [(i, j) for i, j, _ in v.pairs] == [(0, 0), (1, 1)]
    # A call to another function is paired last.
    refs = [ExpectedCall("f", {"a": [1]}), ExpectedCall("g", {"a": [1]})]
    v = match_calls([("g", {"a": 2}), ("h", {"a": 1})], refs)
    assert [(i, j) for i, j, _ in v.pairs] == [(1, 0), (0, 1)]


refs_st = st.lists(st.frozensets(st.integers(1, 3), min_size=1, max_size=2), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None)
@given(refs_st, st.data())
def test_a_turn_is_ok_exactly_when_some_one_to_one_pairing_matches(refs: list[frozenset[int]], data: Any) -> None:
    expected = [ExpectedCall("f", {"x": sorted(r)}) for r in refs]
    n = data.draw(st.integers(len(refs) - 1, len(refs) + 1))
    calls = [("f", json.dumps({"x": data.draw(st.integers(1, 3))})) for _ in range(n)]
    v = match_calls(calls, expected)
    fits = [[json.loads(c[1])["x"] in r for r in refs] for c in calls]
    possible = n == len(refs) and any(all(fits[p[j]][j] for j in range(n)) for p in itertools.permutations(range(n)))
    assert v.ok == possible
    # Every call and every reference at most once, as many pairs as can be made, in the references' order.
    assert len(v.pairs) == min(n, len(refs))
    assert len({i for i, _, _ in v.pairs}) == len({j for _, j, _ in v.pairs}) == len(v.pairs)
    assert [j for _, j, _ in v.pairs] == sorted(j for _, j, _ in v.pairs)
    assert all(p == match_call(calls[i][0], calls[i][1], expected[j]) for i, j, p in v.pairs)
    if n != len(refs):
        assert v.kind == "wrong_count"
    else:  # a maximum matching: as many ok pairs as any pairing has
        best = max(sum(fits[p[j]][j] for j in range(n)) for p in itertools.permutations(range(n)))
        assert sum(p.ok for _, _, p in v.pairs) == best
