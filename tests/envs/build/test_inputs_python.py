"""A Python module of typed, documented functions as a build input (read from its syntax tree, run in the sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _inputs_sandbox import run_calls

from hone.core import ConfigError
from hone.envs.build._inputs import load_source

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def library():  # type: ignore[no-untyped-def]
    return load_source(SPECS / "library.py")


def test_tools_schemas_and_effects(library) -> None:  # type: ignore[no-untyped-def]
    assert library.kind == "python" and library.name == "library"
    assert [t.name for t in library.tools] == ["find_books", "book_details", "borrow_book"]  # _private_helper is not
    find = library.tools[0].parameters
    assert find["properties"]["genre"]["enum"] == ["scifi", "classic", "poetry"]  # Literal
    assert find["properties"]["available_only"] == {
        "default": False,
        "description": "Only books with a copy on the shelf.",
        "type": "boolean",
    }
    assert find["required"] == ["genre"]
    borrow = library.tools[2]
    fmt = borrow.parameters["properties"]["format"]
    assert fmt["enum"] == ["print", "audio"] and fmt["default"] == "print"  # an Enum class of the module
    assert borrow.parameters["properties"]["weeks"]["type"] == "integer"  # `int | None` is one type, optional
    assert borrow.parameters["required"] == ["member_id", "book_id"]
    assert [t.effect for t in library.tools] == ["read", "read", "write"]  # borrow_book mutates state via an alias
    assert library.tools[0].returns == "list[str]: The matching book ids, sorted."
    assert library.tools[0].description == "Lists the ids of the books of a genre."


def test_utterances_pools_groups(library) -> None:  # type: ignore[no-untyped-def]
    for doc in library.tools:
        assert 2 <= len(doc.utterances) <= 4 and len(set(doc.utterances)) == len(doc.utterances)
        for text in doc.utterances:
            for arg in doc.parameters["required"]:
                assert "{" + arg + "}" in text
    assert library.tools[2].utterances[0].startswith("Please lend a book to a member")
    pools = library.data["pools"]
    assert pools["book_id"] == ["B1", "B2", "B3"] and pools["member_id"] == ["M1", "M2"]  # seeded records
    assert pools["genre"][:2] == ["scifi", "classic"] and "poetry" in pools["genre"]  # docstring examples, enum
    assert pools["format"] == ["print", "audio"]
    assert library.data["groups"] == {"catalogue": ["find_books", "book_details"], "loans": ["borrow_book"]}
    assert library.backend.state["books"]["B1"]["copies"] == 2


def test_backend_runs_in_the_sandbox(library) -> None:  # type: ignore[no-untyped-def]
    borrow, missing, found = run_calls(
        library,
        [("borrow_book", {"member_id": "M1", "book_id": "B1", "format": "audio"}), ("book_details", {"book_id": "B1"})],
        [("book_details", {"book_id": "B9"})],
        [("find_books", {"genre": "scifi", "available_only": True})],
    )
    assert borrow.error is None and borrow.results is not None
    assert borrow.results[0] == ["loan 1"] and borrow.results[1][0]["copies"] == 1
    assert borrow.state["loans"] == [{"member": "M1", "book": "B1", "format": "audio", "weeks": 3}]  # Enum arrived
    assert missing.error == "book_details: value_error: no book with id 'B9'"
    assert found.results == [[["B1"]]]


def test_all_restricts_the_tools(tmp_path: Path) -> None:
    path = tmp_path / "two.py"
    path.write_text(
        '__all__ = ["b"]\n\ndef a(x: int) -> int:\n    """A."""\n    return x\n\n'
        'def b(x: int) -> int:\n    """B doubles x."""\n    return 2 * x\n'
    )
    spec = load_source(path)
    assert [t.name for t in spec.tools] == ["b"] and spec.backend is not None and spec.backend.state == {}


def test_every_tool_lands_in_one_group(tmp_path: Path) -> None:
    path = tmp_path / "mixed.py"
    path.write_text(
        'def a(x: int) -> int:\n    """A."""\n    return x\n\n# %% Billing\n\n'
        'def b(x: int) -> int:\n    """B."""\n    return x\n'
    )
    assert load_source(path).data["groups"] == {"general": ["a"], "billing": ["b"]}
    path.write_text('def a(x: int) -> int:\n    """A."""\n    return x\n')
    assert "groups" not in load_source(path).data  # no sections: the pipeline makes one scenario


BAD = {
    "untyped": ('def f(x, y: int) -> int:\n    """Adds."""\n    return y\n', "function 'f' (line 1): parameter(s) x"),
    "undocumented": ("def f(x: int) -> int:\n    return x\n", "function 'f' (line 1): has no docstring"),
    "syntax": ("def f(x: int) -> int\n    return x\n", "bad.py: line 1: syntax error"),
    "type": ('def f(x: set[int]) -> int:\n    """S."""\n    return 1\n', "parameter 'x': type 'set[int]'"),
    "dict_keys": ('def f(x: dict[int, str]) -> int:\n    """S."""\n    return 1\n', "dict keys must be str"),
    "async": ('async def f(x: int) -> int:\n    """S."""\n    return 1\n', "async functions are not supported"),
    "varargs": ('def f(*xs: int) -> int:\n    """S."""\n    return 1\n', "*args, **kwargs"),
    "no_tools": ('def _f(x: int) -> int:\n    """S."""\n    return 1\n', "no public typed function"),
    "enum": ("from enum import Enum\nclass C(Enum):\n    A = object()\n", "enum 'C': a member value is not a literal"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_modules_are_one_line_errors(tmp_path: Path, case: str) -> None:
    source, expected = BAD[case]
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ConfigError) as info:
        load_source(path)
    message = str(info.value)
    assert message.startswith("bad.py") and expected in message and "\n" not in message
    assert ";" in message  # ... and what to do


def test_the_module_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.py"
    path.write_text(
        f'open({str(marker)!r}, \'w\').write(\'x\')\n\ndef f(x: int) -> int:\n    """Returns x."""\n    return x\n'
    )
    assert [t.name for t in load_source(path).tools] == ["f"]
    assert not marker.exists()


def test_typing_forms() -> None:
    spec = load_source(SPECS / "typing_forms.py")  # `from __future__ import annotations`, typing.*, strings
    props = spec.tools[0].parameters["properties"]
    assert props["a"] == {"description": "Some ints.", "items": {"type": "integer"}, "type": "array"}
    assert props["b"]["additionalProperties"] == {"type": "number"}
    assert props["c"] == {"type": "string", "description": "Optional text."}  # Optional[str] = None
    assert props["d"]["enum"] == ["x", "y"] and props["g"] == {"default": 2, "type": "integer"}  # Annotated
    assert props["e"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert props["h"] == {"items": {"enum": [1, 3], "type": "integer"}, "type": "array"}  # list[IntEnum] | None
    assert props["k"]["description"] == "A flag continued on the next line."  # keyword-only, wrapped doc
    assert spec.tools[0].parameters["required"] == ["a", "b"]
    assert spec.tools[0].returns == "Dict[str, int]: A mapping of counts."
    (run,) = run_calls(spec, [("f", {"a": [1], "b": {"x": 1.5}, "h": [3, 1]})])
    assert run.error is None and run.results == [[{}]]  # the IntEnum list arrived as members
