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

from ._base import SolveResult, Strategy, StrategyBase, Verifier
from ._best_of_n import BestOfN
from ._compare import Comparison, StrategyReport, acompare, compare
from ._deliberate import Deliberate
from ._evolve import Evolve
from ._guard import HiddenFeedbackError, PublicEnv
from ._mcts import MCTS
from ._prompts import Prompts
from ._refine import Refine
from ._reflexion import Reflexion
from ._registry import Single, make_strategy, strategies
from ._select import SELECTORS
from ._solve import asolve, solve

# What users call; the parts strategies are built from stay in their modules (`hone.improve._select`, ...).
__all__ = [
    "MCTS",
    "SELECTORS",
    "BestOfN",
    "Comparison",
    "Deliberate",
    "Evolve",
    "HiddenFeedbackError",
    "Prompts",
    "PublicEnv",
    "Refine",
    "Reflexion",
    "Single",
    "SolveResult",
    "Strategy",
    "StrategyBase",
    "StrategyReport",
    "Verifier",
    "acompare",
    "asolve",
    "compare",
    "make_strategy",
    "solve",
    "strategies",
]
