"""hone.learn.loop: the closed learning loop behind `hone loop` (extra `hone[train]`).

Evaluate on the held-out split, let a `Learner` train a copy of the current model (expert
iteration, DPO or GRPO through TRL, or a plug-in's learner), save it, evaluate again, repeat.
Every iteration's checkpoint, runs and monitors are kept; rerunning the same config resumes
where it stopped.
"""

from ._bfcl import BFCLCheck
from ._config import DEFAULT_LR, METHODS, LoopConfig, Method
from ._learner import LearnContext, Learner, LearnRecord
from ._learners import DPO, GRPO, DPOConfig, ExpertIteration, ExpertIterationConfig, GRPOConfig, LearnerConfig
from ._loop import Loop, loop_id_for, run_loop, start_checkpoint
from ._monitor import kl_to_start, monitors
from ._registry import ENTRY_POINTS, learner_names, learner_spec, register_learner, unregister_learner
from ._report import Interrupted, Iteration, LoopReport, plot_accuracy, render_markdown, write_report

__all__ = [
    "DEFAULT_LR",
    "BFCLCheck",
    "DPO",
    "ENTRY_POINTS",
    "GRPO",
    "METHODS",
    "DPOConfig",
    "ExpertIteration",
    "ExpertIterationConfig",
    "GRPOConfig",
    "Interrupted",
    "Iteration",
    "LearnContext",
    "LearnRecord",
    "Learner",
    "LearnerConfig",
    "Loop",
    "LoopConfig",
    "LoopReport",
    "Method",
    "kl_to_start",
    "learner_names",
    "learner_spec",
    "loop_id_for",
    "monitors",
    "register_learner",
    "unregister_learner",
    "plot_accuracy",
    "render_markdown",
    "run_loop",
    "start_checkpoint",
    "write_report",
]
