"""Hand-made trajectories for hone.learn.data tests (a plain module, imported by name)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hone.core import Feedback, Message, ModelCall, Step, ToolCall, ToolSpec, Trajectory

T0 = datetime(2025, 1, 1, tzinfo=UTC)
CALC = ToolSpec(
    name="calc",
    description="evaluate",
    parameters={"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
)


def tool_turn(expr: str = "2+2", call_id: str = "c0", raw: str | None = None, content: str | None = None) -> Message:
    """An assistant turn calling `calc` once."""
    return Message.assistant(content, [ToolCall(id=call_id, name="calc", arguments={"x": expr}, arguments_raw=raw)])


def make(
    task_id: str = "t0",
    sample: int = 0,
    *,
    run_id: str = "run-a",
    turns: list[tuple[Message, list[Message]]] | None = None,
    answer: str | None = "4",
    passed: bool | None = True,
    reward: float | None = None,
    status: str = "ok",
    question: str = "what is 2+2?",
    **extra: Any,
) -> Trajectory:
    """A trajectory: opening prompt, then (assistant message, observations) per step.

    Default turns: a calc tool call answered "4", then "The answer is 4.". `passed=None`
    leaves out hidden grading; `reward=None` uses 1/0 from `passed`.
    """
    if turns is None:
        turns = [(tool_turn(), [Message.tool("4", "c0", name="calc")]), (Message.assistant("The answer is 4."), [])]
    steps = [
        Step(call=ModelCall(model="m", request_digest=f"d{i}", message=msg), observations=obs)
        for i, (msg, obs) in enumerate(turns)
    ]
    feedback = [] if passed is None else [Feedback(source="verifier", name="exact", passed=passed, visibility="hidden")]
    if reward is None and passed is not None:
        reward = 1.0 if passed else 0.0
    fields: dict[str, Any] = dict(
        run_id=run_id,
        task_id=task_id,
        sample=sample,
        env="arith",
        split="test",
        model="m",
        prompt=[Message.system("be brief"), Message.user(f"{task_id}: {question}")],
        tools=[CALC],
        steps=steps,
        answer=answer,
        feedback=feedback,
        reward=reward,
        status=status,
        created_at=T0 + timedelta(minutes=sample),
    )
    return Trajectory(**{**fields, **extra})


def render(tok: Any, messages: list[Message], tools: list[ToolSpec], *, generation: bool = True) -> str:
    conversation = [m.to_openai(object_arguments=True) for m in messages]
    specs = [t.to_openai() for t in tools] or None
    return str(tok.apply_chat_template(conversation, tools=specs, add_generation_prompt=generation, tokenize=False))


def ids(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def with_token_ids(tok: Any, traj: Trajectory) -> Trajectory:
    """A copy whose steps hold prompt/completion ids as a model served through `tok` would produce them.

    Each prompt is the rendered conversation so far; each completion is the assistant turn as
    the template renders it, through its end-of-turn token.
    """
    out = traj.model_copy(deep=True)
    history = list(out.prompt)
    for step in out.steps:
        before = render(tok, history, out.tools)
        after = render(tok, [*history, step.call.message], out.tools, generation=False)
        assert after.startswith(before)
        completion = after[len(before) :].removesuffix("\n")
        step.call.prompt_token_ids = ids(tok, before)
        step.call.completion_token_ids = ids(tok, completion)
        history.append(step.call.message)
        history.extend(step.observations)
    return out
