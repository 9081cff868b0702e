"""What the loop adds on tool environments: the held-out split, invalid calls, pooled level groups, the reward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hone.core import ConfigError, ToolCall, Trajectory
from hone.envs import Environment
from hone.feedback import RewardFn, make_reward, schema_problem, tool_call_score

HELDOUT = "heldout"


def is_built(env: Environment) -> bool:
    """An environment built from specs (toolgen's kind): its `heldout` split holds scenarios never in train."""
    from hone.envs.build import BuiltEnv

    return isinstance(env, BuiltEnv)


def default_heldout_split(env: Environment) -> str:
    """`heldout` for an environment built from specs that has one (tool sets never seen in training), else `test`.

    Other environments keep `test`: arith's `heldout` is the independent check `benchmarks/loop.py` scores on.
    """
    return HELDOUT if is_built(env) and HELDOUT in env.splits() else "test"


def level_groups(env: Environment, split: str, n: int) -> dict[str, list[str]]:
    """Levels 1-2 against 3 and up (by `task.meta["level"]`) for an environment built from specs, else none."""
    if not is_built(env):
        return {}
    levels: dict[str, int] = {}
    for task in env.tasks(split, n=n, seed=0):
        level = task.meta.get("level")
        if isinstance(level, int) and task.subset is not None:
            levels[task.subset] = level
    if not levels:
        return {}
    top = max(levels.values())
    low = [s for s, lvl in sorted(levels.items(), key=lambda kv: kv[1]) if lvl <= 2]
    high = [s for s, lvl in sorted(levels.items(), key=lambda kv: kv[1]) if lvl > 2]
    groups = {"levels 1-2": low, f"levels 3-{top}" if top > 3 else "level 3": high}
    return {name: subsets for name, subsets in groups.items() if subsets}


def pooled_accuracy(trajectories: Sequence[Trajectory], groups: dict[str, list[str]]) -> dict[str, float]:
    """Accuracy over all trajectories whose subset is in each group (pooled, not a mean of the subsets)."""
    out: dict[str, float] = {}
    for name, subsets in groups.items():
        members = [t for t in trajectories if t.subset in subsets]
        if members:
            out[name] = round(sum(t.passed for t in members) / len(members), 4)
    return out


def _refused(call: ToolCall, offered: dict[str, Any]) -> bool:
    if call.parse_error is not None or call.name not in offered:
        return True
    return schema_problem(call.arguments, offered[call.name]) is not None


def invalid_calls(traj: Trajectory) -> int:
    """Calls of `traj` that do not parse, name a tool not offered or break its tool's schema.

    The grader's count (the hidden `tool_calls` feedback) when the trajectory was graded with one,
    else the same rules applied to the tools the trajectory recorded.
    """
    score = tool_call_score(traj)
    if score is not None:
        return score.invalid
    offered = {t.name: t.parameters for t in traj.tools}
    return sum(_refused(c, offered) for s in traj.steps for c in s.call.message.tool_calls or [])


def tool_stats(trajectories: Sequence[Trajectory], groups: dict[str, list[str]]) -> dict[str, Any]:
    """An iteration's tool-use fields: invalid calls, all calls, their share, pooled accuracy by group."""
    calls = sum(t.tool_call_count for t in trajectories)
    invalid = sum(invalid_calls(t) for t in trajectories)
    return {
        "calls": calls,
        "invalid_calls": invalid,
        "invalid_call_share": round(invalid / calls, 4) if calls else None,
        "accuracy_by_group": pooled_accuracy(trajectories, groups),
    }


def loop_reward(name: str | None) -> RewardFn | None:
    """The registered reward part `name` (None: the environment's own); an unknown name in one line."""
    if name is None:
        return None
    try:
        return make_reward(name)
    except ConfigError as exc:
        raise ConfigError(f"loop: --reward: {exc}") from None
