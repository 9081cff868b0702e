"""The loop's report, `Iteration` rows in a `LoopReport`, and its files: `report.json`, `report.md` and
`accuracy.png` in the loop's directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._bfcl import BFCLCheck, change, render


@dataclass
class Iteration:
    """One row of the loop's report: the model after `iteration` rounds of learning."""

    iteration: int
    checkpoint: str
    heldout_accuracy: float
    accuracy_by_level: dict[str, float]
    tool_calls_per_task: float
    tool_calls_per_solved_task: float | None
    tokens: int  # tokens the held-out evaluation, collection and training of this iteration used
    seconds: float  # including earlier attempts at it that were interrupted
    eval_run: str
    collect_run: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    monitors: dict[str, float] = field(default_factory=dict)
    tool_calls: int = 0  # every call the held-out evaluation made
    invalid_calls: int = 0  # of those, calls that did not parse, named no offered tool or broke its schema
    invalid_call_share: float | None = None  # invalid_calls / tool_calls; None without calls
    accuracy_by_group: dict[str, float] = field(default_factory=dict)  # pooled over a group's subsets


@dataclass
class Interrupted:
    """An attempt at `iteration` that stopped before it finished (Ctrl-C, an error), and its time."""

    iteration: int
    seconds: float


@dataclass
class LoopReport:
    """Everything `hone loop` reports; `report.json` is `to_dict()`."""

    loop_id: str
    env: str
    model: str
    method: str
    out: Path
    iterations: list[Iteration] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0  # over every invocation of the loop, interrupted ones included
    interrupted: list[Interrupted] = field(default_factory=list)
    bfcl: list[BFCLCheck] = field(default_factory=list)  # the outside check, at iteration 0 and at the end

    def to_dict(self) -> dict[str, Any]:
        return {
            "loop_id": self.loop_id,
            "env": self.env,
            "model": self.model,
            "method": self.method,
            "config": self.config,
            "elapsed_s": self.elapsed_s,
            "interrupted": [asdict(it) for it in self.interrupted],
            "iterations": [asdict(it) for it in self.iterations],
            "bfcl": [asdict(check) for check in self.bfcl],
            "bfcl_change": change(self.bfcl),
        }

    def interrupted_seconds(self, iteration: int) -> float:
        """Time spent on `iteration` by attempts that did not finish it."""
        return sum(it.seconds for it in self.interrupted if it.iteration == iteration)

    @property
    def gain(self) -> float | None:
        """Held-out accuracy of the last iteration minus the start, in points of accuracy (0-1)."""
        if len(self.iterations) < 2:
            return None
        return self.iterations[-1].heldout_accuracy - self.iterations[0].heldout_accuracy


def write_report(report: LoopReport) -> None:
    """Write the three report files into `report.out` (the plot only when matplotlib is installed)."""
    out = report.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    plotted = plot_accuracy(report)
    (out / "report.md").write_text(render_markdown(report, plotted))


def render_markdown(report: LoopReport, plotted: bool = True) -> str:
    """A short markdown report: the per-iteration table, the gain, and what each iteration trained on."""
    its = report.iterations
    pooled = [s for subsets in (report.config.get("groups") or {}).values() for s in subsets]
    found = {lvl for it in its for lvl in it.accuracy_by_level}
    levels = [s for s in pooled if s in found] + sorted(found - set(pooled))  # a group's subsets in its order
    groups = list(dict.fromkeys(g for it in its for g in it.accuracy_by_group))
    heads = [*levels, *groups, "tool calls/task", "calls/solved", "invalid calls"]
    lines = [
        f"# {report.method} on {report.env} with {report.model}",
        "",
        f"Loop `{report.loop_id}`. Held-out accuracy at temperature 0, one sample per task.",
        "",
        "| iteration | held-out | " + " | ".join(heads) + " | tokens | seconds |",
        "|---" * (len(heads) + 4) + "|",
    ]
    for it in its:
        cells = [f"{it.accuracy_by_level.get(lvl, 0.0):.0%}" for lvl in levels]
        cells += [f"{it.accuracy_by_group.get(g, 0.0):.0%}" for g in groups]
        cells += [f"{it.tool_calls_per_task:.2f}"]
        cells += [f"{it.tool_calls_per_solved_task:.2f}" if it.tool_calls_per_solved_task is not None else "-"]
        share = it.invalid_call_share
        cells += [f"{share:.1%} ({it.invalid_calls}/{it.tool_calls})" if share is not None else "-"]
        lines.append(
            f"| {it.iteration} | {it.heldout_accuracy:.1%} | {' | '.join(cells)} | {it.tokens:,} | {it.seconds:.0f} |"
        )
    if report.gain is not None:
        lines += ["", f"Change over the loop: {report.gain * 100:+.1f} points of held-out accuracy."]
    lines += render(report.bfcl)
    lost = sum(it.seconds for it in report.interrupted)
    stopped = f", {lost:.0f}s of it in {len(report.interrupted)} interrupted attempts" if report.interrupted else ""
    lines += ["", f"Time: {report.elapsed_s:.0f}s over every run of this loop{stopped}."]
    for it in its[1:]:
        mon = ", ".join(f"{k} {v}" for k, v in it.monitors.items())
        data = ", ".join(f"{k} {v}" for k, v in it.data.items())
        loss = it.train.get("losses") or []
        curve = f"loss {loss[0][1]:.3f} -> {loss[-1][1]:.3f}" if loss else "no loss logged"
        lines += [
            "",
            f"Iteration {it.iteration}: data {data}; {it.train.get('steps', 0)} steps, {curve}.",
            f"Monitors: {mon}.",
        ]
    if plotted:
        lines += ["", "![held-out accuracy by iteration](accuracy.png)"]
    else:
        lines += ["", "(accuracy.png not drawn: install matplotlib, part of `hone[train]`.)"]
    return "\n".join(lines) + "\n"


def plot_accuracy(report: LoopReport) -> bool:
    """Held-out accuracy by iteration, overall and per difficulty level; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    its = report.iterations
    xs = [it.iteration for it in its]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    levels = sorted({lvl for it in its for lvl in it.accuracy_by_level})
    for lvl in levels:
        ax.plot(
            xs, [it.accuracy_by_level.get(lvl, 0.0) * 100 for it in its], marker=".", linewidth=1, alpha=0.7, label=lvl
        )
    ax.plot(xs, [it.heldout_accuracy * 100 for it in its], marker="o", linewidth=2.5, color="black", label="all")
    ax.set_xlabel("iteration")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(f"{report.method} on {report.env} ({report.model})")
    ax.set_xticks(xs)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(report.out / "accuracy.png")
    plt.close(fig)
    return True
