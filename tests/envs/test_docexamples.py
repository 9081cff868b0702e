"""Docstring examples to public tests, and code found in a model's reply."""

from __future__ import annotations

from hone.envs import DocExample, assemble, doc_examples, extract_code


def test_each_example_style_is_found() -> None:
    prompt = '''def f(x, y=0):
    """Adds.
    >>> f(1)
    1
    f(2) == 2
    f(3) ➞ 3
    f(4) => 4
    f(5) -> 5
    f(6) = 6
    f(7) returns 7
    f(8) should return 8.
    f(9)   # returns 9
    f('a') ==> 'a'
    f(10) ==> true
    """
'''
    found = doc_examples(prompt, "f")
    assert [e.call for e in found] == [f"f({i})" for i in range(1, 10)] + ["f('a')", "f(10)"]
    assert [e.expected for e in found] == [str(i) for i in range(1, 10)] + ["'a'", "True"]


def test_prose_and_arithmetic_after_the_arrow_are_not_examples() -> None:
    prompt = '''def g(xs):
    """
    g([1, 3, 2, 0]) == 1 + 9 + 0 + 0 = 10
    g(a) => False
    g([1]) ==> "x" (the first one)
    g([]) == ""broken"
    """
'''
    found = doc_examples(prompt, "g")
    # arithmetic, a variable argument and a broken string are skipped; trailing prose is dropped
    assert found == [DocExample("g([1])", '"x"')]


def test_example_code_raises_with_both_values() -> None:
    ns: dict[str, object] = {}
    exec("def h(x):\n    return x + 1\n", ns)
    exec(DocExample("h(1)", "2").test_code(), ns)
    exec(DocExample("h(0.1)", "1.1").test_code(), ns)  # floats within tolerance
    try:
        exec(DocExample("h(1)", "3").test_code(), ns)
    except AssertionError as exc:
        assert str(exc) == "h(1) returned 2, expected 3"
    else:
        raise AssertionError("a wrong value must fail")


def test_extract_code_from_replies() -> None:
    assert extract_code("Sure:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"
    assert extract_code("```py\na = 1\n```\n```python\nb = 2\n```") == "b = 2\n"  # the last block
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1\n"  # unclosed
    assert extract_code("def f():\n    return 1") == "def f():\n    return 1\n"  # bare code
    assert extract_code("I think the answer is to sort it.") is None
    assert extract_code("") is None


def test_assemble_whole_function_or_body() -> None:
    prompt = 'from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n'
    whole = assemble(prompt, "def f(xs):\n    return sum(xs)\n", "f")
    ns: dict[str, object] = {}
    exec(whole, ns)
    assert ns["f"]([1, 2]) == 3  # type: ignore[operator]
    body = assemble(prompt, "    return sum(xs) * 2\n", "f")
    ns = {}
    exec(body, ns)
    assert ns["f"]([1, 2]) == 6  # type: ignore[operator]
