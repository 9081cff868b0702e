"""The tokenizer's training corpus: toolgen conversations as the micro-tools template renders them.

Only text the model may see in training goes in: the `train` split's tasks (tool documents,
requests, reference calls, results, answers) and the tool documents of every scenario that is
not held out. Held-out scenarios contribute nothing, so their tool names reach the tokenizer
only as byte/BPE pieces (their `heldout` split then measures tools never seen, down to the
vocabulary).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from ._template import CHAT_TEMPLATE

if TYPE_CHECKING:
    from hone.core import Task
    from hone.envs import Reset
    from hone.envs.build import BuiltEnv
    from hone.envs.build._spec import BuiltTask, ToolDoc


def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
    """A conversation as the micro-tools template renders it (no tokenizer needed)."""
    from transformers.utils.chat_template_utils import render_jinja_template

    out: Any = render_jinja_template(
        conversations=[messages],
        tools=cast("list[dict[Any, Any] | Any]", tools),
        chat_template=CHAT_TEMPLATE,
    )  # (texts, generation indices); annotated as a str
    return str(out[0][0])


def tool_dict(doc: ToolDoc) -> dict[str, Any]:
    """A tool document as an OpenAI tool (what `BuiltEnv.reset` offers, as `ToolSpec.to_openai`)."""
    return {
        "type": "function",
        "function": {"name": doc.name, "description": doc.description, "parameters": doc.parameters},
    }


def task_conversation(task: BuiltTask, opening: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A solved episode of `task` after its `opening` messages (as `reset` gives them): the
    reference calls, their results as JSON text and the answer, with a plain question on level 5
    and a plain refusal on level 6; enough for a tokenizer, not a demonstration set."""
    messages = list(opening)
    for fact, value in task.hidden_facts.items():
        label = fact.replace("_", " ")
        messages.append({"role": "assistant", "content": f"What is the {label}?"})
        messages.append({"role": "user", "content": f"The {label} is {value}."})
    results = task.results or []
    for i, step in enumerate(task.reference):
        calls = [
            {
                "id": f"call_{i}_{j}",
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)},
            }
            for j, c in enumerate(step)
        ]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        outputs = results[i] if i < len(results) else [None] * len(step)
        for call, output in zip(calls, outputs, strict=False):
            text = json.dumps(output, ensure_ascii=False)
            messages.append({"role": "tool", "content": text, "tool_call_id": call["id"]})
    if task.level == 6:
        final = "None of the tools I have can do that."
    elif task.answer is not None:
        final = f"Answer: {task.answer}"
    else:
        final = "Done."
    messages.append({"role": "assistant", "content": final})
    return messages


def toolgen_corpus(env: BuiltEnv | None = None, *, split: str = "train", limit: int | None = None) -> Iterator[str]:
    """Rendered training text from a built tool environment (default: `toolgen`).

    Every task of `split` as a solved conversation (system prompt and offered tool documents as
    the environment's `reset` gives them), then each scenario's whole tool set as one document
    block; held-out scenarios (and any task of one) are skipped. Synchronous (runs `reset` in its
    own event loop). `limit` caps the tasks (the first of the split's level-interleaved order,
    for fast tests).
    """
    if env is None:
        from hone.envs import make_env

        env = cast("BuiltEnv", make_env("toolgen"))
    seen = [s for s in env.scenarios.values() if not s.heldout]
    names = {s.name for s in seen}
    tasks = [t for t in env.tasks(split) if t.meta.get("scenario") in names]
    for task, opening in zip(tasks[:limit], asyncio.run(_openings(env, tasks[:limit])), strict=True):
        messages = task_conversation(env.built_task(task.id), [m.to_openai() for m in opening.messages])
        yield render(messages, [t.to_openai() for t in opening.tools])
    for scenario in seen:
        yield render([], [tool_dict(d) for d in scenario.tools])


async def _openings(env: BuiltEnv, tasks: list[Task]) -> list[Reset]:
    out = [await env.reset(task) for task in tasks]
    await env.aclose()
    return out
