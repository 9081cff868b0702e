from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _env_driver import drive

from hone.core import ConfigError, DataError, EnvError, Message, ToolCall, Trajectory
from hone.envs import BFCL, make_env
from hone.envs._bfcl import (
    CATEGORIES,
    PACKAGED_DIR,
    grade_message,
    json_schema,
    load,
    reference_answer,
    resolve_dir,
    tool_names,
)
from hone.models import Scripted, call_tool

SHARED = Path(__file__).parents[3] / "shared/data/bfcl"
# The shipped copy is the real data (gzipped): the tests always have it; the shared copy is checked against it.
REAL = PACKAGED_DIR
needs_real = pytest.mark.skipif(
    not (REAL / "BFCL_v4_simple_python.json.gz").is_file(), reason=f"no BFCL data at {REAL}"
)

FACTORIAL = {
    "name": "math.factorial",
    "description": "Factorial of n.",
    "parameters": {"type": "dict", "properties": {"number": {"type": "integer"}}, "required": ["number"]},
}
AREA = {
    "name": "geometry.area_circle",
    "description": "Area of a circle.",
    "parameters": {
        "type": "dict",
        "properties": {"radius": {"type": "float"}, "units": {"type": "string"}},
        "required": ["radius"],
    },
}


def write_data(root: Path, rows: dict[str, list[tuple[str, str, list[Any], list[Any]]]]) -> Path:
    """BFCL-layout JSON Lines files: category -> [(id, question, functions, ground truth)]."""
    (root / "possible_answer").mkdir(parents=True, exist_ok=True)
    for category, items in rows.items():
        q = [{"id": i, "question": [[{"role": "user", "content": text}]], "function": fns} for i, text, fns, _ in items]
        a = [{"id": i, "ground_truth": gt} for i, _, _, gt in items]
        (root / f"BFCL_v4_{category}.json").write_text("".join(json.dumps(r) + "\n" for r in q))
        (root / "possible_answer" / f"BFCL_v4_{category}.json").write_text("".join(json.dumps(r) + "\n" for r in a))
    return root


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_data(
        tmp_path / "bfcl",
        {
            "simple_python": [("simple_python_0", "What is 5!?", [FACTORIAL], [{"math.factorial": {"number": [5]}}])],
            "multiple": [
                (
                    "multiple_0",
                    "Area of a circle of radius 2 cm?",
                    [FACTORIAL, AREA],
                    [{"geometry.area_circle": {"radius": [2.0], "units": ["cm", "centimeters", ""]}}],
                )
            ],
            "parallel": [
                (
                    "parallel_0",
                    "What are 3! and 4!?",
                    [FACTORIAL],
                    [{"math.factorial": {"number": [3]}}, {"math.factorial": {"number": [4]}}],
                )
            ],
            "parallel_multiple": [
                (
                    "parallel_multiple_0",
                    "6! and the area of a circle of radius 1?",
                    [FACTORIAL, AREA],
                    [{"math.factorial": {"number": [6]}}, {"geometry.area_circle": {"radius": [1.0], "units": [""]}}],
                )
            ],
        },
    )


# What the OpenAI client records for arguments that are JSON but not an object.
NOT_AN_OBJECT = Message.assistant(
    None, [ToolCall(id="c0", name="math_factorial", arguments_raw="[5]", parse_error="not a JSON object")]
)


def calls(*items: tuple[str, Any]) -> Message:
    made = [ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(items)]
    return Message.assistant(None, made)


@needs_real
def test_real_data_loads_every_category() -> None:
    sizes = {c: len(load(REAL, c)) for c in CATEGORIES}
    assert sizes == {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200}
    env = BFCL(data_dir=REAL)
    tasks = env.tasks()
    assert len(tasks) == 1000 and len({t.id for t in tasks}) == 1000
    # seed 0 interleaves the categories, so a small n samples each
    assert [t.meta["subset"] for t in tasks[:4]] == list(CATEGORIES)
    assert {t.subset for t in env.tasks(n=40, seed=3)} == set(CATEGORIES)
    assert [t.id for t in env.tasks(n=20, seed=3)] == [t.id for t in env.tasks(n=20, seed=3)]
    assert [t.id for t in env.tasks(n=20, seed=3)] != [t.id for t in env.tasks(n=20, seed=4)]
    only = make_env("bfcl", category="parallel", data_dir=str(REAL)).tasks()
    assert len(only) == 200 and {t.meta["subset"] for t in only} == {"parallel"}


