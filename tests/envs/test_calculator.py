from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hone.envs import calculate, calculator, evaluate_expression, format_number


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 3 ** 2", 512),
        ("-3 ** 2", -9),
        ("(-3) ** 2", 9),
        ("7 / 2", Fraction(7, 2)),
        ("7 / 2 * 2", 7),
        ("10 // 3", 3),
        ("-7 // 2", -4),
        ("10 % 4", 2),
        ("1.5 * 2", 3),
        ("+5 - -5", 10),
        ("2 ** -2", Fraction(1, 4)),
        (" 12 - 4 - 3 = ", 5),
        ("6 \u00d7 7 \u00f7 2", 21),
    ],
)
def test_arithmetic_and_precedence(expression: str, expected: object) -> None:
    result = evaluate_expression(expression)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expression", "text"),
    [("6 / 1", "6"), ("2.50 * 2", "5"), ("0.1 + 0.2", "0.3"), ("1 / 3", "0.3333333333"), ("2 ** 0.5", "1.414213562")],
)
def test_formatting(expression: str, text: str) -> None:
    assert calculate(expression) == text


def test_format_number_integral_float_prints_as_int() -> None:
    assert format_number(6.0) == "6"
    assert format_number(Fraction(12, 4)) == "3"
    assert format_number(-0.0) == "0"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x + 1", "names are not allowed"),
        ("abs(-1)", "function calls are not allowed"),
        ("__import__('os').system('true')", "function calls are not allowed"),
        ("(1).real", "attribute access is not allowed"),
        ("'a' * 3", "only numbers"),
        ("[1, 2]", "unsupported syntax"),
        ("1 if 1 else 2", "unsupported syntax"),
        ("lambda: 1", "unsupported syntax"),
        ("1,234 + 1", "commas are not allowed"),
        ("2 ^ 3", r"use \*\*"),
        ("1 +", "invalid expression"),
        ("", "empty expression"),
        ("True + 1", "only numbers"),
    ],
)
def test_rejects_everything_but_arithmetic(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_expression(expression)


@pytest.mark.parametrize("expression", ["9**9**9", "10**1000", "2**10**10", "(10**60)*(10**60)", "1e400", "10.0**400"])
def test_huge_results_are_refused_fast(expression: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match="too large"):
        evaluate_expression(expression)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("expression", "word"),
    [("1 / 0", "division"), ("1 // (2 - 2)", "division"), ("5 % 0", "modulo"), ("0 ** -1", "division")],
)
def test_division_by_zero_has_a_clear_message(expression: str, word: str) -> None:
    with pytest.raises(ValueError, match=f"{word} by zero"):
        evaluate_expression(expression)


def test_length_and_nesting_limits_raise_value_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        evaluate_expression("1+" * 600 + "1")
    with pytest.raises(ValueError):
        evaluate_expression("(" * 300 + "1" + ")" * 300)
    assert evaluate_expression("-" * 400 + "1") == 1  # a long unary chain is fine within the limits


def test_negative_base_fractional_power_is_refused() -> None:
    with pytest.raises(ValueError, match="no real result"):
        evaluate_expression("(-8) ** (1 / 3)")


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6), st.integers(1, 1000))
def test_matches_python_integer_arithmetic(a: int, b: int, c: int) -> None:
    assert evaluate_expression(f"{a} + {b} * {c}") == a + b * c
    assert evaluate_expression(f"({a} - {b}) // {c}") == (a - b) // c
    assert evaluate_expression(f"{a} * {c} / {c}") == a


def test_calculator_tool_spec() -> None:
    spec = calculator.spec
    assert spec.name == "calculator"
    assert spec.description.startswith("Evaluate an arithmetic expression")
    assert spec.parameters["required"] == ["expression"]
    assert spec.parameters["properties"]["expression"]["type"] == "string"
    assert "23 * (4 + 5)" in spec.parameters["properties"]["expression"]["description"]
    assert calculator("3 * 4") == "12"  # a decorated tool is still callable as the function
