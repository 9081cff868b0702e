"""Verification: run reference solutions in `hone.sandbox`, many tasks per program, and keep what succeeded.

Each scenario's references go into programs of `chunk` tasks (`_harness.batch_program`: each task
from a fresh copy of the initial state); all programs are submitted at once and the `Sandbox`
runs `workers` of them in parallel. Only `parse_batch` reads the output (untrusted: nonce-tagged
lines, size limits). A program that stopped early (a tool that killed the interpreter, the
program's time limit) leaves tasks without a line: the first of them is blamed and dropped, the
rest run again in a new program.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hone.sandbox import Sandbox

from ._harness import BatchOutcome, batch_program, new_nonce, parse_batch
from ._spec import Backend, BuiltTask, Call, canonical_json

CHUNK = 250
"""Tasks per sandbox program: large enough that process start-up is amortised, small enough to spread."""
CALL_TIMEOUT_S = 2.0
"""Per-call limit while verifying (a reference call that needs longer is a broken tool)."""
PROGRAM_TIMEOUT_S = 120.0
"""The sandbox's limit for one program (a backstop: calls are cut by `CALL_TIMEOUT_S` first)."""
ANSWER_FIELDS = ("answer", "result", "value")
"""A read whose result is an object states the first of these scalar fields (or its only field)."""

_KIND = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*: (value_error|exception|timeout|not_json): ")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Outcome:
    """One reference's execution: `results` and `final_state` when it succeeded, else why not (`reason`)."""

    results: list[list[Any]] | None
    final_state: str | None
    reason: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def reason_of(outcome: BatchOutcome) -> str:
    """A short, countable reason for a failed reference (the manifest's `dropped` keys)."""
    error = outcome.error or ""
    match = _KIND.match(error)
    if match:
        return match.group(1)
    if error.startswith("the backend source failed"):
        return "source_failed"
    if error.startswith("no result for this task"):
        return "missing"
    if "not JSON" in error:
        return "not_json"
    return "malformed"


def render_answer(result: Any) -> str | None:
    """The short answer a read's result gives, or None when it has no single stated value.

    Scalars render as text (`true`/`false`, integral floats without `.0`); an object renders its
    `answer`/`result`/`value` field or its only field when that is a scalar; a list of at most
    five scalars renders as `a, b, c`. Anything else cannot be stated in one short answer.
    """
    if isinstance(result, dict):
        keys = [k for k in ANSWER_FIELDS if k in result] or (list(result) if len(result) == 1 else [])
        return render_answer(result[keys[0]]) if keys and not isinstance(result[keys[0]], dict | list) else None
    if isinstance(result, list):
        if 0 < len(result) <= 5 and all(_scalar(v) for v in result):
            return ", ".join(_text(v) for v in result)
        return None
    return _text(result) if _scalar(result) else None


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and (not isinstance(value, str) or 0 < len(value) <= 200)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


