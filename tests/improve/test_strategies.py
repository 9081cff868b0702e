"""best_of_n, refine and reflexion mechanisms, and the shared selectors (vote, judges)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hone.core import Budget, Message, ToolSpec, Trajectory
from hone.envs import make_env
from hone.feedback import PairwiseJudge, PointwiseJudge, parse_score, parse_winner
from hone.improve import MCTS, BestOfN, Prompts, Refine, Reflexion, asolve
from hone.improve._refine import temperature_schedule
from hone.improve._select import majority_vote, normalize_answer
from hone.models import MICRO, Scripted

ENV = make_env("arith", levels="1", tools="none")
TASK = ENV.tasks("test", n=1)[0]


def test_normalised_answers_and_majority_vote() -> None:
    assert normalize_answer("1,200.0") == normalize_answer("$1200") == "1200"
    assert normalize_answer(" Paris. ") == "paris" and normalize_answer("") is None
    ts = [Trajectory(task_id="t", env="e", model="m", answer=a) for a in ("3", "4", "4.0", "3", "5")]
    ts[1].status = "error"  # a failed attempt does not vote
    assert majority_vote(ts) is ts[0]  # 3 (x2) beats 4 (x1 counted) and 5
    assert majority_vote(ts, {ts[2].id: 1.0}) is ts[0]
    tie = ts[2:4]  # "4.0" vs "3": tie broken by summed public score
    assert majority_vote(tie, {ts[2].id: 1.0}) is ts[2]


async def test_best_of_n_spends_the_budget_on_whole_attempts_and_votes() -> None:
    answers = iter(["7", "9", "9", "8", "9", "7", "1", "2"])
    model = Scripted(lambda m, t: f"The answer is {next(answers)}.")
    result = await asolve(BestOfN(parallel=2), TASK, ENV, model, Budget(calls=5))
    assert result.ledger.calls == 5 == len(result.candidates)
    assert result.best.answer == "9" and result.best.parent_ids[0] in {c.id for c in result.candidates}
    assert result.best.usage.calls == 5  # the answer's record carries the whole spend


def test_temperature_rises_and_is_capped() -> None:
    assert temperature_schedule(0.7, 0.2, 1.2, 5) == pytest.approx([0.7, 0.9, 1.1, 1.2, 1.2])


async def test_refine_rejects_repeated_answers_raises_temperature_and_caps_rounds() -> None:
    seen: list[list[Message]] = []
    replies = iter(["5", "5", "6", "6", "7"])

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append(list(messages))
        return f"The answer is {next(replies)}."

    strategy = Refine(rounds=4, instruct=False, temperature_step=0.25)
    result = await asolve(strategy, TASK, ENV, Scripted(policy), Budget(calls=10))
    cands = result.candidates
    assert len(cands) == 4  # the round cap, with budget left
    assert [c.meta.get("rejected") for c in cands] == [None, "already tried", None, "already tried"]
    temps = [c.steps[0].call.sampling.temperature for c in cands]
    assert temps == pytest.approx([1.0, 1.25, 1.5, 1.5])  # capped at max_temperature
    assert seen[1][-1].text == "Not 5." and seen[3][-1].text == "Not 5, 6."
    assert [c.parent_ids for c in cands[1:]] == [[cands[0].id], [cands[1].id], [cands[2].id]]
    assert result.best.answer in ("5", "6")  # never a rejected repeat's record
    assert result.best.parent_ids[0] in {cands[0].id, cands[2].id}


async def test_refine_stops_on_the_success_signal() -> None:
    env = make_env("arith", levels="1")
    task = env.tasks("test", n=1)[0]
    from _improve_helpers import NoisyCalc

    result = await asolve(Refine(), task, env, NoisyCalc(wrong=0.0, slip=0.0), Budget(calls=16))
    assert len(result.candidates) == 1 and result.info["stopped"] == "success"
    assert result.best.passed


async def test_refine_shows_an_instructed_model_its_attempt_and_the_feedback() -> None:
    seen: list[list[Message]] = []

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append(list(messages))
        return "The answer is 5." if len(seen) == 1 else "The answer is 6."

    await asolve(Refine(rounds=2, instruct=True), TASK, ENV, Scripted(policy), Budget(calls=4))
    retry = seen[1]
    assert retry[-2].role == "assistant" and retry[-2].text == "The answer is 5."
    assert "5 was not accepted" in retry[-1].text and "already tried and rejected: 5" in retry[-1].text


async def test_reflexion_memory_is_bounded_and_reflections_are_counted() -> None:
    seen: list[list[Message]] = []
    count = iter(range(100))

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        seen.append(list(messages))
        if "what went wrong" in messages[-1].text:
            return f"Reflection {next(count)}: check the arithmetic."
        return "The answer is 5."

    strategy = Reflexion(attempts=4, memory=2, instruct=True)
    result = await asolve(strategy, TASK, ENV, Scripted(policy), Budget(calls=20))
    assert len(result.candidates) == 4 and result.ledger.calls == 4 + 3  # a reflection after each failure but the last
    last_prompt = result.candidates[-1].prompt[-1].text
    assert "Reflection 1" in last_prompt and "Reflection 2" in last_prompt
    assert "Reflection 0" not in last_prompt  # bounded: the oldest was dropped
    assert result.candidates[1].prompt[-1].text.count("Reflection") == 1
    assert result.info["reflections"] == 2


async def test_reflexion_without_instructions_makes_no_extra_calls() -> None:
    model = Scripted(lambda m, t: "The answer is 5.", name="micro", capabilities=MICRO)
    result = await asolve(Reflexion(attempts=3), TASK, ENV, model, Budget(calls=10))
    assert result.ledger.calls == 3
    assert "5 failed" in result.candidates[-1].prompt[-1].text


def test_judge_replies_are_parsed() -> None:
    assert parse_score("ok\nScore: 10") == 1.0 and parse_score("Score: 1") == 0.0
    assert parse_score("no score") is None and parse_score("Score = 5.5") == pytest.approx(0.5)
    assert parse_winner("Winner: B") == "b" and parse_winner("winner: tie") == "tie" and parse_winner("") is None


async def test_pairwise_judge_swaps_positions_and_cancels_position_bias() -> None:
    biased = PairwiseJudge(Scripted(lambda m, t: "Looks fine.\nWinner: A"))
    verdict = await biased.compare("q", "first", "second")
    assert verdict.preference == 0.5 and not verdict.consistent and verdict.winner == "tie"

    def fair(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = messages[-1].text
        a_part = text.split("Solution A:")[1].split("Solution B:")[0]
        return "Winner: A" if "right" in a_part else "Winner: B"

    verdict = await PairwiseJudge(Scripted(fair)).compare("q", "wrong", "right")
    assert verdict.preference == 0.0 and verdict.consistent and verdict.winner == "b"
    judge = PointwiseJudge(Scripted(lambda m, t: "Correct.\nScore: 8"))
    fb = await judge.score("q", "answer")
    assert fb.source == "judge" and fb.visibility == "public" and fb.score == pytest.approx(7 / 9)


async def test_judge_selectors_spend_from_the_budget() -> None:
    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = messages[-1].text
        if "strict grader" in text:
            return "Score: 9" if "answer: 4" in text else "Score: 2"
        return "The answer is 3." if len(messages) % 2 else "The answer is 4."

    judged = await asolve(BestOfN(n=3, select="judge", instruct=True), TASK, ENV, Scripted(policy), "calls=10")
    # 3 samples (all "3": the same conversation length) + one judge call per distinct answer
    assert judged.ledger.calls == 3 + len({c.answer for c in judged.candidates})


@pytest.mark.parametrize("how", ["judge", "pairwise"])
@pytest.mark.parametrize("calls", [4, 7, 8, 16])
async def test_judge_selectors_get_their_calls_held_back_from_the_samples(how: str, calls: int) -> None:
    """Without a reserve the samples spent the whole budget and the judge never ran."""
    drawn = iter(range(1000))
    judge_calls = 0

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        nonlocal judge_calls
        text = messages[-1].text
        if "strict grader" in text:
            judge_calls += 1
            return "Score: 9" if "answer: 4" in text else "Score: 2"
        if "Solution A:" in text:
            judge_calls += 1
            return "Winner: A" if "answer: 4" in text.split("Solution A:")[1].split("Solution B:")[0] else "Winner: B"
        return "The answer is 4." if next(drawn) % 3 == 1 else "The answer is 3."  # 3, 4, 3, 3, 4...

    model = Scripted(policy)
    strategy = BestOfN(select=how, instruct=True)  # type: ignore[arg-type]
    result = await asolve(strategy, TASK, ENV, model, Budget(calls=calls))
    assert result.ledger.calls == model.calls <= calls
    assert judge_calls > 0 and result.best.answer == "4"  # the judge ran and overruled the vote
    assert len(result.candidates) + judge_calls >= calls - 2  # the samples spent the rest
    before, drawn = judge_calls, iter(range(1000))
    mcts = MCTS(width=2, select=how, instruct=True)  # type: ignore[arg-type]
    searched = await asolve(mcts, TASK, ENV, model, Budget(calls=calls))
    assert searched.ledger.calls <= calls and judge_calls > before and searched.best.answer == "4"


def test_a_judge_selector_refuses_a_budget_too_small_to_judge() -> None:
    from hone.core import ConfigError
    from hone.improve._defaults import judge_reserve

    with pytest.raises(ConfigError, match=r"select='pairwise' needs --budget calls=3 or more"):
        judge_reserve(BestOfN(select="pairwise"), Budget(calls=2))
    with pytest.raises(ConfigError, match=r"select='judge' needs --budget calls=3 or more"):
        judge_reserve(MCTS(select="judge"), Budget(calls=2))
    assert judge_reserve(BestOfN(), Budget(calls=1)) is None  # a vote needs no judge
    held = judge_reserve(BestOfN(select="judge", judge_share=0.5), Budget(calls=10, tokens=1000, seconds=8))
    assert held == Budget(calls=5, tokens=500, seconds=4.0)


def test_prompts_load_and_override(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "{tried}" in Prompts().text("refine")
    (tmp_path / "refine_short.md").write_text("Wrong: {tried}")
    assert Prompts(tmp_path).render("refine_short", tried="4") == "Wrong: 4"
    from hone.improve import make_strategy

    made = make_strategy("refine", prompts=str(tmp_path))  # what `hone improve --set prompts=DIR` does
    assert isinstance(made, Refine) and made.prompts.render("refine_short", tried="4") == "Wrong: 4"
    assert Prompts({"reflections": "R {reflections}"}).render("reflections", reflections="x") == "R x"
    from hone.core import ConfigError

    with pytest.raises(ConfigError, match="unknown prompt"):
        Prompts({"nope": "x"})
    with pytest.raises(ConfigError, match="needs the field"):
        Prompts({"refine_short": "{other}"}).render("refine_short", tried="1")


def test_cli_options_are_converted_to_the_fields_types() -> None:
    from hone.core import ConfigError
    from hone.improve import MCTS, Evolve, make_strategy

    mcts = make_strategy("mcts", width="3", c="0.5", rethink="off", instruct="true", iterations="4")
    assert isinstance(mcts, MCTS)
    assert (mcts.width, mcts.c, mcts.rethink, mcts.instruct, mcts.iterations) == (3, 0.5, False, True, 4)
    evolve = make_strategy("evolve", operators="revision,refinement")
    assert isinstance(evolve, Evolve) and evolve.operators == ("revision", "refinement")
    with pytest.raises(ConfigError, match="option width='wide': input should be a valid integer"):
        make_strategy("mcts", width="wide")
    with pytest.raises(ConfigError, match="no option 'depht'"):
        make_strategy("mcts", depht="3")
    # A closed set is a Literal: a typo names the allowed values instead of changing behaviour.
    with pytest.raises(ConfigError, match=r"operators='revison': .*'revision', 'recombination' or 'refinement'"):
        make_strategy("evolve", operators="revison")
    with pytest.raises(ConfigError, match="value='judges'"):
        make_strategy("mcts", value="judges")


def test_typed_options_pass_straight_through() -> None:
    from hone.core import ConfigError, Sampling
    from hone.improve import Evolve, make_strategy

    sampling = Sampling(temperature=0.3)
    made = make_strategy("evolve", operators=("refinement",), pool=2, instruct=False, sampling=sampling)
    assert isinstance(made, Evolve)
    assert (made.operators, made.pool, made.instruct, made.sampling) == (("refinement",), 2, False, sampling)
    direct = Evolve(operators=("revision",), generations=1)  # the constructor takes typed values as before
    assert direct.operators == ("revision",) and direct.generations == 1
    with pytest.raises(ConfigError, match=r"operators=.*input should be 'revision'"):
        Evolve(operators=("revison",))  # type: ignore[arg-type]  # the constructor checks against the same model


async def test_pairwise_selector_keeps_the_vote_unless_the_judge_clearly_prefers_another() -> None:
    answers = iter(["3", "3", "4"])

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = messages[-1].text
        if "Solution A:" in text:
            a_part = text.split("Solution A:")[1].split("Solution B:")[0]
            return "Winner: A" if "answer: 4" in a_part else "Winner: B"
        return f"The answer is {next(answers)}."

    result = await asolve(
        BestOfN(n=3, parallel=1, select="pairwise", instruct=True), TASK, ENV, Scripted(policy), "calls=5"
    )
    assert result.best.answer == "4"  # the judge overruled the majority (3) in both orders
    assert result.ledger.calls == 3 + 2  # one comparison, asked in both orders


async def test_sampling_defaults_to_the_models_and_the_baseline_samples_as_the_strategy() -> None:
    from hone.core import Sampling
    from hone.improve import Single, acompare
    from hone.improve._compare import fair_baseline
    from hone.improve._defaults import MICRO_TEMPERATURE, default_sampling

    temperatures: dict[str, list[float]] = {}

    def model(name: str) -> Scripted:
        def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
            return "The answer is 3."

        return Scripted(policy, name=name, capabilities=MICRO if name == "micro" else None)

    assert default_sampling(model("micro")).temperature == MICRO_TEMPERATURE < 1.0
    assert default_sampling(model("gpt-4o-mini")).temperature == 1.0
    for name in ("micro", "other"):
        seen = model(name)
        inner = seen.generate

        async def watch(messages, tools=None, sampling=None, _name=name, _inner=inner):  # type: ignore[no-untyped-def]
            temperatures.setdefault(_name, []).append(sampling.temperature)
            return await _inner(messages, tools, sampling)

        seen.generate = watch  # type: ignore[method-assign]
        await asolve(BestOfN(n=2), TASK, ENV, seen, "calls=2")
    assert temperatures == {"micro": [MICRO_TEMPERATURE] * 2, "other": [1.0, 1.0]}
    # compare's added baseline samples as the compared strategy does; greedy single lends nothing
    warm = Refine(sampling=Sampling(temperature=0.3, max_tokens=50), seed=7)
    base = fair_baseline([warm])
    assert base.sampling == warm.sampling and base.seed == 7 and base.limits == warm.limits
    assert fair_baseline([Single()]).sampling is None
    cmp = await acompare([warm], ENV, model("micro"), "calls=2", n=1)
    assert [(r["strategy"], r["temperature"], r["max_tokens"]) for r in cmp.rows()] == [
        ("best_of_n", 0.3, 50),
        ("refine", 0.3, 50),
    ]
    alone = await acompare(["mcts"], ENV, model("micro"), "calls=2", n=1)
    assert [r["temperature"] for r in alone.rows()] == [MICRO_TEMPERATURE, MICRO_TEMPERATURE]
