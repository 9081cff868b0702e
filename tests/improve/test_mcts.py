"""MCTS: UCT choice, backpropagation, progressive widening, rethink, the stored tree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from _improve_helpers import NoisyCalc

from hone.core import Budget, Message, ToolSpec
from hone.envs import make_env
from hone.improve import MCTS, asolve, solve
from hone.improve._mcts import Node, backpropagate, select_child, select_leaf, uct_score
from hone.models import Scripted, call_tool
from hone.store import open_store


def _node(visits: int, value_sum: float, parent: Node) -> Node:
    node = Node(parent=parent, visits=visits, value_sum=value_sum)
    parent.children.append(node)
    return node


def test_uct_prefers_unvisited_then_the_best_bound() -> None:
    root = Node(visits=10)
    exploit = _node(6, 5.4, root)  # q = 0.9
    explore = _node(2, 1.0, root)  # q = 0.5, fewer visits
    assert uct_score(exploit, 10, 1.0) == 0.9 + math.sqrt(math.log(10) / 6)
    # c=0: pure exploitation picks the higher mean; c=2 favours the rarely visited child
    assert select_child(root, 0.0) is exploit
    assert select_child(root, 2.0) is explore
    fresh = _node(0, 0.0, root)
    assert select_child(root, 0.0) is fresh  # an unvisited child is tried first


def test_backpropagation_adds_a_visit_and_the_value_along_the_path() -> None:
    root = Node()
    a = _node(0, 0.0, root)
    b = _node(0, 0.0, a)
    sibling = _node(0, 0.0, root)
    backpropagate(b, 1.0)
    backpropagate(a, 0.25)
    assert (root.visits, root.value_sum) == (2, 1.25)
    assert (a.visits, a.value_sum, a.q) == (2, 1.25, 0.625)
    assert (b.visits, b.value_sum) == (1, 1.0)
    assert (sibling.visits, sibling.value_sum) == (0, 0.0)


def test_select_leaf_widens_then_descends() -> None:
    from hone.core import Trajectory

    root = Node()
    assert select_leaf(root, 1.0, max_depth=3, width=2) is root  # nothing expanded yet
    partial = Trajectory(task_id="t", env="e", model="m", stop_reason="max_steps")
    done = Trajectory(task_id="t", env="e", model="m", answer="1")
    good = Node(traj=partial.model_copy(), parent=root, visits=1, value_sum=1.0)
    bad = Node(traj=partial.model_copy(), parent=root, visits=1, value_sum=0.0)
    root.children += [good, bad]
    root.visits = 2
    # width 2, visits 2: room for 2 * ceil(sqrt 2) = 4 children, so the root widens first
    assert select_leaf(root, 1.0, max_depth=3, width=2) is root
    root.visits = 1
    assert select_leaf(root, 0.0, max_depth=3, width=2) is good
    finished = Node(traj=done, parent=good, visits=1, value_sum=1.0)
    good.children.append(finished)
    good.visits = 3
    assert select_leaf(root, 0.0, max_depth=3, width=1) is good  # its only child is finished: widen it
    # depth cap 1: the children cannot be extended, so only the root can still widen
    assert select_leaf(root, 0.0, max_depth=1, width=1) is root


async def test_rethink_regenerates_a_wrong_step_with_its_execution_feedback() -> None:
    seen: list[list[Message]] = []

    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message | str:
        seen.append(list(messages))
        if messages[-1].role == "tool":
            return f"The answer is {messages[-1].text}."
        if any("Rethink this step" in m.text for m in messages):
            return call_tool("calculator", {"expression": "2 + 3"}, call_id="good")
        return call_tool("calculator", '{"expression": "2 +', call_id="bad")  # broken JSON: a tool error

    env = make_env("arith", levels="1")
    task = env.tasks("test", n=1)[0]
    strategy = MCTS(width=1, iterations=1, value="verifier", instruct=True)
    result = await asolve(strategy, task, env, Scripted(policy), Budget(calls=5))
    root, first, rethought = result.candidates[:3]
    assert root.op == "root" and first.parent_ids == [root.id]
    assert first.status == "error" and first.error is not None and first.error.type == "ToolError"
    assert rethought.op == "rethink"
    assert first.id in rethought.parent_ids and first.meta["replaced_by"] == rethought.id
    # the model saw the failed step and the tool error when it rethought
    note = next(m.text for m in seen[1] if "Rethink this step" in m.text)
    assert "2 +" in note and "failed" in note
    assert rethought.steps[0].call.message.tool_calls[0].id == "good"  # type: ignore[index]
    assert result.info["rethinks"] == 1
    # the rethought node (not the failed one) carries the tree statistics
    assert rethought.meta["visits"] == 1 and "visits" not in first.meta


async def test_rethink_off_keeps_the_wrong_node() -> None:
    model = Scripted(lambda m, t: call_tool("calculator", '{"expression": "2 +'))
    env = make_env("arith", levels="1")
    result = await asolve(
        MCTS(width=1, iterations=1, value="verifier", rethink=False), env.tasks("test", n=1)[0], env, model, "calls=5"
    )
    assert [c.op for c in result.candidates] == ["root", "expand"] and result.info["rethinks"] == 0


async def test_the_whole_tree_is_stored_with_lineage(tmp_path: Path) -> None:
    env = make_env("arith", levels="3")
    task = env.tasks("test", n=1)[0]
    store = open_store(tmp_path / "hone.db")
    result = await asolve(MCTS(width=2), task, env, NoisyCalc(), Budget(calls=16), store=store, run_id="tree")
    stored = {t.id: t for t in store.query(run_id="tree-candidates")}
    assert set(stored) == {c.id for c in result.candidates}
    assert all(store.get(p) is not None for t in stored.values() for p in t.parent_ids)
    (best,) = store.query(run_id="tree")
    assert best.id == result.best.id and best.parent_ids[0] in stored and best.reward is not None
    run = store.get_run("tree")
    assert run is not None and run.kind == "improve" and run.config["strategy"]["name"] == "mcts"
    assert run.parent_id is None and [r.id for r in store.child_runs("tree")] == ["tree-candidates"]
    ids = {c.id for c in result.candidates}
    assert result.ledger.calls <= 16 and len(result.candidates) >= 4
    assert all(set(c.parent_ids) <= ids for c in result.candidates)  # lineage never leaves the tree
    ops = {c.op for c in result.candidates}
    assert {"expand", "rollout"} <= ops
    nodes = [c for c in result.candidates if c.op in ("expand", "rethink") and "visits" in c.meta]
    (root,) = [c for c in result.candidates if not c.parent_ids]  # the root is stored: no orphans
    assert root.op == "root" and root.meta["depth"] == 0 and not root.steps and root.usage.calls == 0
    roots = [c for c in nodes if c.parent_ids[-1] == root.id]
    assert roots and all(c.meta["depth"] == 1 for c in roots)
    assert root.meta["visits"] == sum(c.meta["visits"] for c in roots)
    for c in nodes:  # a node's parent is one step shorter
        for pid in c.parent_ids:
            parent = next(p for p in result.candidates if p.id == pid)
            if parent.op not in ("expand", "root") or c.op != "expand":
                continue
            assert len(parent.steps) + 1 == len(c.steps)
            assert [s.call.message for s in parent.steps] == [s.call.message for s in c.steps[:-1]]
    # visits of the root's children add up to the iterations' backpropagated values
    assert sum(c.meta["visits"] for c in roots) >= result.info["iterations"]
    assert result.best.parent_ids[0] in ids and result.best.strategy == "mcts"
    assert all(c.strategy == "mcts" for c in result.candidates)


async def test_judge_values_partial_nodes_and_spends_the_budget() -> None:
    def policy(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Message | str:
        if "strict grader" in messages[-1].text:
            return "Plausible.\nScore: 10"
        if messages[-1].role == "tool":
            return f"The answer is {messages[-1].text}."
        return call_tool("calculator", {"expression": "2 + 3"})

    env = make_env("arith", levels="1")
    task = env.tasks("test", n=1)[0]
    model = Scripted(policy)
    result = await asolve(MCTS(width=2, iterations=1, value="judge", instruct=True), task, env, model, "calls=10")
    nodes = [c for c in result.candidates if c.op == "expand"]
    assert len(nodes) == 2 and all(c.partial for c in nodes)
    judged = [f for c in nodes for f in c.feedback if f.source == "judge"]
    assert len(judged) == 2 and all(f.score == 1.0 and f.visibility == "public" for f in judged)
    assert all(c.meta["value"] == 1.0 for c in nodes)
    assert result.ledger.calls == model.calls == 4  # two expansions, two judge calls


def test_a_stored_honest_tree_gives_step_pairs_by_public_value(tmp_path: Path) -> None:
    """Without the stored root, depth-1 nodes had no parent and honest nodes no reward: 0 groups."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from hone.cli import app
    from hone.learn.data import step_pairs, step_value

    env = make_env("arith", levels="3")
    db = tmp_path / "hone.db"
    store = open_store(db)
    for i, task in enumerate(env.tasks("test", n=3)):
        strategy = MCTS(width=3, seed=i)
        solve(strategy, task, env, NoisyCalc(wrong=0.3, slip=0.5), Budget(calls=16), store=store, run_id=f"t{i}")
    runs = [f"t{i}-candidates" for i in range(3)]
    cands = {t.id: t for r in runs for t in store.query(run_id=r)}
    hidden = [f for t in cands.values() for f in t.feedback if f.visibility == "hidden"]
    assert not hidden and all(t.reward is None for t in cands.values())  # honest: nothing hidden to pick by
    out = tmp_path / "pairs"
    result = CliRunner().invoke(app, ["data", "pairs", *runs, "--steps", "--store", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.stderr + result.stdout
    rows = pq.read_table(out / "step-pairs.parquet").to_pylist()
    data = step_pairs(list(cands.values()), margin=0.5)
    assert len(rows) == len(data.records) > 0
    for chosen_id, rejected_id in data.records.sources:
        chosen, rejected = cands[chosen_id], cands[rejected_id]
        assert chosen.parent_ids[-1] == rejected.parent_ids[-1]
        value, other = step_value(chosen), step_value(rejected)
        assert value is not None and other is not None and value - other >= 0.5
    depth1 = [cands[c] for c, _ in data.records.sources if cands[cands[c].parent_ids[-1]].op == "root"]
    assert depth1  # the root's children pair up too
