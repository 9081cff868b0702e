from __future__ import annotations

import pytest

from hone.envs import extract_final_answer, numbers_match, parse_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("so the result is \\boxed{42}.", "42"),
        ("\\boxed{\\frac{3}{4}}", "3/4"),
        ("\\boxed{\\text{{-7}}} and later nothing", "-7"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("The answer is 42.", "42"),
        ("the ANSWER is: $1,234.50 in total.", "1234.50"),
        ("So the answer is 12 apples", "12"),
        ("The answer is 3. Wait, no. The answer is 5.", "5"),
        ("Final answer: -17", "-17"),
        ("answer = -$5", "-5"),
        ("16 - 3 - 4 = 9", "9"),
        ("x = 5-3", "3"),
        ("It takes 3.5 hours", "3.5"),
        ("I think the answer is yes.", "yes"),
        ("no digits here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_final_answer(text: str | None, expected: str | None) -> None:
    assert extract_final_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234.50", 1234.5),
        ("$5", 5.0),
        ("-$5", -5.0),
        ("-3", -3.0),
        ("\u22127", -7.0),
        ("3/4", 0.75),
        ("\\frac{1}{2}", 0.5),
        ("50%", 50.0),
        ("42.", 42.0),
        (".5", 0.5),
        (7, 7.0),
        ("abc", None),
        ("1/0", None),
        ("42 apples", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_number(text: str | int | None, value: float | None) -> None:
    assert parse_number(text) == value


def test_numbers_match() -> None:
    assert numbers_match("18", 18)
    assert numbers_match("1,000", "1000.0")
    assert numbers_match("0.3333333", "1/3", rel_tol=1e-6)
    assert not numbers_match("18", 19)
    assert not numbers_match("18.01", 18)
    assert not numbers_match(None, 18)
    assert not numbers_match("eighteen", 18)
