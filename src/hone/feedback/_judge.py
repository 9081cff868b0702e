"""LLM judges: a pointwise rubric score and a pairwise comparison with position swap.

Judges give *public* feedback (`source="judge"`): an opinion a solver may see, never ground
truth. They call whatever `ChatModel` they are given, so a caller that passes a metered
model (hone.improve does) has every judge call counted in its budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from hone.core import Feedback, Message, Sampling
from hone.models import ChatModel

POINTWISE_TEMPLATE = """You are a strict grader. Judge the candidate solution to the problem below.

Rubric:
{rubric}

Problem:
{question}

Candidate solution:
{candidate}

Reply with one short sentence of rationale, then a last line "Score: N"
with N from 1 (wrong) to 10 (certainly right)."""

PAIRWISE_TEMPLATE = """You compare two candidate solutions to the same problem.

Rubric:
{rubric}

Problem:
{question}

Solution A:
{a}

Solution B:
{b}

Reply with one short sentence of rationale, then a last line "Winner: A", "Winner: B" or "Winner: tie"."""

DEFAULT_RUBRIC = "The final answer is correct, and every step that leads to it is justified."

_SCORE = re.compile(r"score\s*[:=]\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_WINNER = re.compile(r"winner\s*[:=]\s*\**\s*(a|b|tie)\b", re.IGNORECASE)


def parse_score(text: str, low: float = 1.0, high: float = 10.0) -> float | None:
    """The last "Score: N" in `text` mapped from [low, high] to [0, 1] (clamped); None if absent."""
    found = _SCORE.findall(text or "")
    if not found:
        return None
    value = (float(found[-1]) - low) / (high - low)
    return min(1.0, max(0.0, value))


def parse_winner(text: str) -> str | None:
    """ "a", "b" or "tie" from the last "Winner: X" line in `text`; None if absent."""
    found = _WINNER.findall(text or "")
    return found[-1].lower() if found else None


@dataclass
class PointwiseJudge:
    """Scores one candidate against a rubric: public `Feedback` with `score` in [0, 1].

    The model answers with a rationale and "Score: N" (1-10). An unreadable reply gives
    feedback with `score=None` (the caller decides what an abstention means).
    """

    model: ChatModel
    rubric: str = DEFAULT_RUBRIC
    template: str = POINTWISE_TEMPLATE
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=256))

    async def score(self, question: str, candidate: str) -> Feedback:
        prompt = self.template.format(rubric=self.rubric, question=question, candidate=candidate)
        call = await self.model.generate([Message.user(prompt)], None, self.sampling)
        text = call.message.text
        return Feedback(
            source="judge", name="pointwise", score=parse_score(text), text=text.strip()[:500], visibility="public"
        )


@dataclass(frozen=True)
class PairVerdict:
    """A pairwise verdict after both orders: `preference` is the mean of the two readings of
    "A is better" (1 win, 0.5 tie, 0 loss), so in {0, 0.25, 0.5, 0.75, 1}.

    `consistent` is False when the two orders disagree (position bias); opposite verdicts
    give 0.5, a tie. `rationales` holds the judge's two replies (A-first, then B-first).
    """

    preference: float
    consistent: bool
    rationales: tuple[str, str]

    @property
    def winner(self) -> str:
        return "a" if self.preference > 0.5 else "b" if self.preference < 0.5 else "tie"


@dataclass
class PairwiseJudge:
    """Compares two candidates twice, swapping their positions, to cancel position bias.

    A verdict that flips with the order is a tie. Costs two model calls per comparison.
    """

    model: ChatModel
    rubric: str = DEFAULT_RUBRIC
    template: str = PAIRWISE_TEMPLATE
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=256))

    async def _ask(self, question: str, first: str, second: str) -> tuple[float, str]:
        prompt = self.template.format(rubric=self.rubric, question=question, a=first, b=second)
        call = await self.model.generate([Message.user(prompt)], None, self.sampling)
        text = call.message.text
        verdict = parse_winner(text)
        return {"a": 1.0, "b": 0.0}.get(verdict or "tie", 0.5), text.strip()[:500]

    async def compare(self, question: str, a: str, b: str) -> PairVerdict:
        forward, text_ab = await self._ask(question, a, b)
        swapped, text_ba = await self._ask(question, b, a)
        backward = 1.0 - swapped  # P(A better) read from the swapped order
        # Opposite verdicts average to 0.5: the position decided, not the quality.
        preference = (forward + backward) / 2
        consistent = forward == backward
        return PairVerdict(preference=preference, consistent=consistent, rationales=(text_ab, text_ba))

    async def feedback(self, question: str, a: str, b: str) -> tuple[Feedback, Feedback]:
        """The verdict as public judge feedback on A and on B (A gets `preference`, B the rest)."""
        v = await self.compare(question, a, b)
        text = " | ".join(v.rationales)
        return (
            Feedback(source="judge", name="pairwise", score=v.preference, text=text, visibility="public"),
            Feedback(source="judge", name="pairwise", score=1.0 - v.preference, text=text, visibility="public"),
        )


def transcript_text(messages: Sequence[Message], limit: int = 2000) -> str:
    """A compact text rendering of a conversation for a judge (tool calls shown as `-> name(args)`)."""
    lines: list[str] = []
    for m in messages:
        if m.role == "system":
            continue
        body = m.text
        for tc in m.tool_calls or []:
            body += f" -> {tc.name}({tc.arguments_raw or tc.arguments})"
        lines.append(f"{m.role}: {body.strip()}")
    text = "\n".join(lines)
    return text if len(text) <= limit else "..." + text[-limit:]
