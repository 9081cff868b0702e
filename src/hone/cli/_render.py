"""Rich renderings: summary tables, run lists, transcripts."""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hone.core import Trajectory
from hone.metrics import Summary
from hone.store import RunInfo


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f"[{100 * lo:.1f}, {100 * hi:.1f}]"


def _ci_raw(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "-" if x is None else format(x, fmt)


def summary_table(s: Summary, title: str) -> Table:
    """The headline table of an evaluation."""
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("95% CI", justify="right")
    t.add_row("tasks x samples", f"{s.n_tasks} x {s.samples_per_task}", "")
    t.add_row("accuracy", _pct(s.accuracy), _ci(*(s.accuracy_ci or (None, None))))
    t.add_row("mean reward", _num(s.mean_reward, ".3f"), _ci_raw(s.mean_reward_ci))
    for k, v in sorted(s.pass_at_k.items()):
        t.add_row(f"pass@{k}", _pct(v), "")
    if len(s.by_subset) > 1:
        t.add_row("harmony (uniformity)", _num(s.harmony, ".3f"), "")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(s.status_counts.items()) if v)
    t.add_row("status", statuses, "")
    if s.error_types:
        t.add_row("errors", ", ".join(f"{k} {v}" for k, v in sorted(s.error_types.items())), "")
    led = s.ledger
    t.add_row("model calls", f"{led.calls:,}", "")
    t.add_row("tokens (prompt+completion)", f"{led.prompt_tokens:,}+{led.completion_tokens:,}", "")
    t.add_row("tool calls", f"{led.tool_calls:,}", "")
    if led.cost_usd:
        t.add_row("cost (USD)", f"{led.cost_usd:.4f}", "")
    t.add_row("tokens / solved task", _num(s.tokens_per_solved), "")
    t.add_row("calls / solved task", _num(s.calls_per_solved, ".2f"), "")
    t.add_row("episode seconds (sum)", _num(s.seconds, ".1f"), "")
    return t


def subset_table(s: Summary) -> Table | None:
    if len(s.by_subset) <= 1:
        return None
    t = Table(title="by subset", header_style="bold")
    t.add_column("subset")
    t.add_column("n", justify="right")
    t.add_column("accuracy", justify="right")
    t.add_column("95% CI", justify="right")
    for name, sub in s.by_subset.items():
        t.add_row(name, str(sub.n), _pct(sub.accuracy), _ci(sub.ci[0], sub.ci[1]))
    return t


def runs_table(runs: list[RunInfo], counts: dict[str, int]) -> Table:
    t = Table(title="runs", header_style="bold")
    t.add_column("run", overflow="fold")
    for col in ("kind", "env", "model", "split", "status", "trajectories", "accuracy", "created"):
        t.add_column(col)
    for r in runs:
        acc = r.summary.get("accuracy")
        t.add_row(
            r.id,
            r.kind,
            r.env,
            r.model,
            r.split or "",
            r.status,
            str(counts.get(r.id, 0)),
            _pct(acc) if isinstance(acc, float | int) else "-",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return t


def trajectories_table(trajs: list[Trajectory]) -> Table:
    t = Table(header_style="bold")
    for col in ("trajectory", "task"):
        t.add_column(col, overflow="fold")  # ids are for copying: never cut them
    for col in ("sample", "status", "reward", "steps", "answer"):
        t.add_column(col)
    for tr in trajs:
        status = tr.status if tr.error is None else f"{tr.status} ({tr.error.type})"
        reward = "-" if tr.reward is None else f"{tr.reward:g}"
        answer = (tr.answer or "")[:40]
        t.add_row(tr.id, tr.task_id, str(tr.sample), status, reward, str(len(tr.steps)), answer)
    return t


_ROLE_STYLE = {"system": "dim", "user": "cyan", "assistant": "green", "tool": "yellow"}


def transcript(tr: Trajectory) -> RenderableType:
    """A readable transcript: messages, tool calls, observations, errors and feedback."""
    head = Text.assemble(
        (f"{tr.id}", "bold"),
        f"  task {tr.task_id} sample {tr.sample}  env {tr.env}@{tr.env_version}  model {tr.model}\n",
        f"status {tr.status}",
        f" ({tr.stop_reason})" if tr.stop_reason else "",
        f"  reward {tr.reward:g}" if tr.reward is not None else "",
        f"  calls {tr.usage.calls}  tokens {tr.usage.tokens}  tool calls {tr.usage.tool_calls}",
        f"  {tr.usage.seconds:.2f}s",
    )
    parts: list[RenderableType] = [head]
    for m in tr.prompt:
        parts.append(Panel(Text(m.text), title=m.role, title_align="left", border_style=_ROLE_STYLE[m.role]))
    for i, step in enumerate(tr.steps):
        msg = step.call.message
        body = Text(msg.text)
        for tc in msg.tool_calls or []:
            args = tc.arguments_raw if tc.parse_error else json.dumps(tc.arguments)
            body.append(f"\n-> {tc.name}({args})", style="bold magenta")
            if tc.parse_error:
                body.append(f"  [{tc.parse_error}]", style="red")
        title = f"assistant (step {i}, {step.call.usage.completion_tokens} tok, {step.call.latency_s * 1000:.0f} ms)"
        parts.append(Panel(body, title=title, title_align="left", border_style="green"))
        for obs in step.observations:
            label = f"{obs.role}: {obs.name}" if obs.name else obs.role
            parts.append(Panel(Text(obs.text), title=label, title_align="left", border_style=_ROLE_STYLE[obs.role]))
        for fb in step.feedback:
            parts.append(Text(f"  feedback [{fb.visibility}] {fb.source}/{fb.name}: {fb.text or fb.score}"))
        if step.error is not None:
            parts.append(Text(f"  {step.error.type}: {step.error.message}", style="red"))
    if tr.error is not None:
        raw = f"\n  raw: {tr.error.raw}" if tr.error.raw else ""
        parts.append(Text(f"error {tr.error.type}: {tr.error.message}{raw}", style="bold red"))
    parts.append(Text(f"answer: {tr.answer}", style="bold"))
    for fb in tr.feedback:
        verdict = "" if fb.passed is None else (" PASS" if fb.passed else " FAIL")
        parts.append(Text(f"feedback [{fb.visibility}] {fb.source}/{fb.name}{verdict}: {fb.text or ''}"))
    return Group(*parts)
