"""B-STaR iteration monitors: exploration, exploitation, entropy, KL to the start, zero variance."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from hone.core import Trajectory
from hone.learn.data import group_advantages, reward_of
from hone.metrics import pass_at_k


def _groups(trajectories: Sequence[Trajectory]) -> dict[tuple[str, str], list[Trajectory]]:
    groups: dict[tuple[str, str], list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        groups[(t.run_id, t.task_id)].append(t)
    return groups


def monitors(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Per-iteration health of the data a learner is about to train on (B-STaR).

    - `exploration_distinct_correct`: distinct correct final answers per task (more paths to
      a right answer; B-STaR sees it collapse over iterations);
    - `pass_at_1`, `pass_at_k`: unbiased, over each task's samples;
    - `exploitation_discriminability`: the share of tasks whose rewards separate samples
      (some pass, some fail): what a reward can teach;
    - `zero_variance_fraction`: groups whose rewards are all equal (GRPO learns nothing there);
    - `entropy`: mean negative log-probability of the sampled tokens (the policy's entropy
      estimated on its own samples), where token log-probabilities were recorded.
    """
    groups = _groups(trajectories)
    if not groups:
        return {}
    distinct, p1, pk, separating, zero = [], [], [], 0, 0
    k = max(len(g) for g in groups.values())
    for group in groups.values():
        correct = [t for t in group if t.passed]
        distinct.append(len({_trace_key(t) for t in correct}))
        p1.append(pass_at_k(len(group), len(correct), 1))
        pk.append(pass_at_k(len(group), len(correct), min(k, len(group))))
        separating += 0 < len(correct) < len(group)
        rewards = [r for r in (reward_of(t) for t in group) if r is not None]
        zero += len(rewards) < 2 or group_advantages(rewards)[1]
    nll = [-lp for t in trajectories for s in t.steps for lp in (s.call.completion_logprobs or [])]
    n = len(groups)
    out = {
        "tasks": float(n),
        "samples_per_task": k,
        "exploration_distinct_correct": sum(distinct) / n,
        "pass_at_1": sum(p1) / n,
        f"pass_at_{k}": sum(pk) / n,
        "exploitation_discriminability": separating / n,
        "zero_variance_fraction": zero / n,
    }
    if nll:
        out["entropy"] = sum(nll) / len(nll)
    return {key: round(float(v), 4) for key, v in out.items()}


def _trace_key(traj: Trajectory) -> str:
    # Distinct solutions: what the model did (its tool calls) and what it answered.
    calls = [c.arguments_raw or str(c.arguments) for s in traj.steps for c in s.call.message.tool_calls or []]
    return f"{traj.answer}|{'|'.join(calls)}"


def kl_to_start(trajectories: Sequence[Trajectory], start_model: Any, *, limit: int = 64) -> float | None:
    """Estimated KL(policy || start) on the policy's own samples: mean of log p - log p_start per token.

    Uses the sampling log-probabilities stored in the trajectories (the policy's) and one
    forward pass of `start_model` over the same token sequences; `limit` trajectories at most.
    None when no trajectory holds token ids and log-probabilities.
    """
    import torch

    diffs: list[float] = []
    used = 0
    for traj in trajectories:
        if used >= limit:
            break
        calls = [s.call for s in traj.steps]
        if not calls or any(c.prompt_token_ids is None or not c.completion_logprobs for c in calls):
            continue
        used += 1
        for call in calls:
            prompt, out = list(call.prompt_token_ids or []), list(call.completion_token_ids or [])
            ids = torch.tensor([prompt + out])
            with torch.no_grad():
                logits = start_model(ids).logits[0, len(prompt) - 1 : -1].float()
            start_lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(out)[:, None])[:, 0]
            diffs += [a - float(b) for a, b in zip(call.completion_logprobs or [], start_lp.tolist(), strict=False)]
    if not diffs:
        return None
    value = sum(diffs) / len(diffs)
    return round(value, 4) + 0.0 if math.isfinite(value) else None  # + 0.0: no "-0.0" in reports
