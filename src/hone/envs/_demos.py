"""Demonstrations: solved (and realistically imperfect) trajectories for supervised training.

This is FTRL's "document generation": an environment that knows how its tasks are solved
writes example episodes, and a small model is first trained to imitate them. Each
demonstration is recorded by driving a real episode (`clone`, `reset`, `step`, `grade`), so
prompts, observations and feedback are exactly what the environment produces for a model.

The demonstrations are deliberately not all perfect: some answer without the tool (and at
the harder levels usually get it wrong), some use the tool clumsily. A model trained on them
starts competent but with clear room to improve from feedback.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from types import MappingProxyType

from hone.core import (
    ConfigError,
    EnvError,
    Ledger,
    Message,
    ModelCall,
    Step,
    Task,
    ToolCall,
    Trajectory,
    hidden_reward,
    numbers_match,
    utcnow,
)

from ._base import Environment
from ._calculator import Number, evaluate_expression, format_number

DEMONSTRATION_MODEL = "demonstration"
"""The `model` (and `strategy`) recorded in every demonstration."""

STYLES = ("tool", "direct", "clumsy")
"""Demonstration styles: `tool` calls the calculator with the right expression and answers its
result; `direct` answers without the tool (right or with a plausible slip); `clumsy` first
sends a malformed expression (or splits the work into two calls), then answers correctly."""

DEMONSTRATION_MIX: Mapping[str, float] = MappingProxyType({"tool": 0.70, "direct": 0.15, "clumsy": 0.15})
"""Default share of each style. Only `direct` can be wrong, so overall accuracy is roughly
`tool + clumsy + direct * accuracy(level)`: high enough to learn from, low enough to improve on."""

DIRECT_ACCURACY: Mapping[int, float] = MappingProxyType({1: 0.8, 2: 0.8, 3: 0.4, 4: 0.1, 5: 0.1})
"""Chance that a `direct` demonstration (no tool) is right, by arith level: mental arithmetic
works for small sums and fails for long expressions."""

_TOP_LEVEL_OP = re.compile(r" ([-+]) ")
_TOKEN = re.compile(r"\s*(\d+|[-+*/()])")


def check_mix(mix: Mapping[str, float] | None) -> dict[str, float]:
    """`mix` (default `DEMONSTRATION_MIX`) normalised to shares that sum to 1; `ConfigError` if invalid."""
    raw = dict(DEMONSTRATION_MIX if mix is None else mix)
    unknown = sorted(set(raw) - set(STYLES))
    if unknown:
        raise ConfigError(f"unknown demonstration style {unknown[0]!r}; styles: {', '.join(STYLES)}")
    if any(share < 0 for share in raw.values()) or sum(raw.values()) <= 0:
        raise ConfigError(f"demonstration mix {raw!r}: shares must be non-negative with a positive sum")
    total = sum(raw.values())
    return {style: raw.get(style, 0.0) / total for style in STYLES}


def pick_style(rng: random.Random, mix: Mapping[str, float]) -> str:
    """A style drawn with the probabilities of `mix` (normalised shares)."""
    draw = rng.random()
    cumulative = 0.0
    chosen = STYLES[0]
    for style in STYLES:
        share = mix.get(style, 0.0)
        if share <= 0:
            continue
        chosen = style
        cumulative += share
        if draw < cumulative:
            break
    return chosen  # float rounding can leave the draw just past the last share: the last style then


def answer_message(value: Number | str) -> Message:
    """The closing assistant message: exactly `The answer is N.`, N formatted as the calculator does."""
    text = value if isinstance(value, str) else format_number(value)
    return Message.assistant(f"The answer is {text}.")


def calculator_message(expression: str, call_id: str) -> Message:
    """An assistant message with no text and one `calculator` call."""
    return Message.assistant(None, [ToolCall(id=call_id, name="calculator", arguments={"expression": expression})])


def calculator_plan(rng: random.Random, style: str, expression: str, *, direct_accuracy: float) -> list[Message]:
    """The assistant messages of one demonstration of `style` for a problem that `expression` solves.

    Everything is decided by `rng`, so a seeded generator gives the same plan on any machine.
    Calculator results are computed here with the same `calculate` the tool runs, so the final
    answer always agrees with the observations the environment will produce.
    """
    value = evaluate_expression(expression)
    if style == "tool":
        return [calculator_message(expression, "call_0"), answer_message(value)]
    if style == "direct":
        right = rng.random() < direct_accuracy
        return [answer_message(value if right or not isinstance(value, int) else slip(rng, expression, value))]
    if style == "clumsy":
        parts = split_expression(rng, expression)
        if parts is not None and rng.random() < 0.5:
            first, second = parts
        else:
            first, second = malformed(rng, expression), expression
        return [calculator_message(first, "call_0"), calculator_message(second, "call_1"), answer_message(value)]
    raise ConfigError(f"unknown demonstration style {style!r}; styles: {', '.join(STYLES)}")


def slip(rng: random.Random, expression: str, value: int) -> int:
    """A plausible wrong answer: one digit off, a digit dropped or swapped, or precedence ignored.

    Every slip is checked against the grader's tolerance (`numbers_match`), so an answer
    that is off by one in the last digit of a huge number never passes as a wrong answer.
    """
    kinds = ["off", "drop", "swap", "left_to_right"]
    rng.shuffle(kinds)
    sign = -1 if value < 0 else 1
    digits = str(abs(value))
    for kind in kinds:
        wrong: int | None = None
        if kind == "off":  # a slip in one digit: mostly the last ones, as in a carry error
            place = min(int(rng.expovariate(1.0)), len(digits) - 1)
            wrong = value + rng.choice((1, 1, 2, 3)) * rng.choice((-1, 1)) * 10**place
        elif kind == "drop" and len(digits) > 1:
            i = rng.randrange(len(digits))
            wrong = sign * int(digits[:i] + digits[i + 1 :])
        elif kind == "swap":
            spots = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
            if spots:
                i = rng.choice(spots)
                wrong = sign * int(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :])
        elif kind == "left_to_right":
            found = left_to_right(expression)
            wrong = found.numerator if found is not None and found.denominator == 1 else None
        if wrong is not None and not numbers_match(wrong, value):
            return wrong
    return value + sign * int(10 ** (len(digits) - 1))  # the leading digit one too high: always far enough off


def left_to_right(expression: str) -> Fraction | None:
    """`expression` evaluated strictly left to right (parentheses kept, precedence ignored), or None.

    The classic slip: `2 + 3 * 4` read as `(2 + 3) * 4`. None for text this reader cannot
    follow (unary signs, decimals) and for a division by zero.
    """
    tokens = _TOKEN.findall(expression)
    if "".join(tokens) != expression.replace(" ", ""):
        return None
    pos = 0

    def group() -> Fraction:
        nonlocal pos
        total = atom()
        while pos < len(tokens) and tokens[pos] in "+-*/":
            op = tokens[pos]
            pos += 1
            right = atom()
            if op == "+":
                total += right
            elif op == "-":
                total -= right
            elif op == "*":
                total *= right
            else:
                total /= right
        return total

    def atom() -> Fraction:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "(":
            inner = group()
            if tokens[pos] != ")":
                raise ValueError("unbalanced")
            pos += 1
            return inner
        return Fraction(int(token))

    try:
        result = group()
    except (IndexError, ValueError, ZeroDivisionError):
        return None
    return result if pos == len(tokens) else None


def malformed(rng: random.Random, expression: str) -> str:
    """A broken version of `expression` the calculator rejects: `x` for `*`, a `)` missing, or a trailing operator."""
    options: list[str] = []
    if " * " in expression:
        spots = [m.start() for m in re.finditer(r" \* ", expression)]
        i = rng.choice(spots)
        options.append(f"{expression[:i]} x {expression[i + 3 :]}")
    if ")" in expression:
        i = expression.rindex(")")
        options.append(expression[:i] + expression[i + 1 :])
    options.append(f"{expression} {rng.choice('+-*/')}")
    return rng.choice(options)


def split_expression(rng: random.Random, expression: str) -> tuple[str, str] | None:
    """Two calculator calls that solve `expression`: a part of it, then the whole with that part's value.

    Splits at the last top-level `+`/`-`: both the left side and the right-hand term have exact
    values there, so substituting either keeps the result. None when neither side is worth a
    call of its own (a lone number) or a side's value is not an integer.
    """
    cut = _last_top_level_op(expression)
    if cut is None:
        return None
    start, op = cut
    left, right = expression[:start], expression[start + 3 :]
    options: list[tuple[str, str]] = []
    if _has_operator(left) and isinstance(part := evaluate_expression(left), int):
        options.append((left, f"{part} {op} {right}"))
    inner = _unwrap(right)
    if _has_operator(inner) and isinstance(part := evaluate_expression(inner), int):
        options.append((inner, f"{left} {op} {part if part >= 0 else f'({part})'}"))
    return rng.choice(options) if options else None


def _last_top_level_op(expression: str) -> tuple[int, str] | None:
    depth_at: list[int] = []
    depth = 0
    for ch in expression:
        depth += ch == "("
        depth -= ch == ")"
        depth_at.append(depth)
    found = [(m.start(), m.group(1)) for m in _TOP_LEVEL_OP.finditer(expression) if depth_at[m.start()] == 0]
    return found[-1] if found else None


def _has_operator(text: str) -> bool:
    return any(op in text for op in "+-*/")


def _unwrap(text: str) -> str:
    """`text` without parentheses that enclose all of it: `(a - b)` -> `a - b`; `(a) * (b)` unchanged."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


