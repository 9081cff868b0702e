"""hone.improve: test-time improvement under one `Strategy` protocol and one budget Ledger.

    from hone.improve import MCTS, compare, solve

    result = solve(MCTS(width=2), task, env, model, budget="calls=16")
    result.best.passed, result.ledger.calls, len(result.candidates)

    cmp = compare(["mcts", "refine"], env, model, budget="calls=16", n=100)  # + best_of_n
    for row in cmp.rows(): print(row)

Strategies see only public feedback (the environment they get refuses hidden grading);
the hidden grader scores the chosen best only; `oracle=True` is an explicitly labelled
upper bound. Every candidate is a Trajectory with `strategy` and `parent_ids` lineage.
"""

from ._base import ORACLE_TAG, SolveResult, Strategy, StrategyBase, Verifier
from ._best_of_n import BestOfN
from ._compare import Comparison, StrategyReport, acompare, base_sampling, compare, fair_baseline, paired_ci
from ._defaults import JUDGE_SHARE, MICRO_TEMPERATURE, default_sampling, guess_instruct, is_micro, judge_reserve
from ._deliberate import Deliberate, parse_ballot
from ._evolve import OPERATORS, Evolve, survivors
from ._guard import HiddenFeedbackError, PublicEnv
from ._mcts import MCTS, Node, backpropagate, select_child, select_leaf, uct_score
from ._nsed import Broker, Slot, approx_tokens, conviction, forget_gate, knapsack, quadratic_vote
from ._prompts import PROMPT_NAMES, Prompts
from ._refine import Refine, temperature_schedule
from ._reflexion import Memory, Reflexion
from ._registry import BASELINE, Single, make_strategy, strategies, strategy_config
from ._search import Metered, Search
from ._select import SELECTORS, answer_groups, best_by_score, majority_vote, normalize_answer, select
from ._solve import asolve, solve
from ._verify import execution_errors, feedback_text, grounded, public_score, step_ok

__all__ = [
    "BASELINE",
    "JUDGE_SHARE",
    "MICRO_TEMPERATURE",
    "MCTS",
    "OPERATORS",
    "ORACLE_TAG",
    "PROMPT_NAMES",
    "SELECTORS",
    "BestOfN",
    "Broker",
    "Comparison",
    "Deliberate",
    "Evolve",
    "HiddenFeedbackError",
    "Memory",
    "Metered",
    "Node",
    "Prompts",
    "PublicEnv",
    "Refine",
    "Reflexion",
    "Search",
    "Single",
    "Slot",
    "SolveResult",
    "Strategy",
    "StrategyBase",
    "StrategyReport",
    "Verifier",
    "acompare",
    "answer_groups",
    "approx_tokens",
    "asolve",
    "backpropagate",
    "base_sampling",
    "best_by_score",
    "compare",
    "conviction",
    "default_sampling",
    "execution_errors",
    "fair_baseline",
    "feedback_text",
    "forget_gate",
    "grounded",
    "guess_instruct",
    "is_micro",
    "judge_reserve",
    "knapsack",
    "majority_vote",
    "make_strategy",
    "normalize_answer",
    "paired_ci",
    "parse_ballot",
    "public_score",
    "quadratic_vote",
    "select",
    "select_child",
    "select_leaf",
    "solve",
    "step_ok",
    "strategies",
    "strategy_config",
    "survivors",
    "temperature_schedule",
    "uct_score",
]
