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


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("#### 42\nthen 7", "42"),  # the #### line wins over a later number
        ("The answer is: blue sky\nthen 9\nand 11", "blue sky"),  # the rest of that line only
        ("so \\boxed{yes}.", "yes"),  # the braces' content, not what follows
        ("\\boxed{\\frac{1}{2}}", "1/2"),  # nested braces
        ("\\boxed{12", "12"),  # unclosed: the last number
        ("\\boxed{\\$5}", "5"),
        ("\\boxed{50\\%}", "50%"),
        ("\\boxed{1\\!000}", "1000"),
        ("Answer: **blue**.", "blue"),
        ("Answer: **blue.**", "blue"),
        ("Answer: **Xmas**", "Xmas"),
        ("Answer: TAX.", "TAX"),
        ("the answer is \u22125", "-5"),
    ],
)
def test_extract_final_answer_cases(text: str, want: str) -> None:
    assert extract_final_answer(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [("€1,000", 1000.0), ("£3", 3.0), ("1 000", 1000.0), ("inf", None), ("nan", None), ("-1e400", None), ("42.", 42.0)],
)
def test_parse_number_cases(text: str, want: float | None) -> None:
    assert parse_number(text) == want


def test_numbers_match_has_an_absolute_tolerance_near_zero() -> None:
    assert numbers_match("0", "0.0000001") and not numbers_match("0", "0.01")
    assert numbers_match("100", "100.00001", rel_tol=1e-6, abs_tol=0.0)
