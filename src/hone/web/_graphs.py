"""A strategy's search for one task as a graph: nodes are candidate trajectories, edges lead
from parent to child (`Trajectory.parent_ids`), and the candidate the strategy chose is marked.

The layout follows the strategy: MCTS as a tree by depth, evolution by generation (one lane per
island), deliberation by round (one lane per agent, with peer scores and votes on each node).
The result is plain data; the page draws it with cytoscape.js.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hone.core import Trajectory

KINDS = ("mcts", "evolve", "deliberate")


@dataclass
class Graph:
    """Nodes and edges in cytoscape.js's element format, plus what the page says about them."""

    kind: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    chosen: str | None = None
    columns: str = "step"  # what the x axis counts: depth, generation or round
    lanes: list[str] = field(default_factory=list)  # islands or agents, drawn as labelled boxes

    @property
    def layout(self) -> str:
        """cytoscape's layout: a tree for MCTS, fixed columns and lanes for the others."""
        return "breadthfirst" if self.kind == "mcts" else "preset"

    def elements(self) -> list[dict[str, Any]]:
        boxes = [{"data": {"id": f"lane:{lane}", "label": lane}, "classes": "lane"} for lane in self.lanes]
        return (
            boxes
            + [{"data": n["data"], "position": n["position"], "classes": n["classes"]} for n in self.nodes]
            + [{"data": e} for e in self.edges]
        )


def _kind(strategy: str | None) -> str:
    base = (strategy or "").split("[", 1)[0]
    return base if base in KINDS else "other"


def _num(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _peer(t: Trajectory) -> tuple[float | None, float | None]:
    """(mean anonymous peer score, quadratic-vote support) from a deliberation proposal's feedback."""
    for f in t.feedback:
        if f.source == "peer":
            support = (f.evidence or {}).get("support")
            return f.score, float(support) if isinstance(support, int | float) else None
    return None, None


def _column(t: Trajectory, kind: str, depth: dict[str, int]) -> int:
    if kind == "evolve":
        return int(_num(t.meta, "generation") or 0)
    if kind == "deliberate":
        return int(_num(t.meta, "round") or 0)
    return depth[t.id]


def _lane(t: Trajectory, kind: str) -> str:
    if kind == "evolve":
        return f"island {int(_num(t.meta, 'island') or 0)}"
    if kind == "deliberate":
        return str(t.meta.get("agent") or "?")
    return ""


def build(candidates: list[Trajectory], chosen: str | None = None) -> Graph:
    """The graph of one task's candidates (oldest first); `chosen` is the id the strategy picked."""
    kind = _kind(candidates[0].strategy) if candidates else "other"
    ids = {t.id for t in candidates}
    depth: dict[str, int] = {}
    for t in candidates:  # parents come before children in creation order
        parents = [p for p in t.parent_ids if p in ids]
        depth[t.id] = max((depth.get(p, 0) + 1 for p in parents), default=0)
    graph = Graph(kind=kind, chosen=chosen if chosen in ids else None)
    graph.columns = {"mcts": "depth", "evolve": "generation", "deliberate": "round"}.get(kind, "step")
    rows: dict[tuple[int, str], int] = {}
    placed: list[tuple[Trajectory, int, str, int]] = []
    for t in candidates:
        col, lane = _column(t, kind, depth), _lane(t, kind)
        row = rows.get((col, lane), 0)
        rows[(col, lane)] = row + 1
        placed.append((t, col, lane, row))
    # Each lane (island, agent) is as tall as its fullest column, lanes one under another.
    lanes = list(dict.fromkeys(lane for _, _, lane, _ in placed))
    tops: dict[str, int] = {}
    top = 0
    for lane in lanes:
        tops[lane] = top
        top += max(n for (_, ln), n in rows.items() if ln == lane) + 1
    graph.lanes = [lane for lane in lanes if lane]
    for t, col, lane, row in placed:
        score = _num(t.meta, "public_score")
        peer, support = _peer(t) if kind == "deliberate" else (None, None)
        label = [t.op or "attempt"]
        if kind == "mcts" and "visits" in t.meta:
            label.append(f"n={t.meta['visits']} q={t.meta.get('value')}")
        if kind == "deliberate":
            label.append(str(t.meta.get("agent") or ""))
            if support is not None:
                label.append(f"votes {support:+.2f}")
        if score is not None:
            label.append(f"score {score:.2f}")
        classes = [kind, t.status]
        if t.id == graph.chosen:
            classes.append("chosen")
        if t.status == "error":
            classes.append("error")
        graph.nodes.append(
            {
                "data": {
                    "id": t.id,
                    "label": "\n".join(x for x in label if x),
                    "op": t.op,
                    "answer": (t.answer or "")[:200],
                    "public_score": score,
                    "peer_score": peer,
                    "support": support,
                    "lane": lane,
                    "column": col,
                    **({"parent": f"lane:{lane}"} if lane else {}),
                    "meta": {k: v for k, v in t.meta.items() if isinstance(v, str | int | float | bool)},
                },
                "position": {"x": 230 * col, "y": 90 * (tops[lane] + row)},
                "classes": " ".join(classes),
            }
        )
        for p in t.parent_ids:
            if p in ids:
                graph.edges.append({"id": f"{p}->{t.id}", "source": p, "target": t.id})
    return graph


def chosen_id(best: Trajectory | None) -> str | None:
    """The candidate a strategy's stored answer came from (`meta.selected_from`, else its parent)."""
    if best is None:
        return None
    picked = best.meta.get("selected_from")
    if isinstance(picked, str):
        return picked
    return best.parent_ids[0] if best.parent_ids else None
