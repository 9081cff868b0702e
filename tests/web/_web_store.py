"""A store shaped like a real one (an eval with subsets and errors, a comparison with MCTS,
evolution and deliberation candidates, a loop with its evaluations), and a real uvicorn server
of `hone view` over it. A plain module (not conftest) so tests import it by a unique name."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hone.core import ErrorInfo, Feedback, Ledger, Message, ModelCall, Step, ToolCall, ToolSpec, Trajectory, Usage
from hone.store import RunInfo, SQLStore, open_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CALC = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    parameters={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)


def traj(
    run_id: str,
    task_id: str,
    sample: int = 0,
    *,
    passed: bool | None = True,
    status: str = "ok",
    subset: str | None = None,
    minute: float = 0,
    words: str = "",
    **extra: Any,
) -> Trajectory:
    """One tool-calling episode: a calculator call, its result, an answer; graded unless `passed` is None."""
    answer = "4" if passed else "5"
    call = ModelCall(
        model="scripted",
        request_digest=f"{run_id}-{task_id}-{sample}",
        message=Message.assistant(None, [ToolCall(id="c0", name="calculator", arguments={"expression": "2+2"})]),
        usage=Usage(prompt_tokens=30, completion_tokens=6),
        latency_s=0.25,
        prompt_token_ids=[5, 6, 7, 8],
        completion_token_ids=[40, 41, 42],
        completion_logprobs=[-0.1, -0.2, -2.5],
    )
    final = ModelCall(
        model="scripted",
        request_digest=f"{run_id}-{task_id}-{sample}-2",
        message=Message.assistant(f"The answer is {answer}. {words}".strip()),
        usage=Usage(prompt_tokens=40, completion_tokens=5),
    )
    feedback = [Feedback(source="critic", name="style", text="concise enough", visibility="public")]
    if passed is not None:
        feedback.append(
            Feedback(
                source="verifier",
                name="exact_match",
                score=1.0 if passed else 0.0,
                passed=passed,
                text=f"expected 4, got {answer}",
                visibility="hidden",
            )
        )
    fields: dict[str, Any] = dict(
        run_id=run_id,
        task_id=task_id,
        sample=sample,
        env="arith",
        split="test",
        subset=subset,
        model="scripted",
        prompt=[Message.system("Use the calculator."), Message.user(f"Compute 2 + 2 ({task_id})")],
        tools=[CALC],
        steps=[Step(call=call, observations=[Message.tool("4", "c0", name="calculator")]), Step(call=final)],
        answer=answer,
        feedback=feedback,
        reward=None if passed is None else (1.0 if passed else 0.0),
        status=status,
        stop_reason="error" if status == "error" else "done",
        usage=Ledger(calls=2, prompt_tokens=70, completion_tokens=11, tool_calls=1, env_steps=2, seconds=0.5),
        created_at=T0 + timedelta(minutes=minute),
    )
    fields.update(extra)
    return Trajectory(**fields)


def run(store: SQLStore, run_id: str, kind: str = "eval", parent: str | None = None, **extra: Any) -> None:
    store.save_run(
        RunInfo(
            id=run_id,
            kind=kind,  # type: ignore[arg-type]
            parent_id=parent,
            env=extra.pop("env", "arith"),
            model=extra.pop("model", "scripted"),
            split="test",
            status=extra.pop("status", "done"),
            created_at=extra.pop("created_at", T0),
            **extra,
        )
    )


def _eval(store: SQLStore) -> None:
    """`ev`: 12 tasks in 3 subsets, 2 samples each; 2 errors (one with a passing verdict: still a failure)."""
    run(store, "ev", summary={"ledger": {"seconds": 12.5}})
    items = []
    for i in range(12):
        for s in range(2):
            passed = (i % 3 == 0) or (i % 3 == 1 and s == 0)
            items.append(
                traj(
                    "ev",
                    f"arith-test-L{i // 4 + 1}-{i:04d}",
                    s,
                    passed=passed,
                    subset=f"L{i // 4 + 1}",
                    minute=i + s / 10,
                )
            )
    items[5] = items[5].model_copy(
        update={"status": "error", "error": ErrorInfo(type="ModelError", message="HTTP 500")}
    )
    items[0] = items[0].model_copy(update={"status": "error", "error": ErrorInfo(type="ToolError", message="bad args")})
    # A text only one trajectory holds, for the search tests.
    items[7] = traj(
        "ev", items[7].task_id, items[7].sample, passed=False, subset=items[7].subset, minute=3.1, words="zanzibar"
    )
    store.put_many(items)


def _comparison(store: SQLStore) -> None:
    """`cmp`: best-of-n and MCTS on 6 tasks; MCTS's candidates form a tree for every task."""
    run(store, "cmp-best_of_n", kind="improve", parent="cmp", summary={"accuracy": 0.5})
    run(store, "cmp-mcts", kind="improve", parent="cmp", summary={"accuracy": 0.5})
    run(store, "cmp-mcts-candidates", kind="improve-candidates", parent="cmp-mcts")
    bon = [True, True, False, False, True, False]
    mcts = [True, False, True, True, True, False]
    store.put_many(traj("cmp-best_of_n", f"task-{i}", passed=p, minute=i) for i, p in enumerate(bon))
    best, cands = [], []
    for i, p in enumerate(mcts):
        root = traj(
            "cmp-mcts-candidates",
            f"task-{i}",
            0,
            passed=None,
            strategy="mcts",
            op="root",
            meta={"depth": 0, "visits": 4, "value": 0.5},
            id=f"root-{i}",
            minute=i,
        )
        cands.append(root)
        for j in range(3):
            child = traj(
                "cmp-mcts-candidates",
                f"task-{i}",
                1 + j,
                passed=None,
                strategy="mcts",
                op="expand",
                parent_ids=[root.id],
                meta={"depth": 1, "visits": 1, "value": j / 2, "public_score": j / 2},
                id=f"exp-{i}-{j}",
                minute=i + 0.1 * (j + 1),
            )
            cands.append(child)
        cands.append(
            traj(
                "cmp-mcts-candidates",
                f"task-{i}",
                4,
                passed=None,
                strategy="mcts",
                op="rollout",
                parent_ids=[f"exp-{i}-2"],
                meta={"public_score": 1.0},
                id=f"roll-{i}",
                minute=i + 0.5,
            )
        )
        best.append(
            traj(
                "cmp-mcts",
                f"task-{i}",
                passed=p,
                strategy="mcts",
                op="rollout",
                parent_ids=[f"roll-{i}"],
                meta={"selected_from": f"roll-{i}", "candidates": 5},
                minute=i + 0.6,
            )
        )
    store.put_many(cands)
    store.put_many(best)


