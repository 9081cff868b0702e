"""Selectors shared by strategies: public score, majority vote over normalised answers, LLM judges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from hone.core import BudgetExceeded, Trajectory
from hone.envs import parse_number
from hone.feedback import PairwiseJudge, PointwiseJudge, transcript_text

if TYPE_CHECKING:
    from ._search import Search

SelectorName = Literal["vote", "score", "judge", "pairwise"]
SELECTORS: tuple[SelectorName, ...] = ("vote", "score", "judge", "pairwise")


def normalize_answer(answer: str | None) -> str | None:
    """A canonical form for voting: numbers as numbers (`"1,200.0"` -> `"1200"`), text lowercased."""
    if answer is None or not answer.strip():
        return None
    number = parse_number(answer)
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(round(number, 9))
    return " ".join(answer.lower().split()).rstrip(".")


def answer_groups(candidates: Sequence[Trajectory]) -> dict[str, list[Trajectory]]:
    """Candidates with an answer, grouped by normalised answer (first-seen order)."""
    groups: dict[str, list[Trajectory]] = {}
    for t in candidates:
        key = normalize_answer(t.answer)
        if key is not None and t.status != "error":
            groups.setdefault(key, []).append(t)
    return groups


def majority_vote(candidates: Sequence[Trajectory], scores: Mapping[str, float] | None = None) -> Trajectory | None:
    """Self-consistency: a candidate of the most frequent normalised answer.

    Ties between answers go to the larger summed public score, then to the answer seen
    first; within the winning group the best-scored candidate (else the first) represents
    it. None when no candidate has an answer.
    """
    scores = scores or {}
    groups = answer_groups(candidates)
    if not groups:
        return None
    order = list(groups)
    key = max(order, key=lambda k: (len(groups[k]), sum(scores.get(t.id, 0.0) for t in groups[k]), -order.index(k)))
    members = groups[key]
    return max(members, key=lambda t: (scores.get(t.id, 0.0), -members.index(t)))


def best_by_score(candidates: Sequence[Trajectory], scores: Mapping[str, float]) -> Trajectory | None:
    """The highest-scored candidate; ties are broken by majority vote among the tied, then order."""
    if not candidates:
        return None
    top = max(scores.get(t.id, 0.0) for t in candidates)
    tied = [t for t in candidates if scores.get(t.id, 0.0) == top]
    return majority_vote(tied, scores) or tied[0]


def question_text(traj: Trajectory) -> str:
    """The task as the model saw it: the last user message of the environment's prompt."""
    n = len(traj.prompt) - int(traj.meta.get("context_messages", 0))
    users = [m.text for m in traj.prompt[:n] if m.role == "user"]
    return users[-1] if users else ""


def solution_text(traj: Trajectory, limit: int = 1500) -> str:
    """An attempt's own steps as text (without the prompt), for judges and peers."""
    body = transcript_text([m for s in traj.steps for m in (s.call.message, *s.observations)], limit=limit)
    return f"{body}\nFinal answer: {traj.answer}"


async def judge_pointwise(search: Search, candidates: Sequence[Trajectory]) -> Trajectory | None:
    """Judge one representative per distinct answer with a rubric; the best judged wins.

    Judge calls spend from the search's budget (the part held for them, see `judge_reserve`,
    and whatever the samples left); the most voted answers are judged first, and when the
    budget runs out the best judged answer wins. Falls back to the public score when the
    model does not follow instructions (a judge needs it).
    """
    scores = {t.id: await search.score(t) for t in candidates}
    if not search.instruct:
        return best_by_score(candidates, scores)
    # The most voted answers first: a budget that cannot judge them all judges those.
    groups = sorted(answer_groups(candidates).values(), key=len, reverse=True)
    reps = [majority_vote(g, scores) for g in groups]
    judge = PointwiseJudge(search.metered)
    judged: dict[str, float] = {}
    for rep in [r for r in reps if r is not None]:
        try:
            fb = await judge.score(question_text(rep), solution_text(rep))
        except BudgetExceeded:
            break
        rep.feedback.append(fb)
        if fb.score is not None:
            judged[rep.id] = fb.score
    if not judged:
        return best_by_score(candidates, scores)
    pool = [t for t in candidates if t.id in judged]
    return best_by_score(pool, judged)


async def judge_pairwise(search: Search, candidates: Sequence[Trajectory]) -> Trajectory | None:
    """A knockout among distinct answers, each match judged twice with positions swapped.

    The incumbent is the majority-vote answer; a challenger replaces it only on a clear
    win (preference below 0.5 for the incumbent). Stops when the budget does.
    """
    scores = {t.id: await search.score(t) for t in candidates}
    champion = majority_vote(candidates, scores)
    if champion is None or not search.instruct:
        return champion or best_by_score(candidates, scores)
    judge = PairwiseJudge(search.metered)
    for group in answer_groups(candidates).values():
        challenger = majority_vote(group, scores)
        if challenger is None or challenger is champion or challenger.answer == champion.answer:
            continue
        try:
            verdict = await judge.compare(question_text(champion), solution_text(champion), solution_text(challenger))
        except BudgetExceeded:
            break
        if verdict.preference < 0.5:
            champion = challenger
    return champion


async def select(search: Search, candidates: Sequence[Trajectory], how: SelectorName) -> Trajectory | None:
    """Pick the best candidate by `how` (oracle mode always picks by hidden score)."""
    search.release()  # what was held back for a judge is the selector's to spend now
    finished = [t for t in candidates if not t.partial]
    if not finished:
        return None
    if search.oracle or how == "score":
        return best_by_score(finished, {t.id: await search.score(t) for t in finished})
    if how == "vote":
        scores = {t.id: await search.score(t) for t in finished}
        return majority_vote(finished, scores) or best_by_score(finished, scores)
    if how == "judge":
        return await judge_pointwise(search, finished)
    return await judge_pairwise(search, finished)
