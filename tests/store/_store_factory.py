"""A trajectory factory for store tests (a plain module, so spawned processes can import it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hone.core import ErrorInfo, Feedback, Ledger, Message, ModelCall, Step, ToolCall, Trajectory, Usage

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def make_traj(
    task_id: str = "t0",
    sample: int = 0,
    *,
    run_id: str = "run-a",
    passed: bool = True,
    reward: float | None = None,
    status: str = "ok",
    env: str = "arith",
    split: str | None = "test",
    subset: str | None = None,
    minute: int = 0,
    **extra: Any,
) -> Trajectory:
    """A small but complete trajectory: one tool-calling step, hidden and public feedback, usage.

    `extra` sets or overrides any other Trajectory field.
    """
    call = ModelCall(
        model="scripted",
        request_digest=f"d-{task_id}-{sample}",
        message=Message.assistant("calling the calculator", [ToolCall(id="c0", name="calc", arguments={"x": "2+2"})]),
        usage=Usage(prompt_tokens=40, completion_tokens=8),
        prompt_token_ids=[1, 2, 3],
        completion_token_ids=[4, 5],
        completion_logprobs=[-0.25, -1.5],
    )
    step = Step(call=call, observations=[Message.tool("4", "c0", name="calc")])
    error = ErrorInfo(type="ModelError", message="HTTP 500 after retries") if status == "error" else None
    fields: dict[str, Any] = dict(
        run_id=run_id,
        task_id=task_id,
        sample=sample,
        env=env,
        split=split,
        subset=subset,
        model="scripted",
        prompt=[Message.system("be brief"), Message.user(f"task {task_id}: what is 2+2?\nanswer é ✓")],
        steps=[step],
        answer="4" if passed else "5",
        feedback=[
            Feedback(source="verifier", name="exact", score=1.0 if passed else 0.0, passed=passed, visibility="hidden"),
            Feedback(source="critic", name="style", text="fine", visibility="public", step_index=0),
        ],
        reward=(1.0 if passed else 0.0) if reward is None else reward,
        status=status,
        stop_reason="error" if status == "error" else "done",
        error=error,
        usage=Ledger(calls=1, prompt_tokens=40, completion_tokens=8, tool_calls=1, env_steps=1, seconds=0.5),
        created_at=T0 + timedelta(minutes=minute),
    )
    return Trajectory(**{**fields, **extra})


def utf8_round_trip(folder: Path) -> list[object]:
    """Export a trajectory with non-ASCII text as JSONL and OpenAI JSONL into `folder` and import the
    JSONL back; returns the counts and whether the text came back (run in-process and in a subprocess
    under an ASCII locale by the export tests)."""
    from hone.store import export_jsonl, export_openai, import_jsonl, open_store

    folder.mkdir(parents=True, exist_ok=True)
    text = "d\u00e9j\u00e0 vu \u2713"  # escapes: this module is also run under an ASCII locale
    with open_store(folder / "src.db") as st:
        st.put(make_traj("u", run_id="u", answer=text))
        counts: list[object] = [export_jsonl(st, "u", folder / "u.jsonl")]
        counts.append(export_openai(st, "u", folder / "u.openai.jsonl"))
    with open_store(folder / "dst.db") as st:
        counts.append(import_jsonl(st, folder / "u.jsonl"))
        counts.append(next(iter(st.query())).answer == text)
    return counts
