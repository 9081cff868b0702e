"""Jinja2 filters and the transcript's view model: a trajectory as the rows a page shows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from markupsafe import Markup, escape

from hone.core import Feedback, Message, Trajectory

DASH = "\u2013"  # what a missing figure shows


def _number(value: Any) -> bool:
    # Anything else (None, a missing key's Undefined, text in an odd summary) shows as a dash.
    return isinstance(value, int | float) and not isinstance(value, bool)


def pct(value: Any, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%" if _number(value) else DASH


def ci(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"[{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]"


def num(value: Any, digits: int = 3) -> str:
    if not _number(value):
        return DASH
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def query(args: dict[str, Any], **changes: Any) -> str:
    """A query string from `args` with `changes` applied (None drops a key)."""
    merged = {k: v for k, v in {**args, **changes}.items() if v not in (None, "")}
    return urlencode(merged)


def link(href: str, text: str) -> Markup:
    """An anchor to a page of the viewer."""
    return Markup('<a href="{}">{}</a>').format(href, text)


def no_link(href: str, text: str) -> Markup:
    """A report's stand-in for `link`: the text alone (a shared file has no server behind it)."""
    return Markup(escape(text))


def register_filters(env: Environment, *, offline: bool = False) -> None:
    """Make the formatting helpers available to every template (`offline`: links become text)."""
    env.filters.update(pct=pct, ci=ci, num=num, when=when, pretty=pretty)
    env.globals.update(query=query, link=no_link if offline else link)


@dataclass
class Turn:
    """One message of a transcript, with what the page shows beside it."""

    role: str
    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    error: str | None = None
    step: int | None = None
    tokens: dict[str, Any] | None = None  # prompt/completion counts and latency of the call
    feedback: list[Feedback] = field(default_factory=list)
    step_error: Any = None


TOKENS_SHOWN = 1024
"""Token ids a step shows of its prompt (the last ones) and of its completion (the first ones):
a long episode stores tens of thousands, which would make a page of megabytes."""


@dataclass
class TokenView:
    """A step's token ids, split into the prompt (context, never trained) and the completion
    (the model's own tokens: what SFT/GRPO train on), with their log-probabilities when stored.
    Past `TOKENS_SHOWN` a side is cut and the cut counted (`prompt_cut`, `completion_cut`)."""

    step: int
    prompt: list[int]
    completion: list[tuple[int, float | None]]
    prompt_total: int = 0
    completion_total: int = 0

    @property
    def prompt_cut(self) -> int:
        return self.prompt_total - len(self.prompt)

    @property
    def completion_cut(self) -> int:
        return self.completion_total - len(self.completion)


def _turn(message: Message, step: int | None = None) -> Turn:
    calls = [
        {
            "id": c.id,
            "name": c.name,
            "arguments": pretty(c.arguments) if c.parse_error is None else None,
            "raw": c.arguments_raw,
            "parse_error": c.parse_error,
        }
        for c in message.tool_calls or []
    ]
    return Turn(
        role=message.role,
        content=message.content,
        tool_calls=calls,
        name=message.name,
        error=message.error,
        step=step,
    )


def transcript_view(traj: Trajectory) -> dict[str, Any]:
    """The transcript's turns, token views and feedback (public and hidden apart)."""
    turns = [_turn(m) for m in traj.prompt]
    tokens: list[TokenView] = []
    for i, step in enumerate(traj.steps):
        call = step.call
        turn = _turn(call.message, step=i)
        turn.tokens = {
            "prompt": call.usage.prompt_tokens if call.usage else None,
            "completion": call.usage.completion_tokens if call.usage else None,
            "latency_s": call.latency_s,
            "finish": call.finish_reason,
            "cached": call.cached,
        }
        turn.feedback = list(step.feedback)
        turn.step_error = step.error
        turns.append(turn)
        turns.extend(_turn(m, step=i) for m in step.observations)
        if call.completion_token_ids:
            logprobs: list[float | None] = list(call.completion_logprobs or [])
            logprobs += [None] * (len(call.completion_token_ids) - len(logprobs))
            prompt = list(call.prompt_token_ids or [])
            tokens.append(
                TokenView(
                    step=i,
                    prompt=prompt[-TOKENS_SHOWN:],
                    completion=list(zip(call.completion_token_ids, logprobs, strict=False))[:TOKENS_SHOWN],
                    prompt_total=len(prompt),
                    completion_total=len(call.completion_token_ids),
                )
            )
    public = [f for f in traj.feedback if f.visibility == "public"]
    hidden = [f for f in traj.feedback if f.visibility != "public"]
    return {"turns": turns, "tokens": tokens, "public": public, "hidden": hidden, "tools": traj.tools}
