"""hone.learn.loop on tool environments: the held-out split of unseen tool sets, invalid calls, level groups,
BFCL as the outside check, `--reward`, the micro-tools names, and a resumed `toolgen` loop with a real
micro-tools model (trained at toy scale)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("trl")

from hone.core import ConfigError, Message, Task, ToolCall, ToolSpec, Trajectory, hidden_reward
from hone.envs import Environment, make_env
from hone.feedback import make_reward
from hone.learn.loop import (
    ExpertIteration,
    ExpertIterationConfig,
    LearnContext,
    LearnRecord,
    Loop,
    LoopConfig,
    loop_id_for,
    register_learner,
    run_loop,
    start_checkpoint,
    unregister_learner,
)
from hone.learn.loop._bfcl import bfcl_tasks, failure, run_check
from hone.learn.loop._tools import tool_stats
from hone.models import Scripted
from hone.rollout import EpisodeLimits, RunConfig, evaluate_run
from hone.store import SQLStore

TOY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}


@pytest.fixture(scope="session")
def micro_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real micro-tools checkpoint (BPE, chat template with tools, TRL SFT on toolgen demonstrations), toy size."""
    from transformers import GenerationConfig

    from hone.learn.micro_tools import train_micro_tools

    out = tmp_path_factory.mktemp("micro-tools") / "ckpt"
    # no copy curriculum: SFT on demonstrations alone is what this needs, in seconds
    train_micro_tools(
        steps=4, out=out, n_demos=16, batch_size=4, lr=3e-3, eval_n=0, progress=False, corpus_limit=40,
        model_overrides=TOY, copy_steps=0, string_copy_steps=0, choice_copy_steps=0, copy_mix=0,
    )  # fmt: skip
    generation = GenerationConfig.from_pretrained(out)
    generation.max_new_tokens = 40  # a toy model rambles; keep episodes short
    generation.save_pretrained(out)
    return out


# -- the held-out split and the loop id ------------------------------------------------------------


def test_heldout_split_defaults_to_unseen_tool_sets_on_built_envs(micro_tools: Path, tmp_path: Path) -> None:
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        model = f"hf:{micro_tools}"
        toolgen = Loop(LoopConfig(env="toolgen", model=model, out=tmp_path / "a"), store)
        assert toolgen.config.heldout_split == "heldout" and toolgen.report.config["heldout_split"] == "heldout"
        assert toolgen.groups == {name: list(subsets) for name, subsets in GROUPS.items()}
        explicit = Loop(LoopConfig(env="toolgen", model=model, heldout_split="test", out=tmp_path / "b"), store)
        assert explicit.config.heldout_split == "test" and explicit.loop_id != toolgen.loop_id
        arith = Loop(LoopConfig(env="arith", model=model, out=tmp_path / "c", groups={}), store)
        assert arith.config.heldout_split == "test"  # arith's `heldout` stays the benchmark's independent check
        assert Loop(LoopConfig(env="arith", model=model, out=tmp_path / "d"), store).groups == {}
    # a loop from before these options keeps its id (so it resumes): computed with the previous code
    assert loop_id_for(LoopConfig()) == "loop-arith-expert-iteration-6d9eca74"
    assert loop_id_for(LoopConfig(bfcl_n=20, groups={})) == loop_id_for(LoopConfig())  # report-only options
    assert loop_id_for(LoopConfig(reward="toolrl")) != loop_id_for(LoopConfig())