async def execute(
    sandbox: Sandbox,
    jobs: Sequence[tuple[Backend, Sequence[Sequence[Sequence[Call]]]]],
    *,
    chunk: int = CHUNK,
    call_timeout_s: float = CALL_TIMEOUT_S,
    progress: Progress | None = None,
) -> list[list[Outcome]]:
    """Run every job's references (a backend and its tasks' steps); outcomes in the jobs' and tasks' order."""
    out: list[list[Outcome | None]] = [[None] * len(refs) for _, refs in jobs]

    async def run(job: int, indices: list[int]) -> None:
        backend, refs = jobs[job]
        pending = indices
        while pending:
            nonce = new_nonce()
            program = batch_program(backend, [refs[i] for i in pending], nonce, timeout_s=call_timeout_s)
            budget = min(PROGRAM_TIMEOUT_S, 10 + len(pending) * call_timeout_s)
            result = await sandbox.run(program, timeout_s=budget)
            parsed = parse_batch(result.stdout, nonce, len(pending))
            retry: list[int] = []
            for index, outcome in zip(pending, parsed, strict=True):
                if outcome.error is not None and reason_of(outcome) == "missing":
                    retry.append(index)
                    continue
                out[job][index] = _outcome(outcome)
            done = len(pending) - len(retry)
            if retry and result.status != "output_limit":
                # The first task without a line stopped the program (it hung or ended the interpreter).
                first = retry.pop(0)
                cause = "timeout" if result.status == "timeout" else "crashed"
                out[job][first] = Outcome(None, None, cause, f"the program stopped ({result.status}) in this task")
                done += 1
            elif retry and len(pending) == 1:
                out[job][retry.pop()] = Outcome(None, None, "output_limit", "the task's output is over the limit")
                done += 1
            elif retry:
                half = max(1, len(retry) // 2)  # too much output: smaller programs report their own progress
                await asyncio.gather(run(job, retry[:half]), run(job, retry[half:]))
                retry = []
            if progress is not None:
                progress(done)
            pending = retry

    tasks = []
    for job, (_, refs) in enumerate(jobs):
        size = max(1, math.ceil(len(refs) / max(1, math.ceil(len(refs) / chunk))))  # even chunks
        for start in range(0, len(refs), size):
            tasks.append(run(job, list(range(start, min(start + size, len(refs))))))
    await asyncio.gather(*tasks)
    return [[o if o is not None else Outcome(None, None, "missing", "never ran") for o in row] for row in out]


def _outcome(outcome: BatchOutcome) -> Outcome:
    if outcome.error is not None or outcome.results is None or outcome.final_state is None:
        return Outcome(None, None, reason_of(outcome), outcome.error)
    return Outcome(outcome.results, outcome.final_state, None, None)


async def verify_tasks(
    sandbox: Sandbox,
    planned: Sequence[tuple[BuiltTask, bool]],
    backends: dict[str, Backend],
    *,
    chunk: int = CHUNK,
    call_timeout_s: float = CALL_TIMEOUT_S,
    progress: Progress | None = None,
) -> tuple[list[BuiltTask], Counter[str]]:
    """Execute every planned task's reference; keep the ones that succeed, with results, answer and final state.

    `planned` pairs a task with whether its final reply must state the last call's result. A
    task is dropped (and counted by reason) when its reference fails, its prompt repeats an
    earlier task's, or it must state a result that has no short answer (`render_answer`).
    """
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    kept: list[tuple[BuiltTask, bool]] = []
    for task, wants in planned:
        if task.prompt in seen:
            dropped["duplicate_prompt"] += 1
            continue
        seen.add(task.prompt)
        kept.append((task, wants))
    by_scenario: dict[str, list[int]] = {}
    for i, (task, _) in enumerate(kept):
        by_scenario.setdefault(task.scenario, []).append(i)
    names = sorted(by_scenario)
    jobs = [(backends[n], [kept[i][0].reference for i in by_scenario[n]]) for n in names]
    outcomes = await execute(sandbox, jobs, chunk=chunk, call_timeout_s=call_timeout_s, progress=progress)
    result: dict[int, BuiltTask] = {}
    for name, row in zip(names, outcomes, strict=True):
        for i, outcome in zip(by_scenario[name], row, strict=True):
            task, wants_answer = kept[i]
            if not outcome.ok or outcome.results is None:
                dropped[outcome.reason or "failed"] += 1
                continue
            answer = None
            if wants_answer:
                answer = render_answer(outcome.results[-1][-1]) if outcome.results and outcome.results[-1] else None
                if answer is None:
                    dropped["no_short_answer"] += 1
                    continue
            result[i] = task.model_copy(
                update={"results": outcome.results, "answer": answer, "final_state": outcome.final_state}
            )
    return [result[i] for i in sorted(result)], dropped


def result_key(value: Any) -> str:
    """Canonical text of a result value (to compare values across atoms)."""
    return canonical_json(value)
