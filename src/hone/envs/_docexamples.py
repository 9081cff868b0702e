"""Public tests from the examples in a function's docstring (HumanEval style), and code in a model's reply.

Docstrings write examples in many ways: doctest (`>>> f(1)` then the output line),
`f(1) == 2`, `f(1) ➞ 2`, `f(1) => 2`, `f(1) -> 2`, `f(1) = 2`, `f(1) returns 2`,
`f(1) should return 2.`, `f(1)  # returns 2`. `doc_examples` finds each call of the entry
point that parses as Python and an expected value that `ast.literal_eval` accepts (the
longest such prefix of what follows the arrow, so trailing prose is dropped); examples
that do not fit are skipped, never guessed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# What may sit between a call and its expected value; longest first so `==>` wins over `==`.
_ARROWS = ("should return", "# returns", "# =>", "returns", "==>", "==", "=>", "➞", "->", "=")
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_OPEN_BLOCK = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*)$", re.DOTALL | re.IGNORECASE)
_WORDS = {"true": "True", "false": "False", "none": "None"}


@dataclass(frozen=True)
class DocExample:
    """One example from a docstring: the call's source and the expected value's source."""

    call: str
    expected: str

    def test_code(self) -> str:
        """An assertion that fails with both values shown (floats compared within 1e-6)."""
        return (
            f"_hone_got = {self.call}\n"
            f"_hone_want = {self.expected}\n"
            "if isinstance(_hone_want, float) and isinstance(_hone_got, (int, float)):\n"
            "    assert abs(_hone_got - _hone_want) <= 1e-6 * max(1.0, abs(_hone_want)), "
            f"f'{_escape(self.call)} returned {{_hone_got!r}}, expected {{_hone_want!r}}'\n"
            "else:\n"
            f"    assert _hone_got == _hone_want, f'{_escape(self.call)} returned {{_hone_got!r}}, "
            "expected {_hone_want!r}'\n"
        )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("{", "{{").replace("}", "}}")


def _call_end(text: str, start: int) -> int | None:
    """Index just past the parenthesis closing the one at `start` (strings respected), or None."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _literal(text: str) -> str | None:
    """The longest prefix of `text` that is a Python literal (true/false/none spelled as in prose allowed),
    when what follows it is prose: `1 + 9 = 10` (arithmetic) or `""abc"` (a broken string) give None."""
    text = text.strip()
    for word, python in _WORDS.items():
        if text.lower().startswith(word) and (len(text) == len(word) or not text[len(word)].isalnum()):
            text = python + text[len(word) :]
    for end in range(len(text), 0, -1):
        piece = text[:end].strip().rstrip(".,;")
        if not piece:
            continue
        try:
            ast.literal_eval(piece)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        rest = text[end:].strip()
        if rest and (rest[0] in "+-*/%=<>\"'" or (rest[0].isalnum() and not text[end].isspace())):
            return None
        return piece
    return None


def _valid_call(call: str, entry_point: str) -> bool:
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return False
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point):
        return False
    try:  # literal arguments only: `is_happy(a)` in prose means the string, not a variable
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            ast.literal_eval(arg)
    except (ValueError, SyntaxError, TypeError):
        return False
    return True


def doc_examples(prompt: str, entry_point: str) -> list[DocExample]:
    """The examples of `entry_point` written in `prompt` (its docstring), in order, without duplicates."""
    found: list[DocExample] = []
    lines = prompt.splitlines()
    pattern = re.compile(rf"(?<![\w.]){re.escape(entry_point)}\s*\(")
    for index, line in enumerate(lines):
        if line.lstrip().startswith("def "):
            continue
        for match in pattern.finditer(line):
            end = _call_end(line, match.end() - 1)
            if end is None:
                continue
            call = line[match.start() : end]
            if not _valid_call(call, entry_point):
                continue
            rest = line[end:].strip()
            expected: str | None = None
            if line.lstrip().startswith(">>>") and not rest:
                following = lines[index + 1].strip() if index + 1 < len(lines) else ""
                expected = _literal(following) if following and not following.startswith(">>>") else None
            else:
                for arrow in _ARROWS:
                    if rest.lower().startswith(arrow):
                        expected = _literal(rest[len(arrow) :])
                        break
            if expected is not None:
                example = DocExample(call, expected)
                if example not in found:
                    found.append(example)
    return found


def extract_code(text: str | None) -> str | None:
    """The Python code in a model's reply: the last fenced block, an unclosed final block, or the text itself
    when it already parses as Python."""
    if not text or not text.strip():
        return None
    blocks = _CODE_BLOCK.findall(text)
    if blocks:
        return str(blocks[-1]).rstrip() + "\n"
    tail = _OPEN_BLOCK.search(text)
    if tail:
        return str(tail.group(1)).rstrip() + "\n"
    try:
        ast.parse(text)
    except SyntaxError:
        return None
    return text.rstrip() + "\n"


def defines(code: str, name: str) -> bool:
    """Whether `code` defines a top-level function `name` (a whole function, not a body to append)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return re.search(rf"^def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name for n in tree.body)


def assemble(prompt: str, code: str, entry_point: str) -> str:
    """The program to test: the prompt (imports, helpers, the stub) then the model's function, which
    replaces the stub; or the prompt continued by `code` when the model wrote only the body."""
    if defines(code, entry_point):
        return f"{prompt.rstrip()}\n    pass\n\n\n{code}"
    return prompt + code