def test_constrained_tools_reaches_every_evaluation_of_the_loop(
    micro_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--constrained-tools`: each model the loop opens (held-out and BFCL evaluations) decodes under the offered
    tools' grammar (what that does: tests/models/test_hf_constrained.py), and it is part of the loop's identity."""
    pytest.importorskip("llguidance")
    import hone.models

    opened: list[bool] = []
    real = hone.models.HFLocal

    def recording(path: Any, **kwargs: Any) -> Any:
        model = real(path, **kwargs)
        opened.append(model.constraint is not None)
        return model

    monkeypatch.setattr("hone.models.HFLocal", recording)
    for constrained in (False, True):
        config = LoopConfig(
            env="toolgen", model=f"hf:{micro_tools}", iterations=0, heldout_n=4, bfcl_n=1,
            constrained_tools=constrained, out=tmp_path / f"c{constrained}",
        )  # fmt: skip
        with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
            run_loop(config, store)
    assert opened == [False, False, True, True]  # held-out and BFCL, free then constrained
    assert loop_id_for(LoopConfig(constrained_tools=True)) != loop_id_for(LoopConfig())


def test_micro_tools_names_resolve_to_the_packaged_checkpoints() -> None:
    from importlib.resources import files

    for spec, folder in (("micro-tools", "checkpoint"), ("micro-tools-base", "checkpoint-base")):
        path = Path(str(files("hone") / "learn" / "micro_tools" / folder))
        if (path / "config.json").is_file():
            assert start_checkpoint(spec) == path
        else:
            with pytest.raises(ConfigError, match=rf"loop: {spec} is not packaged in this install \(no .*{folder}\)"):
                start_checkpoint(spec)


# -- invalid calls and BFCL failures, counted on real environments with scripted replies ------------


def _evaluate(
    env: Environment, store: SQLStore, run_id: str, model: Scripted, tasks: Sequence[Task], split: str = "test"
) -> list[Trajectory]:
    config = RunConfig(run_id=run_id, split=split, n=len(tasks), concurrency=4)
    return asyncio.run(evaluate_run(env, model, config, store=store, tasks=tasks)).trajectories


Reply = Callable[[Sequence[Message], Sequence[ToolSpec]], Message]
GROUPS = {"levels 1-2": ("single", "choice"), "levels 3-6": ("parallel", "chain", "ask", "no_tool")}
MODES = (
    "right",
    "no_call",
    "malformed",
    "wrong_function",
    "repeated_call",
    "too_many_calls",
    "wrong_arguments",
    "wrong_values",
)
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")


def toolgen_replies(env: Any, tasks: Sequence[Task]) -> Reply:
    """First turn: the task's first reference call (when it has one; it runs), a call of an unknown tool and a
    call whose arguments do not parse; then an answer."""
    by_prompt = {env.built_task(t.id).prompt: env.built_task(t.id) for t in tasks}
    ids = itertools.count()

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message:
        if any(m.role == "tool" for m in messages):
            return Message.assistant("Answer: done")
        built = by_prompt[next(m.text for m in messages if m.role == "user")]
        first = [c for step in built.reference[:1] for c in step[:1]]
        good = [ToolCall(id=f"c{next(ids)}", name=c.name, arguments=dict(c.arguments)) for c in first]
        offered = tools[0].name if tools else "no_tool_offered"
        return Message.assistant(
            None,
            [
                *good,
                ToolCall(id=f"c{next(ids)}", name="no_such_tool", arguments={}),
                ToolCall(id=f"c{next(ids)}", name=offered, arguments_raw='{"x": ', parse_error="bad JSON"),
            ],
        )

    return reply


def _off(value: Any) -> Any:
    """A value no BFCL answer accepts in place of `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 9999
    if isinstance(value, list):
        return [*value, 9999]
    return f"{value} zzz"


def bfcl_replies(tasks: Sequence[Task]) -> tuple[Reply, dict[str, str]]:
    """The ground truth (`bfcl_policy`), or one mistake of each kind in turn: no call, malformed arguments, a
    function that does not exist, every call twice, one more call with another value, an argument left out, a
    wrong value. Returns the replies and each question's mode."""
    from hone.testing import bfcl_policy

    mode = {t.input["question"][0]["content"]: MODES[i % len(MODES)] for i, t in enumerate(tasks)}
    policy = bfcl_policy(slip_rate=0.0)
    ids = itertools.count()

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message:
        users = [m.text for m in messages if m.role == "user"]
        request = {
            "messages": [{"role": "user", "content": users[0]}],
            "tools": [{"function": {"name": t.name}} for t in tools],
        }
        right = [
            ToolCall(id=f"c{next(ids)}", name=c["name"], arguments=c["arguments"])
            for c in policy(request)["tool_calls"]
        ]
        how = mode[users[0]]
        if how == "no_call":
            return Message.assistant("I would rather not.")
        if how == "malformed":
            right = [ToolCall(id=c.id, name=c.name, arguments_raw="{oops", parse_error="bad JSON") for c in right]
        elif how == "wrong_function":
            right = [c.model_copy(update={"name": "not_a_function"}) for c in right]
        elif how == "repeated_call":
            right = right + right
        elif how == "too_many_calls":
            first = next(iter(right[0].arguments))
            extra = {**right[0].arguments, first: _off(right[0].arguments[first])}
            right = [*right, right[0].model_copy(update={"id": f"c{next(ids)}", "arguments": extra})]
        elif how in ("wrong_arguments", "wrong_values"):  # the first argument of the first call left out, or off
            args = dict(right[0].arguments)
            first = next(iter(args))
            if how == "wrong_arguments":
                del args[first]
            else:
                args[first] = _off(args[first])
            right[0] = right[0].model_copy(update={"arguments": args})
        return Message.assistant(None, right)

    return reply, mode


def test_invalid_calls_are_the_calls_the_env_refused(tmp_path: Path) -> None:
    env: Any = make_env("toolgen")
    tasks = [t for t in env.tasks("heldout", n=60) if t.meta["level"] == 1][:4]
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        trajectories = _evaluate(env, store, "tools", Scripted(toolgen_replies(env, tasks)), tasks, "heldout")
    refused = [o for t in trajectories for s in t.steps for o in s.observations if o.error is not None]
    assert len(refused) == 2 * len(tasks)  # the environment refused exactly the two bad calls per task
    stats = tool_stats(trajectories, {"levels 1-2": ["single", "choice"]})
    assert (stats["invalid_calls"], stats["calls"]) == (2 * len(tasks), 3 * len(tasks))
    assert stats["invalid_call_share"] == round(2 / 3, 4)
    assert stats["accuracy_by_group"] == {"levels 1-2": sum(t.passed for t in trajectories) / len(tasks)}


def test_bfcl_check_counts_failures_by_the_graders_verdicts(tmp_path: Path) -> None:
    env = make_env("bfcl")
    tasks = bfcl_tasks(env, 5)
    assert Counter(t.subset for t in tasks) == dict.fromkeys(CATEGORIES, 5)
    # A sample spread over each category, the same every time; not its first five (BFCL's files go by topic).
    position = {c: [t.id for t in env.tasks("test") if t.subset == c] for c in CATEGORIES}
    spread = {c: max(position[c].index(t.id) for t in tasks if t.subset == c) for c in CATEGORIES}
    assert all(last >= 50 for last in spread.values()), spread
    assert [t.id for t in bfcl_tasks(env, 5)] == [t.id for t in tasks]
    assert len(bfcl_tasks(env, 1000)) == sum(map(len, position.values()))  # more than a category holds: all of it
    reply, mode = bfcl_replies(tasks)
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:

        def evaluate(env: Environment, run_id: str, tasks: list[Task]) -> list[Trajectory]:
            return _evaluate(env, store, run_id, Scripted(reply), tasks)

        check = run_check(env, evaluate, "loop-x", 3, 5)
        assert store.count("loop-x-bfcl5s-3") == 20
    expected = Counter(mode.values())
    assert check.n == 20 and check.accuracy == expected["right"] / 20
    assert check.failures == {k: expected[k] for k in MODES[1:]}
    right = Counter(t.subset for t in tasks if mode[t.input["question"][0]["content"]] == "right")
    assert check.by_category == {c: right[c] / 5 for c in CATEGORIES}


def test_a_wrong_count_says_whether_calls_were_missing_repeated_or_extra(tmp_path: Path) -> None:
    """Too few, a call repeated exactly (the model did not stop), one more distinct call; the counts are the
    grader's, and a verdict stored before they were recorded stays `wrong_count`."""
    from hone.testing import bfcl_policy

    env = make_env("bfcl")
    parallel = next(t for t in bfcl_tasks(env, 5) if t.subset == "parallel")
    simple = next(t for t in bfcl_tasks(env, 5) if t.subset == "simple_python")
    policy = bfcl_policy(slip_rate=0.0)

    def right(task: Task) -> list[ToolCall]:
        tools = [{"function": {"name": t.name}} for t in env.tool_specs(task)]
        request = {"messages": [{"role": "user", "content": task.input["question"][0]["content"]}], "tools": tools}
        made = policy(request)["tool_calls"]
        return [ToolCall(id=f"c{i}", name=c["name"], arguments=c["arguments"]) for i, c in enumerate(made)]

    assert len(right(parallel)) >= 2
    one_of_two = right(parallel)[:1]
    [call] = right(simple)
    first = next(iter(call.arguments))
    other = call.model_copy(update={"id": "c9", "arguments": {**call.arguments, first: _off(call.arguments[first])}})
    cases = {
        (parallel.id, "too_few_calls"): one_of_two,
        (simple.id, "repeated_call"): [call, call.model_copy(update={"id": "c8"})],
        (simple.id, "too_many_calls"): [call, other],
    }
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        for i, ((task_id, kind), made) in enumerate(cases.items()):
            task = parallel if task_id == parallel.id else simple
            replies = Scripted([Message.assistant(None, made)])
            [traj] = _evaluate(env, store, f"r{i}", replies, [task], "test")
            [verdict] = [f for f in traj.feedback if f.name == "bfcl_ast"]
            assert verdict.evidence is not None and verdict.evidence["kind"] == "wrong_count"
            expected = len(right(task))
            repeated = 1 if kind == "repeated_call" else 0
            counts = {"calls": len(made), "expected": expected, "repeated": repeated}
            assert {k: verdict.evidence[k] for k in counts} == counts
            assert failure(traj) == kind
            older = {k: v for k, v in verdict.evidence.items() if k not in counts}
            stored_before = traj.model_copy(update={"feedback": [verdict.model_copy(update={"evidence": older})]})
            assert failure(stored_before) == "wrong_count"
            for damaged in ({"calls": "two"}, {"repeated": None}, {"expected": 1.5}, {"calls": True}):
                evidence = {**verdict.evidence, **damaged}
                corrupt = traj.model_copy(update={"feedback": [verdict.model_copy(update={"evidence": evidence})]})
                assert failure(corrupt) == "wrong_count", damaged


def test_the_loops_report_counts_what_its_evaluations_did(
    micro_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's own evaluations (held-out and BFCL) with scripted replies: every figure is known."""
    env: Any = make_env("toolgen")
    heldout = env.tasks("heldout", n=12, seed=0)
    bfcl = bfcl_tasks(make_env("bfcl"), 3)
    tools_reply, (bfcl_reply, mode) = toolgen_replies(env, heldout), bfcl_replies(bfcl)
    prompts = {env.built_task(t.id).prompt for t in heldout}

    def reply(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message:
        first = next(m.text for m in messages if m.role == "user")
        return (tools_reply if first in prompts else bfcl_reply)(messages, tools)

    monkeypatch.setattr("hone.models.HFLocal", lambda path, name, **_: Scripted(reply, name=name))
    config = LoopConfig(
        env="toolgen", model=f"hf:{micro_tools}", iterations=0, heldout_n=12, bfcl_n=3, out=tmp_path / "rep"
    )
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        report = run_loop(config, store)
    [it] = report.iterations
    valid = sum(1 for t in heldout if env.built_task(t.id).reference)
    assert (it.invalid_calls, it.tool_calls) == (2 * 12, 2 * 12 + valid) and 0 < valid < 12
    assert it.invalid_call_share == round(24 / (24 + valid), 4)
    [check] = report.bfcl
    expected = Counter(mode.values())
    assert (check.iteration, check.n, check.accuracy) == (0, 12, round(expected["right"] / 12, 4))
    assert check.failures == {k: expected[k] for k in MODES[1:] if expected[k]}
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["iterations"][0]["invalid_calls"] == 24 and saved["bfcl"][0]["failures"] == check.failures
    assert saved["bfcl_change"] is None  # one check: nothing to compare
    assert f"| {24 / (24 + valid):.1%} (24/{24 + valid}) |" in (tmp_path / "rep" / "report.md").read_text()
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        # another --bfcl N on the same loop: the check is redone at that size, then kept
        smaller = run_loop(config.model_copy(update={"bfcl_n": 2}), store)
        assert [(c.iteration, c.n) for c in smaller.bfcl] == [(0, 8)]
        assert smaller.loop_id == report.loop_id and store.count(smaller.bfcl[0].run) == 8
        runs = len(store.list_runs())
        assert run_loop(config.model_copy(update={"bfcl_n": 2}), store).bfcl == smaller.bfcl
        assert len(store.list_runs()) == runs


# -- the reward a learner optimises -----------------------------------------------------------------


def test_unknown_reward_is_refused_before_any_work(micro_tools: Path, tmp_path: Path) -> None:
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        with pytest.raises(ConfigError, match=r"loop: --reward: unknown reward 'nope'; known: .*toolrl") as info:
            Loop(LoopConfig(env="toolgen", model=f"hf:{micro_tools}", reward="nope", out=tmp_path / "r"), store)
        assert "\n" not in str(info.value)
        assert store.list_runs() == [] and not (tmp_path / "r").exists()


# -- a toolgen loop, interrupted and resumed --------------------------------------------------------


class KilledOnce:
    """Expert iteration killed once (as by Ctrl-C) before it starts; the next attempt learns, and keeps what its
    collection returned to it."""

    Config = ExpertIterationConfig
    calls = 0
    collected: ClassVar[list[Trajectory]] = []

    def __init__(self, config: ExpertIterationConfig) -> None:
        self.inner = ExpertIteration(config)

    def learn(self, ctx: LearnContext) -> LearnRecord:
        type(self).calls += 1
        if type(self).calls == 1:
            raise KeyboardInterrupt
        collect = ctx.collect

        def kept(tasks: list[Task], k: int, temperature: float) -> list[Trajectory]:
            got = collect(tasks, k, temperature)
            type(self).collected += got
            return got

        record: LearnRecord = self.inner.learn(dataclasses.replace(ctx, collect=kept))
        return record


@pytest.fixture
def killed_once() -> Iterator[type[KilledOnce]]:
    KilledOnce.calls, KilledOnce.collected = 0, []
    register_learner("killed-once", KilledOnce)
    yield KilledOnce
    unregister_learner("killed-once")


@pytest.fixture
def grpo_rewards(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The reward values the loop's GRPO learner hands to TRL, in order (a spy around `train_grpo`)."""
    from hone.learn.train import train_grpo as real

    seen: list[float] = []

    def spy(*args: Any, reward: Any = None, **kwargs: Any) -> Any:
        def recorded(traj: Trajectory) -> float:
            value = float(reward(traj))
            seen.append(value)
            return value

        return real(*args, reward=recorded if reward is not None else None, **kwargs)

    monkeypatch.setattr("hone.learn.loop._learners.train_grpo", spy)
    return seen


def test_grpo_learns_from_the_chosen_reward(micro_tools: Path, tmp_path: Path, grpo_rewards: list[float]) -> None:
    # bfcl: one reply per episode; it has one split, so the loop collects on it too (this test is about rewards)
    config = LoopConfig(
        env="bfcl", model=f"hf:{micro_tools}", method="grpo", reward="toolrl", iterations=1, heldout_n=4,
        train_split="test", train_n=2, k=2, steps=1, batch_size=4, concurrency=8, out=tmp_path / "rep",
    )  # fmt: skip
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        report = run_loop(config, store)
        rollouts = list(store.query(run_id=str(report.iterations[1].collect_run)))
    toolrl = make_reward("toolrl")
    assert len(rollouts) == 4 and sorted(grpo_rewards) == sorted(toolrl(t) for t in rollouts)
    assert any(toolrl(t) != (t.reward or 0.0) for t in rollouts)  # not the environment's reward
    assert all(t.reward == hidden_reward(t.feedback) for t in rollouts)  # the store keeps the environment's


def _invalid_by_jsonschema(traj: Trajectory) -> int:
    """Calls that do not parse, name no offered tool, or fail their schema by the `jsonschema` package."""
    import jsonschema  # type: ignore[import-untyped]

    offered = {t.name: t.parameters for t in traj.tools}
    bad = 0
    for call in (c for s in traj.steps for c in s.call.message.tool_calls or []):
        schema = offered.get(call.name)
        ok = call.parse_error is None and schema is not None
        bad += not (ok and jsonschema.validators.validator_for(schema)(schema).is_valid(call.arguments))
    return bad


def _count_kind(traj: Trajectory, env: Any) -> str:
    """A wrong count's kind from the stored calls and the task's answer, counted here."""
    from hone.envs._bfcl import expected_calls

    made = [(c.name, json.dumps(c.arguments_raw if c.parse_error else c.arguments, sort_keys=True))
            for s in traj.steps for c in s.call.message.tool_calls or ()]  # fmt: skip
    expected = len(expected_calls(env.find_task(traj.task_id).target))
    repeated = len(made) - len(set(made))
    if not made:
        return "no_call"
    if len(made) < expected:
        return "too_few_calls"
    return "repeated_call" if repeated and len(made) - repeated <= expected else "too_many_calls"


def test_toolgen_loop_resumes_and_reports_tool_use_and_bfcl(
    micro_tools: Path, tmp_path: Path, killed_once: type[KilledOnce]
) -> None:
    config = LoopConfig(
        env="toolgen", model=f"hf:{micro_tools}", method="killed-once", reward="toolrl", iterations=1,
        heldout_n=12, train_n=2, k=2, steps=1, batch_size=4, bfcl_n=2, concurrency=16,
        limits=EpisodeLimits(max_turns=3), out=tmp_path / "rep",
    )  # fmt: skip
    with SQLStore(f"sqlite:///{tmp_path}/s.db") as store:
        with pytest.raises(KeyboardInterrupt):
            run_loop(config, store)
        state = json.loads((tmp_path / "rep" / "state.json").read_text())
        assert [it["iteration"] for it in state["iterations"]] == [0]
        assert [check["iteration"] for check in state["bfcl"]] == [0]  # the start's outside check was kept
        first_bfcl = state["bfcl"][0]["run"]
        assert store.count(first_bfcl) == 8  # 2 tasks x 4 categories
        log: list[str] = []
        report = run_loop(config, store, log=log.append)
        assert [it.iteration for it in report.iterations] == [0, 1]
        assert any("iteration 0: done before" in line for line in log)
        assert [c.iteration for c in report.bfcl] == [0, 1] and store.count(first_bfcl) == 8  # not run twice
        assert not any("iteration 0: BFCL" in line for line in log) and any("iteration 1: BFCL" in line for line in log)

        # Held-out scenarios only in the evaluations, train scenarios only in the collection.
        env: Any = make_env("toolgen")
        heldout = {t.id: t for t in env.tasks("heldout")}
        train = {t.id: t for t in env.tasks("train")}
        evaluated = [t for it in report.iterations for t in store.query(run_id=it.eval_run)]
        collected = list(store.query(run_id=str(report.iterations[1].collect_run)))
        assert len(evaluated) == 24 and len(collected) == 4
        assert all(heldout[t.task_id].meta["heldout"] for t in evaluated)
        assert all(t.task_id in train for t in collected)
        seen_scenarios = {train[t.task_id].meta["scenario"] for t in collected}
        assert seen_scenarios and not seen_scenarios & {heldout[t.task_id].meta["scenario"] for t in evaluated}

        # The learner saw toolrl's values; the store keeps the environment's reward.
        toolrl = make_reward("toolrl")
        stored = {t.id: t for t in collected}
        assert sorted(t.id for t in killed_once.collected) == sorted(stored)
        assert all(t.reward == toolrl(t) for t in killed_once.collected)
        assert any(t.reward != stored[t.id].reward for t in killed_once.collected)
        kept, passed = report.iterations[1].data.get("kept", 0), sum(t.passed for t in collected)
        assert kept <= passed and (kept > 0) == (passed > 0)  # expert iteration still keeps what passed

        # The report's tool-use fields, against an independent count of the stored evaluations.
        for it in report.iterations:
            trajs = list(store.query(run_id=it.eval_run))
            calls = sum(len(s.call.message.tool_calls or []) for t in trajs for s in t.steps)
            invalid = sum(_invalid_by_jsonschema(t) for t in trajs)
            assert (it.tool_calls, it.invalid_calls) == (calls, invalid)
            assert it.invalid_call_share == (round(invalid / calls, 4) if calls else None)
            for group, subsets in GROUPS.items():
                members = [t for t in trajs if t.subset in subsets]
                assert it.accuracy_by_group[group] == round(sum(t.passed for t in members) / len(members), 4)

        # BFCL per category and failures, against the grader's verdicts in the stored runs.
        bfcl_env = make_env("bfcl")
        for check in report.bfcl:
            trajs = list(store.query(run_id=check.run))
            assert check.n == len(trajs) == 8
            assert check.accuracy == round(sum(t.passed for t in trajs) / 8, 4)
            assert set(check.by_category) == {"simple_python", "multiple", "parallel", "parallel_multiple"}
            kinds = Counter(
                _count_kind(t, bfcl_env) if kind == "wrong_count" else kind
                for t in trajs
                for f in t.feedback
                if f.name == "bfcl_ast" and not t.passed
                for kind in [str((f.evidence or {})["kind"])]
            )
            merged = Counter(
                {
                    "wrong_arguments": kinds.pop("missing_argument", 0) + kinds.pop("unexpected_argument", 0),
                    "wrong_values": kinds.pop("wrong_type", 0) + kinds.pop("wrong_value", 0),
                }
            )
            merged.update(kinds)
            errors = sum(1 for t in trajs if not any(f.name == "bfcl_ast" for f in t.feedback))
            assert check.failures == {k: v for k, v in (merged + Counter(error=errors)).items() if v}
            assert sum(check.failures.values()) == 8 - sum(t.passed for t in trajs)

    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["config"]["heldout_split"] == "heldout" and saved["config"]["reward"] == "toolrl"
    assert [c["iteration"] for c in saved["bfcl"]] == [0, 1] and "all" in saved["bfcl_change"]
    assert {"invalid_call_share", "invalid_calls", "tool_calls", "accuracy_by_group"} <= set(saved["iterations"][0])
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| single | choice | parallel | chain | ask | no_tool | levels 1-2 | levels 3-6 |" in md
    assert "| invalid calls |" in md
    assert "BFCL change over the loop:" in md and "| simple_python |" in md