@needs_real
def test_every_ground_truth_answer_of_the_real_data_passes() -> None:
    env = BFCL(data_dir=REAL)
    failed = []
    for task in env.tasks():
        entry = next(e for e in load(REAL, task.meta["subset"]) if e.id == task.id)
        back = {orig: tool for tool, orig in task.input["tool_names"].items()}
        message = calls(*((back[n], a) for n, a in reference_answer(entry)))
        if not grade_message(task, message).ok:
            failed.append(task.id)
    assert failed == []


def test_dotted_names_map_to_valid_tool_names_collision_free_and_back() -> None:
    table = tool_names([{"name": "a.b"}, {"name": "a_b"}, {"name": "x y/z"}, {"name": "ok-name"}])
    assert table == {"a_b": "a_b", "ok-name": "ok-name", "a_b_2": "a.b", "x_y_z": "x y/z"}
    assert tool_names([FACTORIAL]) == {"math_factorial": "math.factorial"}


def test_bfcl_types_become_json_schema() -> None:
    schema = {
        "type": "dict",
        "properties": {
            "x": {"type": "float"},
            "t": {"type": "tuple", "items": {"type": "float"}},
            "anything": {"type": "any", "description": "any value"},
            "rows": {"type": "array", "items": {"type": "dict", "properties": {"k": {"type": "float"}}}},
        },
        "required": ["x"],
    }
    out = json_schema(schema)
    assert out["type"] == "object" and out["required"] == ["x"]
    props = out["properties"]
    assert props["x"] == {"type": "number"}
    assert props["t"] == {"type": "array", "items": {"type": "number"}}
    assert props["anything"] == {"description": "any value"}
    assert props["rows"]["items"] == {"type": "object", "properties": {"k": {"type": "number"}}}
    assert schema["type"] == "dict"  # the input is not modified


async def test_episode_is_one_reply_with_mapped_tools_and_hidden_grading(small: Path) -> None:
    env = BFCL(category="simple_python", data_dir=small)
    [task] = env.tasks()
    reset = await env.clone().reset(task)
    assert [t.name for t in reset.tools] == ["math_factorial"]
    assert reset.tools[0].parameters["type"] == "object"
    assert reset.messages[-1].text == "What is 5!?"
    tr, results = await drive(env, Scripted([call_tool("math_factorial", {"number": 5})]), task)
    assert len(results) == 1 and results[0].done and results[0].observations == []
    assert json.loads(tr.answer or "") == [{"math.factorial": {"number": 5}}]
    assert tr.passed
    fb, precision = tr.feedback
    assert fb.visibility == "hidden" and fb.name == "bfcl_ast" and fb.evidence is not None
    assert fb.evidence["kind"] == "ok" and fb.evidence["category"] == "simple_python"
    assert precision.name == "tool_calls" and precision.visibility == "hidden" and precision.score == 1.0
    # a stored trajectory is regraded by a fresh instance
    stored = Trajectory.model_validate_json(tr.model_dump_json())
    assert (await BFCL(category="simple_python", data_dir=small).grade(stored))[0].passed


async def test_partial_credit_feedback_never_decides_passed(small: Path) -> None:
    env = BFCL(category="parallel", data_dir=small)
    [task] = env.tasks()
    half = calls(("math_factorial", {"number": 4}), ("math_factorial", {"number": 30}))
    tr, _ = await drive(env, Scripted([half]), task)
    ast, precision = tr.feedback
    assert not tr.passed and not ast.passed
    assert precision.name == "tool_calls" and precision.passed is None
    assert precision.score is not None and 0.0 < precision.score < 1.0


async def test_step_after_the_answer_is_an_error(small: Path) -> None:
    env = BFCL(category="simple_python", data_dir=small).clone()
    [task] = env.tasks()
    await env.reset(task)
    assert (await env.step(calls(("math_factorial", {"number": 5})))).done
    with pytest.raises(EnvError):
        await env.step(Message.assistant("again"))


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (call_tool("math_factorial", {"number": 6}), "wrong_value"),
        (call_tool("math_factorial", {"number": "5"}), "wrong_type"),
        (call_tool("math_factorial", {}), "missing_argument"),
        (call_tool("math_factorial", {"number": 5, "mod": 7}), "unexpected_argument"),
        (call_tool("factorial", {"number": 5}), "wrong_function"),
        (call_tool("math_factorial", '{"number": 5'), "malformed"),
        (NOT_AN_OBJECT, "malformed"),
        ("5! is 120.", "wrong_count"),
    ],
)
async def test_wrong_answers_fail_with_their_kind(small: Path, reply: Message | str, kind: str) -> None:
    env = BFCL(category="simple_python", data_dir=small)
    [task] = env.tasks()
    tr, _ = await drive(env, Scripted([reply]), task)
    fb = next(f for f in tr.feedback if f.name == "bfcl_ast")
    assert not tr.passed and fb.evidence is not None and fb.evidence["kind"] == kind, fb.text
    assert fb.text and kind in fb.text


