"""A safe arithmetic evaluator (an `ast` walker, never `eval`) and the `calculator` tool built on it.

Integers and exact decimals are computed as `Fraction`s, so `0.1 + 0.2` is exactly `0.3` and
`7 / 2 * 2` is exactly `7`. Only a non-integer power leaves exact arithmetic for `float`.
"""

from __future__ import annotations

import ast
import math
import warnings
from fractions import Fraction

from ._tools import tool

Number = int | Fraction | float

MAX_LENGTH = 1000
"""Longest expression accepted, in characters."""
MAX_ABS = 10**100
"""Largest magnitude of any literal, intermediate or final result."""
MAX_POWER_BITS = 4096
"""`a ** n` is refused when `n` times the bit length of `a`'s numerator or denominator passes this."""
_MAX_DENOMINATOR = 10**30  # beyond this an exact fraction is not worth its cost: fall back to float

_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_Value = Fraction | float


def evaluate_expression(expression: str) -> Number:
    """Evaluate arithmetic: numbers, `+ - * / // % **`, unary `+ -` and parentheses.

    Returns an `int` when the result is a whole number, a `Fraction` when it is an exact
    non-integer, and a `float` when it is inexact (a non-integer power). Anything else (names,
    calls, attribute access, strings) and every arithmetic failure (division by zero, a
    result too large) raises `ValueError` with a message that says what is wrong.
    """
    if not isinstance(expression, str):
        raise ValueError(f"expression must be a string, got {type(expression).__name__}")
    text = expression.strip().replace("\u00d7", "*").replace("\u00f7", "/").replace("\u2212", "-").rstrip("=").strip()
    if not text:
        raise ValueError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression too long ({len(text)} characters; at most {MAX_LENGTH})")
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: a model's typo, not ours
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("expression too deeply nested") from None
    try:
        value = _eval(tree.body)
    except RecursionError:
        raise ValueError("expression too deeply nested") from None
    return _simplify(value)


def format_number(value: Number) -> str:
    """Whole numbers print as integers (`6`, not `6.0`); others with up to 10 significant digits."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(value.numerator)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{float(value):.10g}"
    return "0" if text == "-0" else text


def calculate(expression: str) -> str:
    """`evaluate_expression` then `format_number`: the text the calculator tool returns."""
    return format_number(evaluate_expression(expression))


@tool(name="calculator")
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result.

    Supports numbers, + - * / // % ** and parentheses, e.g. "(12 + 7) * 3 / 4".

    Args:
        expression: The arithmetic expression to evaluate, e.g. "23 * (4 + 5)".
    """
    return calculate(expression)


def _simplify(value: _Value) -> Number:
    if isinstance(value, Fraction):
        return value.numerator if value.denominator == 1 else value
    return value


def _check(value: _Value) -> _Value:
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_ABS:
            raise ValueError("result too large")
        return value
    if abs(value) > MAX_ABS:
        raise ValueError("result too large")
    if value.denominator > _MAX_DENOMINATOR:
        return float(value)
    return value


def _eval(node: ast.expr) -> _Value:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a string" if isinstance(value, str) else repr(value)
            raise ValueError(f"only numbers are allowed, got {kind}")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("number too large")
            return _check(Fraction(str(value)))  # via str: 0.1 means exactly 1/10
        return _check(Fraction(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _check(_binop(_BINOPS[type(node.op)], _eval(node.left), _eval(node.right)))
    raise ValueError(_refusal(node))


def _binop(op: str, a: _Value, b: _Value) -> _Value:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "**":
        return _power(a, b)
    if b == 0:
        raise ValueError("division by zero" if op != "%" else "modulo by zero")
    if op == "/":
        return a / b
    if op == "//":
        return Fraction(math.floor(a / b))
    return a % b


def _power(base: _Value, exponent: _Value) -> _Value:
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        n = exponent.numerator
        if isinstance(base, Fraction):
            if base == 0 and n < 0:
                raise ValueError("division by zero (0 raised to a negative power)")
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if bits > 1 and abs(n) * (bits - 1) > MAX_POWER_BITS:  # |base| in {0, 1} is always safe
                raise ValueError(f"exponent too large: {n}")
            return base**n
    if base == 0 and exponent < 0:
        raise ValueError("division by zero (0 raised to a negative power)")
    try:
        result = math.pow(float(base), float(exponent))
    except OverflowError:
        raise ValueError("result too large") from None
    except ValueError:
        raise ValueError("no real result (a negative number raised to a fractional power)") from None
    return result


def _refusal(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"names are not allowed: {node.id!r} (only numbers and + - * / // % ** and parentheses)"
    if isinstance(node, ast.Call):
        return "function calls are not allowed (only numbers and + - * / // % ** and parentheses)"
    if isinstance(node, ast.Attribute):
        return "attribute access is not allowed (only numbers and + - * / // % ** and parentheses)"
    if isinstance(node, ast.Tuple):
        return "commas are not allowed: write numbers without thousands separators and one expression at a time"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        return "'^' is not supported: use ** for powers"
    return f"unsupported syntax: {type(node).__name__} (only numbers and + - * / // % ** and parentheses)"
