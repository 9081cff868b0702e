"""BFCL's AST-matching rules, one hand-made case per rule (each fails if its rule breaks)."""

from __future__ import annotations

from typing import Any

import pytest

from hone.feedback._toolmatch import ExpectedCall, match_call, match_calls, standardise


def fn(name: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A BFCL-style function description."""
    return {"name": name, "parameters": {"type": "dict", "properties": props, "required": required or []}}


AREA = fn(
    "geometry.area",
    {"base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}},
    ["base", "height"],
)
AREA_REF = ExpectedCall("geometry.area", {"base": [10], "height": [5], "unit": ["units", ""]})


def test_exact_ground_truth_is_ok() -> None:
    v = match_call("geometry.area", {"base": 10, "height": 5}, AREA_REF, AREA)
    assert v.ok and v.kind == "ok" and v.name_ok


def test_wrong_function_name() -> None:
    v = match_call("geometry_area", {"base": 10, "height": 5}, AREA_REF, AREA)
    assert not v.ok and v.kind == "wrong_function" and not v.name_ok


def test_missing_required_argument() -> None:
    v = match_call("geometry.area", {"base": 10}, AREA_REF, AREA)
    assert v.kind == "missing_argument" and v.missing == ("height",)


def test_missing_required_is_reported_before_other_errors() -> None:
    v = match_call("geometry.area", {"base": 11, "colour": "red"}, AREA_REF, AREA)
    assert v.kind == "missing_argument"
    assert v.unexpected == ("colour",) and v.wrong_values == ("base",)


def test_argument_without_empty_string_must_be_given_even_if_not_required() -> None:
    ref = ExpectedCall("f", {"a": [1], "b": [2]})
    schema = fn("f", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a"])
    assert match_call("f", {"a": 1}, ref, schema).kind == "missing_argument"
    optional = ExpectedCall("f", {"a": [1], "b": [2, ""]})
    assert match_call("f", {"a": 1}, optional, schema).ok


def test_unknown_argument_to_schema_is_unexpected() -> None:
    v = match_call("geometry.area", {"base": 10, "height": 5, "colour": "red"}, AREA_REF, AREA)
    assert v.kind == "unexpected_argument" and v.unexpected == ("colour",)


def test_argument_in_schema_but_not_in_reference_is_unexpected() -> None:
    ref = ExpectedCall("geometry.area", {"base": [10], "height": [5]})
    v = match_call("geometry.area", {"base": 10, "height": 5, "unit": "cm"}, ref, AREA)
    assert v.kind == "unexpected_argument"


def test_wrong_value() -> None:
    v = match_call("geometry.area", {"base": 10, "height": 6}, AREA_REF, AREA)
    assert v.kind == "wrong_value" and v.wrong_values == ("height",)


def test_every_listed_value_is_acceptable() -> None:
    ref = ExpectedCall("f", {"city": ["New York", "NYC"]})
    schema = fn("f", {"city": {"type": "string"}}, ["city"])
    assert match_call("f", {"city": "NYC"}, ref, schema).ok
    assert match_call("f", {"city": "New York"}, ref, schema).ok
    assert not match_call("f", {"city": "Boston"}, ref, schema).ok


def test_string_standardisation_ignores_case_spaces_and_punctuation() -> None:
    ref = ExpectedCall("f", {"d": ["April 1, 2024"]})
    schema = fn("f", {"d": {"type": "string"}}, ["d"])
    for variant in ("april 1,2024", "APRIL 1 2024", "April-1-2024", "april_1.2024", "April/1*2024^"):
        assert match_call("f", {"d": variant}, ref, schema).ok, variant
    assert not match_call("f", {"d": "April 2, 2024"}, ref, schema).ok
    assert standardise("It's A-B") == 'it"sab'


def test_single_quote_reads_as_double_quote() -> None:
    ref = ExpectedCall("f", {"q": ['say "hi"']})
    schema = fn("f", {"q": {"type": "string"}}, ["q"])
    assert match_call("f", {"q": "say 'hi'"}, ref, schema).ok


def test_type_must_match_exactly_bool_is_not_int() -> None:
    schema = fn("f", {"n": {"type": "integer"}}, ["n"])
    ref = ExpectedCall("f", {"n": [1]})
    v = match_call("f", {"n": True}, ref, schema)
    assert v.kind == "wrong_type"
    assert match_call("f", {"n": "1"}, ref, schema).kind == "wrong_type"
    flag = ExpectedCall("f", {"b": [True]})
    assert match_call("f", {"b": 1}, flag, fn("f", {"b": {"type": "boolean"}})).kind == "wrong_type"


def test_int_is_accepted_for_float_but_not_float_for_int() -> None:
    schema = fn("f", {"x": {"type": "float"}}, ["x"])
    assert match_call("f", {"x": 3}, ExpectedCall("f", {"x": [3.0]}), schema).ok
    int_schema = fn("f", {"x": {"type": "integer"}}, ["x"])
    assert match_call("f", {"x": 3.0}, ExpectedCall("f", {"x": [3]}), int_schema).kind == "wrong_type"


def test_json_schema_spellings_number_and_object() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}, "o": {"type": "object"}}, "required": ["x"]}
    ref = ExpectedCall("f", {"x": [2.5, 2], "o": [{"k": ["V"]}, ""]})
    assert match_call("f", {"x": 2}, ref, schema).ok
    assert match_call("f", {"x": 2.5, "o": {"k": "v"}}, ref, schema).ok
    assert match_call("f", {"x": "2"}, ref, schema).kind == "wrong_type"


def test_variable_of_reference_type_passes_type_check() -> None:
    # BFCL: a reference written as a string for an integer parameter is a variable name.
    schema = fn("f", {"n": {"type": "integer"}}, ["n"])
    ref = ExpectedCall("f", {"n": ["count"]})
    assert match_call("f", {"n": "count"}, ref, schema).ok
    assert match_call("f", {"n": "Count"}, ref, schema).kind == "wrong_value"  # variables compare exactly


def test_array_items_are_type_checked_one_level_deep() -> None:
    schema = fn("f", {"xs": {"type": "array", "items": {"type": "integer"}}}, ["xs"])
    ref = ExpectedCall("f", {"xs": [[1, 2]]})
    assert match_call("f", {"xs": [1, 2]}, ref, schema).ok
    assert match_call("f", {"xs": [1, "2"]}, ref, schema).kind == "wrong_type"
    assert match_call("f", {"xs": [2, 1]}, ref, schema).kind == "wrong_value"  # list order matters


def test_list_strings_are_standardised() -> None:
    schema = fn("f", {"xs": {"type": "array", "items": {"type": "string"}}}, ["xs"])
    ref = ExpectedCall("f", {"xs": [["New York", "Los Angeles"]]})
    assert match_call("f", {"xs": ["new york", "LOS ANGELES"]}, ref, schema).ok
    assert not match_call("f", {"xs": ["new york"]}, ref, schema).ok


def test_tuple_type_is_an_array() -> None:
    schema = fn("f", {"t": {"type": "tuple", "items": {"type": "float"}}}, ["t"])
    assert match_call("f", {"t": [1.5, 2.5]}, ExpectedCall("f", {"t": [[1.5, 2.5]]}), schema).ok


def test_dict_keys_values_and_optional_keys() -> None:
    schema = fn("f", {"d": {"type": "dict"}}, ["d"])
    ref = ExpectedCall("f", {"d": [{"name": ["John Doe"], "age": [30, ""]}]})
    assert match_call("f", {"d": {"name": "john doe", "age": 30}}, ref, schema).ok
    assert match_call("f", {"d": {"name": "John Doe"}}, ref, schema).ok  # "age" optional
    assert match_call("f", {"d": {"age": 30}}, ref, schema).kind == "wrong_value"  # "name" missing
    assert match_call("f", {"d": {"name": "John Doe", "x": 1}}, ref, schema).kind == "wrong_value"
    assert match_call("f", {"d": {"name": "Jane"}}, ref, schema).kind == "wrong_value"


def test_list_of_dicts_compares_position_by_position() -> None:
    schema = fn("f", {"ds": {"type": "array", "items": {"type": "dict"}}}, ["ds"])
    ref = ExpectedCall("f", {"ds": [[{"a": [1]}, {"a": [2]}]]})
    assert match_call("f", {"ds": [{"a": 1}, {"a": 2}]}, ref, schema).ok
    assert not match_call("f", {"ds": [{"a": 2}, {"a": 1}]}, ref, schema).ok
    assert not match_call("f", {"ds": [{"a": 1}]}, ref, schema).ok


def test_no_schema_infers_type_from_reference() -> None:
    ref = ExpectedCall.exact("f", {"n": 2, "s": "Paris"})
    assert match_call("f", {"n": 2, "s": "paris"}, ref).ok
    assert match_call("f", {"n": "2", "s": "Paris"}, ref).kind == "wrong_type"
    assert match_call("f", {"n": 2}, ref).kind == "missing_argument"


@pytest.mark.parametrize("arguments", ['{"base": 10,', "[1, 2]", "null", '"text"'])
def test_malformed_arguments_are_a_verdict_not_a_crash(arguments: str) -> None:
    v = match_call("geometry.area", arguments, AREA_REF, AREA)
    assert v.kind == "malformed" and not v.ok


def test_json_text_arguments_are_decoded() -> None:
    assert match_call("geometry.area", '{"base": 10, "height": 5}', AREA_REF, AREA).ok


def test_parallel_calls_match_in_any_order() -> None:
    refs = [AREA_REF, ExpectedCall("geometry.area", {"base": [3], "height": [4], "unit": [""]})]
    calls = [("geometry.area", {"base": 3, "height": 4}), ("geometry.area", {"base": 10, "height": 5})]
    schemas = {"geometry.area": AREA}
    assert match_calls(calls, refs, schemas).ok
    ordered = match_calls(calls, refs, schemas, ordered=True)
    assert not ordered.ok and ordered.kind == "wrong_value"


def test_parallel_assignment_is_bipartite_not_greedy() -> None:
    # Call 0 fits both references; greedy pairing of reference 0 with call 0 would strand reference 1.
    schema = fn("f", {"x": {"type": "integer"}}, ["x"])
    refs = [ExpectedCall("f", {"x": [1, 2]}), ExpectedCall("f", {"x": [1]})]
    calls = [("f", {"x": 1}), ("f", {"x": 2})]
    v = match_calls(calls, refs, {"f": schema})
    assert v.ok
    assert {(i, j) for i, j, _ in v.pairs} == {(0, 1), (1, 0)}


def test_missing_and_extra_parallel_calls_are_wrong_count() -> None:
    refs = [AREA_REF, ExpectedCall("geometry.area", {"base": [3], "height": [4]})]
    one = [("geometry.area", {"base": 10, "height": 5})]
    v = match_calls(one, refs, {"geometry.area": AREA})
    assert v.kind == "wrong_count" and len(v.pairs) == 1 and v.pairs[0][2].ok
    assert match_calls(one * 2, [AREA_REF], {"geometry.area": AREA}).kind == "wrong_count"
    assert match_calls([], [AREA_REF]).kind == "wrong_count"


def test_schema_is_looked_up_by_expected_name() -> None:
    other = fn("other", {"base": {"type": "string"}})
    v = match_calls([("other", {"base": "10"})], [AREA_REF], {"geometry.area": AREA, "other": other})
    assert v.kind == "wrong_function"
    assert v.pairs[0][2].name_ok is False


def test_failed_turn_names_the_first_failing_reference() -> None:
    refs = [ExpectedCall("a", {"x": [1]}), ExpectedCall("b", {"y": [2]})]
    v = match_calls([("a", {"x": 1}), ("b", {"y": 3})], refs)
    assert not v.ok and v.kind == "wrong_value" and "'b'" in v.reason
    assert [(i, j, p.ok) for i, j, p in v.pairs] == [(0, 0, True), (1, 1, False)]


def test_arguments_nested_too_deeply_are_malformed_not_an_error() -> None:
    deep: object = 1
    for _ in range(50_000):
        deep = [deep]
    verdict = match_call("f", {"x": deep}, ExpectedCall("f", {"x": [[1]]}))
    assert (verdict.ok, verdict.kind) == (False, "malformed")