async def test_parallel_calls_in_any_order_and_a_missing_one(small: Path) -> None:
    env = BFCL(category="parallel", data_dir=small)
    [task] = env.tasks()
    good = calls(("math_factorial", {"number": 4}), ("math_factorial", {"number": 3}))
    assert (await drive(env, Scripted([good]), task))[0].passed
    one = calls(("math_factorial", {"number": 4}))
    tr, _ = await drive(env, Scripted([one]), task)
    assert not tr.passed and tr.feedback[0].evidence is not None
    assert tr.feedback[0].evidence["kind"] == "wrong_count"
    assert [tr.feedback[0].evidence[k] for k in ("calls", "expected", "repeated")] == [1, 2, 0]
    # The same call twice: the count is right, the second is a repeat (and the 3 is missing).
    twice = calls(("math_factorial", {"number": 4}), ("math_factorial", {"number": 4}))
    tr, _ = await drive(env, Scripted([twice]), task)
    assert not tr.passed and tr.feedback[0].evidence is not None
    assert [tr.feedback[0].evidence[k] for k in ("kind", "calls", "expected", "repeated")] == ["wrong_value", 2, 2, 1]


async def test_multiple_and_parallel_multiple_use_the_expected_function(small: Path) -> None:
    env = BFCL(category="multiple", data_dir=small)
    [task] = env.tasks()
    assert (await drive(env, Scripted([calls(("geometry_area_circle", {"radius": 2}))]), task))[0].passed
    assert (await drive(env, Scripted([calls(("geometry_area_circle", {"radius": 2, "units": "CM"}))]), task))[0].passed
    wrong = calls(("math_factorial", {"number": 2}))
    assert (await drive(env, Scripted([wrong]), task))[0].feedback[0].evidence == {
        "kind": "wrong_function",
        "reason": "call 0 vs expected 'geometry.area_circle': called 'math.factorial', expected 'geometry.area_circle'",
        "category": "multiple",
        "calls": 1,
        "expected": 1,
        "repeated": 0,
        "pairs": [
            {
                "call": 0,
                "expected": 0,
                "kind": "wrong_function",
                "reason": "called 'math.factorial', expected 'geometry.area_circle'",
            }
        ],
    }
    env = BFCL(category="parallel_multiple", data_dir=small)
    [task] = env.tasks()
    both = calls(("geometry_area_circle", {"radius": 1.0}), ("math_factorial", {"number": 6}))
    assert (await drive(env, Scripted([both]), task))[0].passed


def test_bad_data_is_one_clear_error(tmp_path: Path, small: Path) -> None:
    with pytest.raises(ConfigError, match="data directory not found"):
        BFCL(data_dir=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="category"):
        BFCL(category="java", data_dir=small)
    broken = write_data(tmp_path / "broken", {"simple_python": []})
    (broken / "BFCL_v4_simple_python.json").write_text('{"id": "simple_python_0", "question": \n')
    with pytest.raises(DataError, match="line 1: invalid JSON"):
        BFCL(category="simple_python", data_dir=broken)
    no_answer = write_data(tmp_path / "noanswer", {"simple_python": [("s0", "q", [FACTORIAL], [])]})
    (no_answer / "possible_answer" / "BFCL_v4_simple_python.json").write_text("")
    with pytest.raises(DataError, match="no answer for 's0'"):
        BFCL(category="simple_python", data_dir=no_answer)
    with pytest.raises(DataError, match="cannot read"):
        BFCL(category="multiple", data_dir=no_answer)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared BFCL data at {SHARED}")
def test_the_packaged_copy_is_the_shared_data_unchanged() -> None:
    for category in CATEGORIES:
        assert load(PACKAGED_DIR, category) == load(SHARED, category)


def test_without_a_directory_the_packaged_copy_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HONE_BFCL", raising=False)
    monkeypatch.chdir(tmp_path)  # no ../shared/data/bfcl from here
    found = resolve_dir()
    assert found in (PACKAGED_DIR.resolve(), SHARED.resolve())
    assert len(BFCL(category="parallel").tasks()) == 200
