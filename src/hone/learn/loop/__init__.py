"""hone.learn.loop: the closed learning loop behind `hone loop` (extra `hone[train]`).

Evaluate on the held-out split, collect on the train split with the current model, build
data from the stored trajectories, train a copy through TRL (expert iteration, DPO or
GRPO), evaluate again, repeat. Every iteration's checkpoint, runs and monitors are kept;
rerunning the same config resumes where it stopped.
"""

from ._config import DEFAULT_LR, METHODS, LoopConfig, Method
from ._loop import Loop, loop_id_for, run_loop, start_checkpoint
from ._monitor import kl_to_start, monitors
from ._report import Iteration, LoopReport, plot_accuracy, render_markdown, write_report

__all__ = [
    "DEFAULT_LR",
    "METHODS",
    "Iteration",
    "Loop",
    "LoopConfig",
    "LoopReport",
    "Method",
    "kl_to_start",
    "loop_id_for",
    "monitors",
    "plot_accuracy",
    "render_markdown",
    "run_loop",
    "start_checkpoint",
    "write_report",
]