def _evolve_and_deliberate(store: SQLStore) -> None:
    run(store, "evo", kind="improve", parent="cmp2")
    run(store, "evo-candidates", kind="improve-candidates", parent="evo")
    items = []
    for isl in range(2):
        for k in range(2):
            items.append(
                traj(
                    "evo-candidates",
                    "task-0",
                    isl * 10 + k,
                    passed=None,
                    strategy="evolve",
                    op="sample",
                    meta={"generation": 0, "island": isl},
                    id=f"g0-{isl}-{k}",
                    minute=k,
                )
            )
        items.append(
            traj(
                "evo-candidates",
                "task-0",
                isl * 10 + 5,
                passed=None,
                strategy="evolve",
                op="recombination",
                parent_ids=[f"g0-{isl}-0", f"g0-{isl}-1"],
                meta={"generation": 1, "island": isl},
                id=f"g1-{isl}",
                minute=3,
            )
        )
    store.put_many(items)
    store.put(traj("evo", "task-0", passed=True, strategy="evolve", meta={"selected_from": "g1-1"}, minute=4))
    run(store, "nsed", kind="improve", parent="cmp2")
    run(store, "nsed-candidates", kind="improve-candidates", parent="nsed")
    props = []
    for r in range(2):
        for a in range(3):
            fb = [
                Feedback(
                    source="peer",
                    name="nsed",
                    score=0.25 * a,
                    text="anonymous review",
                    visibility="public",
                    evidence={"support": a - 1.0, "round": r},
                )
            ]
            props.append(
                traj(
                    "nsed-candidates",
                    "task-0",
                    r * 3 + a,
                    passed=None,
                    strategy="deliberate",
                    op="propose",
                    meta={"agent": f"agent{a}", "round": r},
                    feedback=fb,
                    parent_ids=["d-0-2"] if r else [],
                    id=f"d-{r}-{a}",
                    minute=r + a / 10,
                )
            )
    store.put_many(props)
    store.put(traj("nsed", "task-0", passed=True, strategy="deliberate", meta={"selected_from": "d-1-2"}, minute=5))


def _loop(store: SQLStore) -> None:
    iterations = []
    for i, acc in enumerate([0.25, 0.5]):
        run(store, f"lp-eval-{i}", kind="loop-eval", parent="lp", created_at=T0 + timedelta(hours=1, minutes=i))
        store.put_many(traj(f"lp-eval-{i}", f"h-{t}", passed=t < 4 * acc, subset="L1", minute=60 + i) for t in range(4))
        iterations.append(
            {
                "iteration": i,
                "checkpoint": f"/ck/iter-{i}",
                "heldout_accuracy": acc,
                "accuracy_by_level": {"L1": acc, "L2": acc / 2},
                "tool_calls_per_task": 1.0,
                "tool_calls_per_solved_task": 1.0,
                "tokens": 1000,
                "seconds": 3.0,
                "eval_run": f"lp-eval-{i}",
                "collect_run": None,
                "data": {"kept": 7 * i},
                "train": {"steps": 5 * i},
                "monitors": {"entropy": 0.9 - 0.2 * i, "tasks": 64},
                "tool_calls": 4,
                "invalid_calls": 0,
            }
        )
    run(
        store,
        "lp",
        kind="loop",
        summary={
            "iterations": iterations,
            "elapsed_s": 42.0,
            "bfcl": [
                {
                    "iteration": 0,
                    "run": "lp-eval-0",
                    "n": 4,
                    "accuracy": 0.25,
                    "by_category": {"simple_python": 0.5},
                    "failures": {"wrong_count": 3},
                }
            ],
        },
        config={"method": "expert-iteration"},
        created_at=T0 + timedelta(hours=1),
    )


def build_store(location: Path | str) -> str:
    """Write the fixture store at `location` (a path or a URL); returns it as a string."""
    with open_store(str(location)) as store:
        _eval(store)
        _comparison(store)
        _evolve_and_deliberate(store)
        _loop(store)
        run(store, "other-env", env="gsm8k", model="other", created_at=T0 + timedelta(days=3))
        store.put(traj("other-env", "g-1", passed=True, minute=3 * 24 * 60))
    return str(location)


class Served:
    def __init__(self, url: str, server: Any) -> None:
        self.url = url
        self.server = server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(location: str) -> Iterator[Served]:
    """A real uvicorn server of `hone view` on 127.0.0.1, stopped afterwards."""
    import uvicorn

    from hone.web import create_app

    app = create_app(location)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("hone view's test server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.store.close()
