"""Token-exact data: the prefix chain between steps, masked token records, and the re-rendering check.

A multi-turn trajectory generated token by token is one sequence only when each step's
prompt starts with the previous step's prompt and completion. Re-applying a chat template
to the history often breaks that (whitespace, tool-call JSON, thinking blocks dropped,
tokens merging across a boundary): training on the re-rendered text then teaches tokens
the model never produced. This module finds every such break.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hone.core import ConfigError, Trajectory
from hone.models._toolformats import TemplateFormat, detect_format

MismatchKind = Literal["prefix", "render", "missing", "template"]

MASK_COLUMN = "assistant_masks"
"""The loss-mask column of pre-tokenized SFT data: TRL 1.16's SFTTrainer always folds
`assistant_masks` into `labels`, while `completion_mask` counts only with
`completion_only_loss=True` (which defaults to False for datasets without `prompt`/`completion`)."""

_BEFORE, _AFTER = 12, 24


@dataclass(frozen=True)
class TokenMismatch:
    """One place where stored token ids disagree with what they should be.

    `kind`: `prefix` (this step's stored prompt does not start with the previous step's
    prompt + completion), `render` (re-rendering the conversation with the chat template
    gives other ids than the stored prompt), `missing` (the step lacks token ids while
    others have them), `template` (the chat template raised). `position` is the first
    differing token index (-1 where none applies); `expected` and `stored` are decoded
    snippets around it (token ids when no tokenizer was given).
    """

    trajectory_id: str
    step_index: int
    kind: MismatchKind
    position: int
    expected: str
    stored: str

    def __str__(self) -> str:
        return (
            f"{self.trajectory_id} step {self.step_index}: {self.kind} mismatch at token {self.position}: "
            f"expected {self.expected!r}, stored {self.stored!r}"
        )


def has_token_ids(traj: Trajectory) -> bool:
    """Every step holds both prompt and completion token ids (and there is at least one step)."""
    return bool(traj.steps) and all(
        s.call.prompt_token_ids is not None and s.call.completion_token_ids is not None for s in traj.steps
    )


def _first_diff(expected: Sequence[int], stored: Sequence[int]) -> int:
    for i, (a, b) in enumerate(zip(expected, stored, strict=False)):
        if a != b:
            return i
    return min(len(expected), len(stored))


def _snippet(ids: Sequence[int], pos: int, tokenizer: Any) -> str:
    window = list(ids[max(0, pos - _BEFORE) : pos + _AFTER])
    if tokenizer is None:
        return str(window)
    return str(tokenizer.decode(window, skip_special_tokens=False, clean_up_tokenization_spaces=False))


def _mismatch(
    traj: Trajectory, index: int, kind: MismatchKind, expected: Sequence[int], stored: Sequence[int], tokenizer: Any
) -> TokenMismatch:
    pos = _first_diff(expected, stored)
    return TokenMismatch(
        traj.id, index, kind, pos, _snippet(expected, pos, tokenizer), _snippet(stored, pos, tokenizer)
    )


def chain_mismatches(traj: Trajectory, tokenizer: Any = None) -> list[TokenMismatch]:
    """Steps whose stored prompt ids do not extend the previous step's prompt + completion ids.

    Steps without token ids are reported as `missing` (when some step has them). `tokenizer`
    (optional) decodes the snippets.
    """
    out: list[TokenMismatch] = []
    if not any(s.call.prompt_token_ids is not None for s in traj.steps):
        return out
    previous: list[int] | None = None
    for i, step in enumerate(traj.steps):
        prompt, completion = step.call.prompt_token_ids, step.call.completion_token_ids
        if prompt is None or completion is None:
            out.append(TokenMismatch(traj.id, i, "missing", -1, "prompt and completion token ids", "none"))
            previous = None
            continue
        if previous is not None and prompt[: len(previous)] != previous:
            out.append(_mismatch(traj, i, "prefix", previous, prompt, tokenizer))
        previous = [*prompt, *completion]
    return out


def token_record(traj: Trajectory) -> dict[str, list[int]] | None:
    """`{"input_ids", "assistant_masks"}` for a trajectory whose token chain holds, else None.

    `input_ids` is the last step's prompt ids plus its completion ids; the mask is 1 exactly
    on each step's completion ids (what the model generated) and 0 on the template, the
    prompt and every observation (tool output) in between.
    """
    if not has_token_ids(traj) or chain_mismatches(traj):
        return None
    last = traj.steps[-1].call
    assert last.prompt_token_ids is not None and last.completion_token_ids is not None
    input_ids = [*last.prompt_token_ids, *last.completion_token_ids]
    mask = [0] * len(input_ids)
    for step in traj.steps:
        start = len(step.call.prompt_token_ids or [])
        for j in range(start, start + len(step.call.completion_token_ids or [])):
            mask[j] = 1
    return {"input_ids": input_ids, MASK_COLUMN: mask}


@dataclass
class TokenizationReport:
    """What `check_tokenization` found: counts and every mismatch."""

    trajectories: int = 0
    steps: int = 0
    skipped: int = 0
    mismatches: list[TokenMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no mismatch was found."""
        return not self.mismatches

    def by_kind(self) -> dict[str, int]:
        """How many mismatches of each kind."""
        counts: dict[str, int] = {}
        for m in self.mismatches:
            counts[m.kind] = counts.get(m.kind, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: what was checked and how many mismatches of each kind."""
        head = f"checked {self.steps} steps of {self.trajectories} trajectories ({self.skipped} without token ids)"
        if self.ok:
            return f"{head}: no mismatches"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.by_kind().items()))
        bad = len({m.trajectory_id for m in self.mismatches})
        return f"{head}: {len(self.mismatches)} mismatches in {bad} trajectories ({kinds})"


def render_ids(
    traj: Trajectory, step_index: int, tokenizer: Any, formats: dict[str | None, Any] | None = None
) -> list[int]:
    """The prompt ids of step `step_index` as `HFLocal.encode` would compute them now.

    The conversation up to that step (opening prompt, earlier responses and observations) is
    encoded in the tool format the step recorded (`ModelCall.tool_format`: hermes, fallback,
    ...; detected from the template when none was recorded), as `HFLocal` renders it: through
    `tokenizer.apply_chat_template(..., add_generation_prompt=True, tokenize=False)`, then
    tokenized without adding special tokens; after the first step, with the previous step's prompt and
    completion ids for the text they decode to (`HFLocal` keeps a generated turn's own ids, which need not be
    the tokenizer's split of its text). `formats` caches formats by name across calls.
    """
    messages = list(traj.prompt)
    for step in traj.steps[:step_index]:
        messages.append(step.call.message)
        messages.extend(step.observations)
    name = traj.steps[step_index].call.tool_format if step_index < len(traj.steps) else None
    cache = formats if formats is not None else {}
    if name not in cache:
        try:
            cache[name] = detect_format(tokenizer, name)
        except ConfigError:
            if name is not None:
                raise
            cache[name] = TemplateFormat()  # none recorded nor detectable: the chat template as it is
    fmt = cache[name]
    if step_index and isinstance(fmt, TemplateFormat):  # as HFLocal continues a conversation it generated
        before = traj.steps[step_index - 1].call
        if before.prompt_token_ids is not None and before.completion_token_ids is not None:
            ids = [*before.prompt_token_ids, *before.completion_token_ids]
            head = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            text = fmt.render(tokenizer, messages, traj.tools or None)
            if text.startswith(head):
                return ids + list(tokenizer(text[len(head) :], add_special_tokens=False)["input_ids"])
    return list(fmt.encode(tokenizer, messages, traj.tools or None))


def check_tokenization(trajectories: Iterable[Trajectory], tokenizer: Any) -> TokenizationReport:
    """Re-render each step's prompt with `tokenizer` and compare with the stored token ids.

    For every trajectory with token ids, each step's conversation prefix is rendered as
    `HFLocal.render`/`encode` do, in the step's recorded tool format, and compared with the
    stored `prompt_token_ids` (`render` mismatches), and each step's stored prompt must start
    with the previous step's prompt and completion ids (`prefix` mismatches). Every mismatch is reported, with the first
    differing position and decoded snippets of expected and stored ids. Trajectories
    without any token ids are counted as `skipped`.
    """
    report = TokenizationReport()
    formats: dict[str | None, Any] = {}
    for traj in trajectories:
        if not any(s.call.prompt_token_ids is not None for s in traj.steps):
            report.skipped += 1
            continue
        report.trajectories += 1
        found = chain_mismatches(traj, tokenizer)
        for i, step in enumerate(traj.steps):
            stored = step.call.prompt_token_ids
            if stored is None:
                continue
            report.steps += 1
            try:
                expected = render_ids(traj, i, tokenizer, formats)
            except Exception as exc:  # jinja errors, templates that raise on unsupported roles
                found.append(TokenMismatch(traj.id, i, "template", -1, f"{type(exc).__name__}: {exc}", ""))
                continue
            if expected != stored:
                found.append(_mismatch(traj, i, "render", expected, stored, tokenizer))
        report.mismatches.extend(sorted(found, key=lambda m: (m.step_index, m.kind)))
    return report
