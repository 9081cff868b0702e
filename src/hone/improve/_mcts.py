"""`mcts`: UCT search over partial trajectories, with RethinkMCTS's "rethink".

A node is a prefix of steps (a partial trajectory; the root is the empty prefix, kept as
a candidate with no steps and `op` "root", so every depth-1 node has a parent). Each
iteration selects a leaf by UCT, expands it with `width` sampled one-step continuations,
values each new child (public verifier, a judge, or a rollout to the end), and backs the
value up the path. When a child's value shows its step was wrong (below `rethink_below`:
a tool error, no answer, a failed rollout), the child is regenerated once with that
execution feedback in context (RethinkMCTS) instead of only being valued low: the old node
stays a candidate, the new one takes its place and lists it as a parent. Every node and
rollout is a candidate whose `parent_ids` point to its tree parent, so the whole tree is
stored; each node's `meta` holds `depth`, `visits` and `value` (its mean backed-up value:
public scores in an honest run, what `hone data pairs --steps` compares siblings by).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Literal

from hone.core import Budget, BudgetExceeded, Message, Task, Trajectory
from hone.envs import Environment
from hone.feedback import PointwiseJudge
from hone.models import ChatModel

from ._base import Count, NonNegative, Share, SolveResult, StrategyBase
from ._defaults import JUDGE_SHARE
from ._search import Search
from ._select import SelectorName, question_text, select, solution_text
from ._verify import feedback_text, step_ok

ValueMode = Literal["verifier", "judge", "rollout"]


@dataclass(eq=False)
class Node:
    """A search-tree node: a partial trajectory (None at the root) and its statistics."""

    traj: Trajectory | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    value_sum: float = 0.0
    rethinks: int = 0

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    @property
    def terminal(self) -> bool:
        """Finished (answered, failed or truncated): it cannot be extended."""
        return self.traj is not None and not self.traj.partial

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


def uct_score(node: Node, parent_visits: int, c: float) -> float:
    """UCT: mean value plus `c * sqrt(ln N_parent / N_child)`; unvisited children come first."""
    if node.visits == 0:
        return math.inf
    return node.q + c * math.sqrt(math.log(max(1, parent_visits)) / node.visits)


def select_child(node: Node, c: float, usable: list[Node] | None = None) -> Node:
    """The child with the highest UCT score (the first among equals)."""
    pool = usable if usable is not None else node.children
    return max(pool, key=lambda ch: uct_score(ch, node.visits, c))


def backpropagate(node: Node, value: float) -> None:
    """Add one visit and `value` to `node` and every ancestor."""
    current: Node | None = node
    while current is not None:
        current.visits += 1
        current.value_sum += value
        current = current.parent


def expandable(node: Node, max_depth: int) -> bool:
    """Whether `node` may get (more) children: unfinished and above the depth cap."""
    return not node.terminal and node.depth < max_depth


def exhausted(node: Node, max_depth: int) -> bool:
    """Nothing left to expand at or below `node`."""
    return not expandable(node, max_depth) and all(exhausted(ch, max_depth) for ch in node.children)


def select_leaf(root: Node, c: float, max_depth: int, width: int = 2, widen: float = 0.5) -> Node | None:
    """The node to expand next: descend by UCT while the current node is wide enough.

    Progressive widening: a node may hold `width * ceil(visits ** widen)` children, so a
    promising node gets more continuations as its visits grow; a node whose subtrees are
    all finished is widened too. None when nothing anywhere can be expanded.
    """
    node = root
    while True:
        usable = [ch for ch in node.children if not exhausted(ch, max_depth)]
        room = len(node.children) < width * math.ceil(max(1, node.visits) ** widen)
        if expandable(node, max_depth) and (room or not usable):
            return node
        if not usable:
            return None
        node = select_child(node, c, usable)


def walk(root: Node) -> list[Node]:
    out, todo = [], list(root.children)
    while todo:
        node = todo.pop(0)
        out.append(node)
        todo.extend(node.children)
    return out


@dataclass(kw_only=True)
class MCTS(StrategyBase):
    """UCT over step prefixes; see the module docstring.

    `c` is the exploration constant, `width` the continuations sampled per expansion,
    `widen` the progressive-widening exponent (see `select_leaf`),
    `depth` the most steps on a path (default: `limits.max_turns`), `iterations` the cap on
    select-expand-evaluate rounds (default: until the budget is spent, or 8 without one).
    `value` picks how a new child is valued: "rollout" (run it to the end; the rollout's
    public score), "verifier" (public signals of the partial trajectory) or "judge" (an LLM
    rubric score; falls back to the verifier for models that cannot follow instructions).
    `rethink` regenerates a child whose value is below `rethink_below`, at most once.
    The answer is chosen among finished nodes and rollouts by `select` (a judge selector gets
    `judge_share` of the budget held back for it, see `judge_reserve`).
    """

    c: NonNegative = 1.0
    width: Count = 2
    widen: NonNegative = 0.5
    depth: Count | None = None
    iterations: Count | None = None
    value: ValueMode = "rollout"
    rethink: bool = True
    rethink_below: Share = 0.5
    select: SelectorName = "score"
    judge_share: Share = JUDGE_SHARE

    name = "mcts"

    async def _value(self, search: Search, child: Node, finals: list[Trajectory]) -> tuple[float, Trajectory]:
        """The child's value and the trajectory whose feedback explains it."""
        traj = child.traj
        assert traj is not None
        if child.terminal:
            return await search.score(traj), traj
        if self.value == "rollout":
            try:
                rollout = await search.attempt(prefix=traj, parents=[traj.id], op="rollout")
            except BudgetExceeded:
                rollout = None
            if rollout is not None:
                finals.append(rollout)
                return await search.score(rollout), rollout
        if self.value == "judge" and search.instruct and search.can_call():
            try:
                fb = await PointwiseJudge(search.metered).score(question_text(traj), solution_text(traj))
            except BudgetExceeded:
                fb = None
            if fb is not None and fb.score is not None:
                traj.feedback.append(fb)
                return fb.score, traj
        return step_ok(traj), traj

    async def _rethink(self, search: Search, child: Node, evidence: Trajectory) -> bool:
        """Regenerate `child`'s step with the execution feedback in context; True if replaced."""
        old = child.traj
        parent = child.parent
        assert old is not None and parent is not None
        step = "(none)" if not old.steps else solution_text(old.model_copy(update={"steps": old.steps[-1:]}), limit=300)
        feedback = feedback_text(evidence)
        if search.instruct:
            note = self.prompts.render("rethink", step=step, feedback=feedback)
        else:
            note = self.prompts.render("rethink_short", step=old.answer or feedback)
        parents = [p for p in (parent.traj.id if parent.traj else None, old.id) if p]
        new = await search.attempt(
            prefix=parent.traj, context=[Message.user(note)], parents=parents, max_steps=1, op="rethink"
        )
        if new is None:
            return False
        old.meta["replaced_by"] = new.id
        child.traj = new
        child.rethinks += 1
        return True

    async def _grow(self, search: Search, child: Node, finals: list[Trajectory]) -> float:
        value, evidence = await self._value(search, child, finals)
        wrong = self.rethink and child.rethinks == 0 and value < self.rethink_below
        if wrong and search.can_call() and await self._rethink(search, child, evidence):
            value, _ = await self._value(search, child, finals)
        return value

    async def solve(self, task: Task, env: Environment, model: ChatModel, budget: Budget) -> SolveResult:
        search = Search(self, task, env, model, budget)
        max_depth = self.depth or self.limits.max_turns
        cap = self.iterations if self.iterations is not None else (None if search.bounded() else 8)
        root = Node(traj=await search.start(depth=0) if search.can_call() else None)
        finals: list[Trajectory] = []
        done = 0
        while (cap is None or done < cap) and search.can_call():
            leaf = select_leaf(root, self.c, max_depth, self.width, self.widen)
            if leaf is None:
                break
            done += 1
            made = await search.attempts(
                self.width,
                prefix=leaf.traj,
                parents=[leaf.traj.id] if leaf.traj else [],
                max_steps=1,
                op="expand",
                meta={"depth": leaf.depth + 1},
            )
            if not made:
                break
            children = [Node(traj=t, parent=leaf) for t in made]
            leaf.children.extend(children)
            values = await asyncio.gather(*(self._grow(search, ch, finals) for ch in children))
            for child, value in zip(children, values, strict=True):
                backpropagate(child, value)
        nodes = walk(root)
        for node in [root, *nodes]:
            if node.traj is not None:
                node.traj.meta |= {"depth": node.depth, "visits": node.visits, "value": round(node.q, 4)}
        pool = [n.traj for n in nodes if n.terminal and n.traj is not None] + finals
        best = await select(search, pool, self.select)
        rethinks = sum(n.rethinks for n in nodes)
        return search.finish(best, iterations=done, nodes=len(nodes), rethinks=rethinks)
