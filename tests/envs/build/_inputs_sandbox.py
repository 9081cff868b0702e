"""Run a loaded spec's backend in the real sandbox (through the harness the built environments use)."""

from __future__ import annotations

from typing import Any

from hone.envs.build._harness import BatchOutcome, batch_program, new_nonce, parse_batch
from hone.envs.build._spec import Call, SourceSpec
from hone.sandbox import run_python


def run_calls(spec: SourceSpec, *tasks: list[tuple[str, dict[str, Any]]]) -> list[BatchOutcome]:
    """Each task is a list of calls (one per step), run from a fresh copy of the initial state."""
    assert spec.backend is not None
    refs = [[[Call(name=name, arguments=args)] for name, args in task] for task in tasks]
    nonce = new_nonce()
    result = run_python(batch_program(spec.backend, refs, nonce), timeout_s=120)
    outcomes = parse_batch(result.stdout, nonce, len(refs))
    assert all(not (o.error or "").startswith("no result for this task") for o in outcomes), result.stderr[-2000:]
    return outcomes
