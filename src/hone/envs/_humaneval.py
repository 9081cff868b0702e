"""`humaneval`: write the Python function a docstring describes; graded by running tests in `hone.sandbox`.

Public feedback is the docstring's own examples turned into tests (`doc_examples`): the
model sees their outcome after each answer. Hidden grading is HumanEval's full `test` with
`check(entry_point)`, by record/replay (`hone.feedback.RecordReplayVerifier`): the test's calls
are recorded once from the canonical solution, the model's function is called on those inputs
in the sandbox, and the test's assertions run here on its plain-data outputs. The model's code
runs in the sandbox only, never in this process, and the hidden tests never reach the sandbox.
"""

from __future__ import annotations

import ast
import functools
import gzip
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hone.core import (
    ConfigError,
    DataError,
    Feedback,
    GradeError,
    Message,
    Task,
    Trajectory,
    stable_int,
    validate_options,
)

from ._base import Reset, StepResult
from ._datafile import resolve_data_file
from ._docexamples import DocExample, assemble, doc_examples, extract_code
from ._options import Tools, ToolSpec, build_tools
from ._toolenv import ToolEnv

if TYPE_CHECKING:
    from hone.feedback import CallTestVerifier, CheckSpec, RecordReplayVerifier

ENV_VAR = "HONE_HUMANEVAL"
"""Environment variable naming HumanEval.jsonl(.gz) when no `path` option is given."""
DEFAULT_PATH = Path("../shared/data/humaneval/HumanEval.jsonl.gz")
"""Tried relative to the working directory when neither `path` nor `HONE_HUMANEVAL` is set."""

SYSTEM_PROMPT = (
    "Complete the Python function below so that it does what its docstring says. "
    "Reply with the whole function (and any imports it needs) in one ```python code block."
)
SYSTEM_PROMPT_TOOLS = SYSTEM_PROMPT + " You may run code with the `python` tool first."

CONTRADICTED: dict[str, frozenset[str]] = {
    "HumanEval/47": frozenset({"median([-10, 4, 6, 1000, 10, 20])"}),
    "HumanEval/116": frozenset({"sort_array([1, 5, 2, 3, 4])", "sort_array([-2, -3, -4, -5, -6])"}),
    "HumanEval/130": frozenset({"tri(1)", "tri(4)"}),
    "HumanEval/148": frozenset({'bf("Earth", "Mercury")'}),
}
"""Docstring examples that HumanEval's own tests contradict (its reference solution fails them):
they would teach the wrong function, so they are not public tests. A test checks that every
other extracted example passes the reference solution and that these fail it."""


def resolve_path(path: str | Path | None = None) -> Path:
    """The HumanEval file: `path`, else `$HONE_HUMANEVAL`, else `../shared/data/humaneval/HumanEval.jsonl.gz`."""
    return resolve_data_file("humaneval", path, ENV_VAR, DEFAULT_PATH, "PATH/HumanEval.jsonl.gz")


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    opener: Any = gzip.open if path.endswith(".gz") else open
    rows: list[dict[str, Any]] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = f"humaneval: line {number} of {path} is not JSON ({exc.msg}); fix or remove it"
                raise DataError(problem) from None
            keys = ("task_id", "prompt", "entry_point", "test", "canonical_solution")
            missing = [k for k in keys if not isinstance(row.get(k), str)]
            if missing:
                raise DataError(f"humaneval: line {number} of {path} lacks {missing[0]!r} (a string); fix or remove it")
            rows.append(row)
    return tuple(rows)