async def record_demonstration(
    env: Environment, task: Task, messages: Sequence[Message], *, style: str, split: str | None
) -> Trajectory:
    """Play `messages` as the assistant's turns in a fresh episode of `env` and return the graded trajectory.

    The trajectory is recorded as `hone.rollout` records a real episode: the observations
    come from `env.step`, the feedback from `env.grade`. Raises `EnvError` when the messages
    do not end the episode (the last one must be a plain answer).
    """
    from hone.models import request_digest  # deferred: hone.models pulls in HTTP clients envs never need

    episode = env.clone()
    reset = await episode.reset(task)
    history = list(reset.messages)
    traj = Trajectory(
        task_id=task.id,
        env=env.name,
        env_version=env.version,
        split=split,
        subset=task.subset,
        model=DEMONSTRATION_MODEL,
        prompt=list(reset.messages),
        tools=list(reset.tools),
        strategy=DEMONSTRATION_MODEL,
        meta={"style": style},
    )
    for turn, message in enumerate(messages):
        call = ModelCall(
            model=DEMONSTRATION_MODEL,
            request_digest=request_digest(DEMONSTRATION_MODEL, history, reset.tools, None),
            message=message,
            finish_reason="tool_calls" if message.tool_calls else "stop",
        )
        result = await episode.step(message)
        step = Step(
            call=call,
            observations=list(result.observations),
            feedback=[f.model_copy(update={"step_index": turn}) for f in result.feedback],
        )
        if result.tool_errors:
            step.error = result.tool_errors[0].model_copy(update={"step_index": turn})
        traj.steps.append(step)
        history += [message, *result.observations]
        if result.done:
            traj.answer = result.answer
            traj.stop_reason = "done"
            break
    else:
        raise EnvError(f"{env.name}: demonstration for {task.id!r} did not end the episode")
    tool_calls = traj.tool_call_count
    traj.usage = Ledger(calls=len(traj.steps), tool_calls=tool_calls, env_steps=len(traj.steps))
    traj.feedback = await episode.grade(traj)
    traj.reward = hidden_reward(traj.feedback)
    traj.finished_at = utcnow()
    return traj
