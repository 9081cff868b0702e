"""Bad input through `HFLocal` on the micro-tools template (hermes): prompts longer than the context,
tool sets naming a tool twice, and replies that name a tool not offered, break its schema or are
not JSON. Each ends as a clear error or a typed trajectory error with the raw text kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("trl")

from hone.core import ContextOverflow, Message, ModelError, Sampling, Task, ToolSpec
from hone.envs import Reset, Tool, ToolEnv, make_env
from hone.envs.build import BuiltEnv
from hone.learn.micro_tools import build_tokenizer, new_micro_tools_model, toolgen_corpus
from hone.models import HFLocal
from hone.rollout import RunConfig, Runner, run_episode
from hone.testing.local import ForcedReplies

TINY = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}
GREEDY = Sampling(temperature=0, max_tokens=64)


@pytest.fixture(scope="module")
def toolgen() -> BuiltEnv:
    env = make_env("toolgen")
    assert isinstance(env, BuiltEnv)
    return env


@pytest.fixture(scope="module")
def tok(toolgen: BuiltEnv) -> Any:
    return build_tokenizer(toolgen_corpus(toolgen, limit=60), 512)


def hf_local(tok: Any, context: int = 2048) -> HFLocal:
    model = new_micro_tools_model(tok, max_position_embeddings=context, **TINY)
    return HFLocal(model, tok, name="micro-tools-test", device="cpu", max_new_tokens=64)


# --- a tool document longer than the context ----------------------------------------------


def lookup(query: str) -> str:
    """Look a word up.

    Args:
        query: The word.
    """
    return "a very long result " * 400 if query == "long" else "short"


class Docs(ToolEnv):
    """One tool; task `huge` documents it at great length (the document alone passes the context)."""

    name = "docs"
    tool_errors = "observe"

    def __init__(self) -> None:
        super().__init__([Tool.from_function(lookup)])

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        return [Task(id="huge"), Task(id="small"), Task(id="long-result")][:n]

    def prompt(self, task: Task) -> list[Message]:
        return [Message.system("Use the tools."), Message.user(f"Look up {task.id}.")]

    async def reset(self, task: Task) -> Reset:
        opening = await super().reset(task)
        if task.id == "huge":
            spec = self.tools[0].spec
            opening.tools = [spec.model_copy(update={"description": "Look a word up in the dictionary. " * 600})]
        return opening


async def test_a_tool_document_longer_than_the_context_is_a_typed_episode_error(tok: Any) -> None:
    hf = hf_local(tok, context=512)
    env = Docs()
    (huge,) = env.tasks(n=1)
    with pytest.raises(ContextOverflow, match=r"the prompt is \d+ tokens; micro-tools-test has a context of 512"):
        opening = await env.reset(huge)
        await hf.generate(opening.messages, opening.tools, GREEDY)
    assert isinstance(ContextOverflow("m", 600, 512), ModelError)  # every ModelError handler still catches it

    # Through the Runner: the run finishes, the overflowing episode is an error that keeps its prompt.
    result = await Runner(env, hf, RunConfig(sampling=GREEDY, concurrency=3)).run()
    by_task = {t.task_id: t for t in result.trajectories}
    traj = by_task["huge"]
    assert traj.status == "error" and traj.steps == []
    assert traj.error is not None and traj.error.type == "ContextOverflow"
    tokens = int(traj.error.message.split("the prompt is ")[1].split()[0])
    assert tokens > 512 and "context of 512 tokens" in traj.error.message
    assert traj.tools[0].description.count("dictionary") == 600  # the whole document, not a cut one
    assert [m.content for m in traj.prompt] == ["Use the tools.", "Look up huge."]
    assert by_task["small"].status != "error"  # the others ran
    await hf.aclose()


async def test_a_tool_result_that_overflows_keeps_the_earlier_steps(tok: Any) -> None:
    hf = hf_local(tok, context=512)
    reply = '<tool_call>{"name": "lookup", "arguments": {"query": "long"}}</tool_call>'
    forced = ForcedReplies(hf, [reply, "Answer: never generated"])
    env = Docs()
    task = env.tasks()[2]
    traj = await run_episode(env.clone(), forced, task, sampling=GREEDY)
    assert traj.status == "error" and traj.error is not None
    assert traj.error.type == "ContextOverflow" and traj.error.step_index == 0
    (step,) = traj.steps  # the call that asked for the long result, token ids and all
    assert tok.decode(step.call.completion_token_ids, skip_special_tokens=True) == reply
    assert step.observations[0].content is not None and step.observations[0].content.startswith("a very long")
    await hf.aclose()


# --- tool sets naming a tool twice ---------------------------------------------------------

ORDER = ToolSpec(name="order_get", description="Get an order.", parameters={"type": "object", "properties": {}})


async def test_hflocal_refuses_a_tool_set_naming_a_tool_twice(tok: Any) -> None:
    hf = hf_local(tok)
    other = ORDER.model_copy(update={"description": "Get an order, again."})
    with pytest.raises(ModelError, match=r"^micro-tools-test: the tools offered name 'order_get' twice; give every"):
        await hf.generate([Message.user("hi")], [ORDER, other], GREEDY)
    with pytest.raises(ModelError, match="'order_get' twice"):
        hf.render([Message.user("hi")], [ORDER, other])
    assert hf.engine.device.type == "cpu" and hf.stats.calls == 0  # refused before any generation
    await hf.aclose()


class Twice(Docs):
    name = "twice"

    async def reset(self, task: Task) -> Reset:
        opening = await super().reset(task)
        opening.tools = [*opening.tools, opening.tools[0]]
        return opening


class NoCalls:
    """A model that must not be called."""

    name = "no-calls"

    async def generate(self, messages: Any, tools: Any = None, sampling: Any = None) -> Any:
        raise AssertionError("called")


async def test_an_episode_whose_reset_offers_a_name_twice_fails_before_any_call() -> None:
    env = Twice()
    traj = await run_episode(env, NoCalls(), env.tasks()[1])  # type: ignore[arg-type]
    assert traj.status == "error" and traj.steps == []
    assert traj.error is not None and traj.error.type == "EnvError"
    assert traj.error.message == "twice.reset(small) offers two tools named 'lookup'; give every tool a distinct name"


# --- replies that name a tool not offered, break its schema or are not JSON -----------------


BAD_REPLIES = {  # what the model writes (NAME: an offered tool) -> what the step error must say
    "not-offered": (
        '<tool_call>{"name": "launch_rocket", "arguments": {"at": 1}}</tool_call>',
        "unknown tool 'launch_rocket'",
    ),
    "malformed-json": (
        '<tool_call>{"name": "NAME", "arguments": {"x": </tool_call>',
        "NAME: arguments are not a valid JSON",
    ),
    "no-json": ("<tool_call>garbage</tool_call>", "the tool call is not valid JSON"),
    "schema": ('<tool_call>{"name": "NAME", "arguments": {"no_such_argument": 1}}</tool_call>', "NAME: "),
}


@pytest.mark.parametrize("kind", list(BAD_REPLIES))
async def test_bad_replies_are_typed_step_errors_with_the_raw_text(toolgen: BuiltEnv, tok: Any, kind: str) -> None:
    hf = hf_local(tok)
    task = next(t for t in toolgen.tasks("test") if t.meta.get("level") == 1)
    name = toolgen.built_task(task.id).offered[0]
    reply, problem = (text.replace("NAME", name) for text in BAD_REPLIES[kind])
    traj = await run_episode(
        toolgen.clone(), ForcedReplies(hf, [reply, "Answer: I could not do it."]), task, sampling=GREEDY
    )
    assert hf.tool_format.name == "hermes"
    first = traj.steps[0]
    # The model's text is all there: its token ids decode to the reply, the call keeps its raw arguments.
    assert tok.decode(first.call.completion_token_ids, skip_special_tokens=True) == reply
    (call,) = first.call.message.tool_calls or []
    assert call.arguments_raw is None or call.arguments_raw in reply
    # Typed: a ToolError on the step naming the problem, seen by the model as an observation (observe).
    assert first.error is not None and first.error.type == "ToolError" and first.error.step_index == 0
    assert problem in first.error.message
    assert first.error.raw is not None
    assert first.observations[0].error is not None and (first.observations[0].content or "").startswith("error: ")
    # The episode went on (toolgen observes tool errors) and was graded.
    assert len(traj.steps) == 2 and traj.status == "ok" and traj.answer == "I could not do it."
    assert traj.reward is not None and not traj.passed
    await hf.aclose()


def test_runner_stores_the_overflow_and_goes_on(tok: Any) -> None:
    """The same through `asyncio.run` with a store: nothing crashes the run, the error is stored."""
    import tempfile
    from pathlib import Path

    from hone.store import open_store

    with tempfile.TemporaryDirectory() as root:
        store = open_store(f"sqlite:///{Path(root) / 'runs.db'}")
        hf = hf_local(tok, context=512)

        async def go() -> Any:
            out = await Runner(Docs(), hf, RunConfig(run_id="overflow", sampling=GREEDY), store=store).run()
            await hf.aclose()
            return out

        result = asyncio.run(go())
        stored = {t.task_id: t for t in store.query(run_id="overflow")}
        assert set(stored) == {"huge", "small", "long-result"} and len(result.trajectories) == 3
        assert stored["huge"].error is not None and stored["huge"].error.type == "ContextOverflow"
        store.close()