def load_problems(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The HumanEval rows (`task_id`, `prompt`, `entry_point`, `canonical_solution`, `test`) in file order.

    An unreadable, corrupt or empty file is a `DataError` naming it.
    """
    resolved = resolve_path(path)
    try:
        rows = list(_load(str(resolved), resolved.stat().st_mtime_ns))
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut-off .gz is an EOFError
        raise DataError(f"humaneval: cannot read {resolved}: {getattr(exc, 'strerror', None) or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"humaneval: {resolved} is not UTF-8 text ({exc.reason})") from exc
    if not rows:
        raise DataError(f"humaneval: {resolved} holds no problems (it is empty)")
    return rows


def public_examples(task_id: str, prompt: str, entry_point: str) -> list[DocExample]:
    """The docstring examples that are public tests (those HumanEval's own tests contradict left out)."""
    dropped = CONTRADICTED.get(task_id, frozenset())
    return [e for e in doc_examples(prompt, entry_point) if e.call not in dropped]


def check_spec(task: Task) -> CheckSpec:
    """What the hidden grading of `task` records and replays: its prompt (the test's helpers), HumanEval's
    `test`, the entry point and the canonical solution (the prompt continued)."""
    from hone.feedback import CheckSpec  # deferred: hone.feedback pulls in the model clients

    prompt = str(task.input["prompt"])
    reference = prompt + str(task.target["canonical_solution"])
    return CheckSpec(prompt, str(task.target["test"]), str(task.input["entry_point"]), reference)


def hidden_check(task: Task, timeout_s: float = 10.0) -> RecordReplayVerifier:
    """The hidden grader of `task`: HumanEval's `test` code and `check(entry_point)`, by record/replay."""
    from hone.feedback import RecordReplayVerifier

    spec = check_spec(task)
    return RecordReplayVerifier(
        spec.test,
        spec.entry_point,
        spec.reference,
        context=spec.context,
        name="humaneval_tests",
        visibility="hidden",
        timeout_s=timeout_s,
    )


def public_check(task: Task) -> CallTestVerifier:
    """The public tests of `task`: one call case per docstring example (`==` as the docstring means it,
    floats within 1e-6), graded soundly like the hidden tests."""
    from hone.feedback import CallCase, CallTestVerifier

    cases = []
    for i, (call, expected) in enumerate(task.input.get("examples", [])):
        parsed = _literal_call(str(call), str(expected))
        if parsed is not None:
            args, kwargs, want = parsed
            name = f"example {i + 1}: {call}"
            cases.append(CallCase(name, args, kwargs, want, rel_tol=1e-6, abs_tol=1e-6, exact=False))
    entry = str(task.input["entry_point"])
    return CallTestVerifier(cases, entry, name="docstring_examples", visibility="public", timeout_s=5.0)


def _literal_call(call: str, expected: str) -> tuple[tuple[Any, ...], dict[str, Any], Any] | None:
    """A docstring example's literal arguments and expected value, or None when one is not plain data."""
    from hone.feedback import PlainError
    from hone.feedback._plain import encode

    try:
        node = ast.parse(call, mode="eval").body
        assert isinstance(node, ast.Call)
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = {str(k.arg): ast.literal_eval(k.value) for k in node.keywords}
        want = ast.literal_eval(expected)
        encode([args, kwargs, want])
    except (AssertionError, SyntaxError, ValueError, TypeError, PlainError, MemoryError, RecursionError):
        return None
    return args, kwargs, want


class HumanEvalOptions(BaseModel):
    """`humaneval`'s options (`-e KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    path: str | Path | None = Field(
        default=None, description="HumanEval.jsonl(.gz); default $HONE_HUMANEVAL or shared data."
    )
    tools: Tools = Field(default=("none",), description="none, or python (a sandboxed interpreter).")
    attempts: int = Field(default=1, ge=1, description="Answers allowed per episode.")
    public: bool = Field(default=True, description="Run the docstring examples on each answer (public feedback).")
    timeout: int = Field(default=10, ge=1, description="Seconds per hidden grading run.")


class HumanEval(ToolEnv):
    """HumanEval (164 Python functions from docstrings), graded by running tests in the sandbox.

    Options: `path` (HumanEval.jsonl or .jsonl.gz; default `$HONE_HUMANEVAL` or
    `../shared/data/humaneval/HumanEval.jsonl.gz`), `tools` ("none" default, or "python":
    a sandboxed interpreter the model may call), `attempts` (answers allowed per episode,
    default 1: after a failing answer the public test results come back as a user message
    and the model may answer again), `public` (run the docstring examples on each answer
    and attach the result as public feedback; default true), `timeout` (seconds per hidden
    grading run, default 10). One split, "test"; ids are HumanEval's (`HumanEval/0`).
    """

    name = "humaneval"
    version = "1"
    Options: ClassVar[type[HumanEvalOptions]] = HumanEvalOptions

    def __init__(
        self,
        path: str | Path | None = None,
        tools: ToolSpec = "none",
        attempts: int = 1,
        public: bool = True,
        timeout: int = 10,
    ) -> None:
        given = {"path": path, "tools": tools, "attempts": attempts, "public": public, "timeout": timeout}
        opts = validate_options(HumanEvalOptions, given, "humaneval")
        super().__init__(build_tools(opts.tools))
        self.path = resolve_path(opts.path)
        self.attempts = opts.attempts
        self.public = opts.public
        self.timeout_s = opts.timeout
        self._rows = load_problems(self.path)
        self._answers = 0
        # Built once and shared by every clone: grading a trajectory looks its task up by id.
        self._task_index = {t.id: t for t in self.tasks()}
        self._recording = [False]  # shared by clones: whether the record step of every task has started

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        if split != "test":
            raise ConfigError(f"humaneval: unknown split {split!r}; splits: test")
        rows = list(self._rows)
        if seed:
            random.Random(stable_int("humaneval", seed)).shuffle(rows)
        if n is not None:
            rows = rows[: max(n, 0)]
        return [self._make_task(r) for r in rows]

    def _make_task(self, row: dict[str, Any]) -> Task:
        task_id, prompt, entry = str(row["task_id"]), str(row["prompt"]), str(row["entry_point"])
        examples = public_examples(task_id, prompt, entry)
        return Task(
            id=task_id,
            input={"prompt": prompt, "entry_point": entry, "examples": [[e.call, e.expected] for e in examples]},
            target={"test": str(row["test"]), "canonical_solution": str(row["canonical_solution"])},
            meta={"public_tests": len(examples)},
        )

    def prompt(self, task: Task) -> list[Message]:
        system = SYSTEM_PROMPT_TOOLS if self.tools else SYSTEM_PROMPT
        return [Message.system(system), Message.user(f"```python\n{task.input['prompt']}```")]

    def extract_answer(self, text: str) -> str | None:
        return extract_code(text)

    def clone(self) -> HumanEval:
        other = super().clone()
        other._answers = 0
        return other

    async def reset(self, task: Task) -> Reset:
        self._answers = 0
        return await super().reset(task)

    async def step(self, message: Message) -> StepResult:
        result = await super().step(message)
        if not result.done or self._task is None:
            return result
        self._answers += 1
        task = self._task
        code = result.answer
        if not self.public or not task.input.get("examples"):
            return result
        if code is None:
            feedback = Feedback(
                source="verifier",
                name="docstring_examples",
                score=0.0,
                passed=False,
                text="no Python code found in the reply: answer with the function in a ```python block",
            )
        else:
            program = assemble(str(task.input["prompt"]), code, str(task.input["entry_point"]))
            feedback = await public_check(task).verify(program)
        if feedback.passed or self._answers >= self.attempts:
            return result.model_copy(update={"feedback": [feedback]})
        # Another attempt: show the public results and keep the episode going.
        self._done = False
        note = f"{feedback.text}\nFix the function and reply with the whole corrected function."
        return StepResult(observations=[Message.user(note)], feedback=[feedback])

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        task = self.find_task(trajectory.task_id)
        code = trajectory.answer
        if code is None:
            return [
                Feedback(
                    source="verifier",
                    name="humaneval_tests",
                    score=0.0,
                    passed=False,
                    text="no code in the final answer",
                    visibility="hidden",
                )
            ]
        program = assemble(str(task.input["prompt"]), code, str(task.input["entry_point"]))
        try:
            if not self._recording[0]:
                # Record every task's calls in one subprocess (about 0.3 s for all 164), this one first.
                from hone.feedback import prefetch

                self._recording[0] = True
                prefetch([check_spec(task), *(check_spec(t) for t in (self._task_index or {}).values())])
            return [await hidden_check(task, self.timeout_s).verify(program)]
        except Exception as exc:
            raise GradeError(f"humaneval: grading {task.id!r} failed: {exc}") from exc
