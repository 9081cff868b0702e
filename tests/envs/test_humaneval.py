"""`humaneval`: all 164 reference solutions pass the sandboxed grader, broken variants fail, public feedback."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import ClassVar

import pytest

from hone.core import ConfigError, Trajectory
from hone.envs import HumanEval, load_problems, make_env, public_examples
from hone.envs._humaneval import CONTRADICTED
from hone.models import Scripted
from hone.rollout import run_episode

DATA = Path(__file__).parents[1] / "data/humaneval/HumanEval.jsonl.gz"


@pytest.fixture(scope="module")
def env() -> HumanEval:
    return HumanEval(path=DATA)


def _graded(env: HumanEval, task_id: str, code: str) -> Trajectory:
    return Trajectory(task_id=task_id, env="humaneval", model="ref", answer=code)


async def _grade_all(env: HumanEval, items: list[tuple[str, str]]) -> list[bool]:
    async def one(task_id: str, code: str) -> bool:
        [fb] = await env.clone().grade(_graded(env, task_id, code))
        return bool(fb.passed)

    return list(await asyncio.gather(*(one(t, c) for t, c in items)))


class _OffByOne(ast.NodeTransformer):
    """Mutant number `target` of the off-by-one edits: a comparison flipped (< <=, > >=), an integer
    constant plus one, `len(x)` minus one, or an index or slice start plus one."""

    FLIP: ClassVar[dict[type[ast.cmpop], type[ast.cmpop]]] = {
        ast.Lt: ast.LtE,
        ast.LtE: ast.Lt,
        ast.Gt: ast.GtE,
        ast.GtE: ast.Gt,
    }

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = 0

    def _hit(self) -> bool:
        self.seen += 1
        return self.seen - 1 == self.target

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        ops = []
        for op in node.ops:
            flip = self.FLIP.get(type(op))
            ops.append(flip() if flip is not None and self._hit() else op)
        node.ops = ops
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int and self._hit():
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "len" and self._hit():
            return ast.copy_location(ast.BinOp(node, ast.Sub(), ast.Constant(1)), node)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        index = node.slice
        if isinstance(index, ast.Slice):
            if index.lower is not None and self._hit():
                index.lower = ast.BinOp(index.lower, ast.Add(), ast.Constant(1))
        elif not isinstance(index, ast.Constant | ast.Tuple) and self._hit():
            node.slice = ast.BinOp(index, ast.Add(), ast.Constant(1))
        return node


def off_by_one_mutants(solution: str) -> list[str]:
    """Every single off-by-one edit of `solution` (an indented function body), as bodies."""
    source = "def _f():\n" + solution
    original = ast.unparse(ast.parse(source))
    counter = _OffByOne(-1)
    counter.visit(ast.parse(source))
    mutants = []
    for i in range(counter.seen):
        mutated = ast.unparse(_OffByOne(i).visit(ast.parse(source)))
        if mutated != original:
            mutants.append(mutated.split("\n", 1)[1] + "\n")
    return mutants


async def test_every_canonical_solution_passes_and_its_broken_variants_fail(env: HumanEval) -> None:
    problems = load_problems(DATA)
    assert len(problems) == 164
    canonical = [(p["task_id"], p["canonical_solution"]) for p in problems]
    assert all(await _grade_all(env, canonical)), "a reference solution failed the grader"
    # `return None` in place of the body: the whole function, so the stub is replaced
    broken = [(p["task_id"], f"def {p['entry_point']}(*args, **kwargs):\n    return None\n") for p in problems]
    assert not any(await _grade_all(env, broken)), "a `return None` variant passed"
    # Off by one, where possible: up to 4 single edits per problem; the tests must catch at least one.
    # Measured: 137 problems have such an edit (27 are one-liners without one) and HumanEval's tests catch
    # one of the first 4 in 129; in the rest its tests never probe the boundary (HumanEval/0, /20, /35...).
    quick = HumanEval(path=DATA, timeout=3)  # an edit can turn a loop infinite
    mutants = [(p["task_id"], m) for p in problems for m in off_by_one_mutants(p["canonical_solution"])[:4]]
    results = await _grade_all(quick, mutants)
    caught = {task_id for (task_id, _), passed in zip(mutants, results, strict=True) if not passed}
    with_edit = {task_id for task_id, _ in mutants}
    assert len(with_edit) >= 135 and len(caught) >= 125, (len(with_edit), len(caught))


def test_public_examples_agree_with_the_reference_except_the_contradicted(env: HumanEval) -> None:
    tasks = {t.id: t for t in env.tasks()}
    with_examples = sum(1 for t in tasks.values() if t.input["examples"])
    assert with_examples >= 135 and sum(len(t.input["examples"]) for t in tasks.values()) >= 380
    for task_id, calls in CONTRADICTED.items():
        kept = {c for c, _ in tasks[task_id].input["examples"]}
        assert not kept & calls


async def test_reference_solutions_pass_their_public_examples(env: HumanEval) -> None:
    from hone.envs import assemble
    from hone.envs._humaneval import public_check

    problems = {p["task_id"]: p for p in load_problems(DATA)}

    async def one(task_id: str) -> bool:
        task = env.find_task(task_id)
        if not task.input["examples"]:
            return True
        p = problems[task_id]
        program = assemble(p["prompt"], p["canonical_solution"], p["entry_point"])
        return bool((await public_check(task).verify(program)).passed)

    results = await asyncio.gather(*(one(t) for t in problems))
    failing = [t for t, ok in zip(problems, results, strict=True) if not ok]
    assert not failing
    # and the contradicted examples really do contradict the reference
    p = problems["HumanEval/47"]
    examples = [e for e in public_examples("", p["prompt"], p["entry_point"]) if e.call in CONTRADICTED["HumanEval/47"]]
    assert len(examples) == 1


async def test_public_feedback_and_a_second_attempt() -> None:
    env = HumanEval(path=DATA, attempts=2)
    task = env.find_task("HumanEval/2")  # truncate_number: one docstring example
    wrong = "```python\ndef truncate_number(number: float) -> float:\n    return number\n```"
    right = "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    traj = await run_episode(env.clone(), Scripted([wrong, right]), task)
    assert traj.status == "ok" and traj.passed and len(traj.steps) == 2
    first = traj.steps[0]
    [fb] = first.feedback
    assert fb.visibility == "public" and fb.passed is False and "truncate_number(3.5) returned 3.5" in (fb.text or "")
    assert first.observations[0].role == "user" and "Fix the function" in first.observations[0].text
    assert traj.steps[1].feedback[0].passed is True
    [hidden] = traj.feedback
    assert hidden.visibility == "hidden" and hidden.name == "humaneval_tests"


async def test_one_attempt_ends_the_episode_and_no_code_is_a_clear_failure() -> None:
    env = HumanEval(path=DATA)
    task = env.find_task("HumanEval/2")
    traj = await run_episode(env.clone(), Scripted(["I would use modulo."]), task)
    assert traj.answer is None and not traj.passed
    assert "no Python code" in (traj.steps[0].feedback[0].text or "")
    assert traj.feedback[0].text == "no code in the final answer"


async def test_hidden_grader_reports_the_failing_assertion() -> None:
    env = HumanEval(path=DATA)
    [fb] = await env.grade(_graded(env, "HumanEval/2", "def truncate_number(number):\n    return 0.5\n"))
    assert fb.passed is False and "AssertionError" in (fb.text or "")


def test_options_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data file not found"):
        HumanEval(path=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    from hone.core import DataError

    with pytest.raises(DataError, match=r"line 1 .* lacks 'prompt'"):
        HumanEval(path=bad)
    with pytest.raises(ConfigError, match="attempts"):
        make_env("humaneval", path=str(DATA), attempts="0")
    env = make_env("humaneval", path=str(DATA), tools="python")
    assert [t.name for t in env.clone().tools] == ["python"]  # type: ignore[attr-defined]
    assert len(env.tasks(n=5, seed=3)) == 5 and env.tasks(n=5, seed=3) == env.tasks(n=5, seed=3)


async def test_hidden_grading_replays_the_test_on_plain_outputs(env: HumanEval, tmp_path: Path) -> None:
    wrong = "def has_close_elements(numbers, threshold):\n    return True\n"
    [fb] = await env.grade(_graded(env, "HumanEval/0", wrong))
    assert fb.name == "humaneval_tests" and fb.visibility == "hidden" and fb.passed is False and fb.score == 0.0
    evidence = fb.evidence or {}
    assert evidence["tests"][0]["name"] == "humaneval_tests" and evidence["status"] == "ok" and evidence["calls"] > 5
    text = fb.text or ""
    assert "AssertionError" in text and "at: assert candidate(" in text and "returned True" in text
    # the recording comes from the canonical solution: a data file without one is refused up front
    import json

    from hone.core import DataError

    row = {"task_id": "x/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c):\n    pass\n"}
    (tmp_path / "he.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="lacks 'canonical_solution'"):
        HumanEval(path=tmp_path / "he.jsonl")
