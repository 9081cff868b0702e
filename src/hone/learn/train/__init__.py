"""hone.learn.train: SFT, DPO and GRPO through TRL on hone data and environments (extra `hone[train]`).

`train_sft` trains on rejection-sampled records (token-exact where trajectories hold token
ids), `train_dpo` on preference pairs, and `train_grpo` online, with hone's multi-turn tool
episodes as the rollouts (tool results masked from the loss; `GenerationPool` generates them on Ray
workers, a bounded number of steps ahead of training). All train the model object
in place and return a `FitReport`. `within_length` leaves out (and counts) conversations whose
assistant tokens pass `max_length`, which TRL would cut without a word.
"""

from ._common import FitReport, TrainArgs, check_trl_fields, within_length
from ._dpo import train_dpo
from ._grpo import HoneRollout, Rollouts, episode_tokens, train_grpo
from ._grpo_pool import GenerationPool
from ._sft import token_rows, train_sft

__all__ = [
    "FitReport",
    "GenerationPool",
    "HoneRollout",
    "Rollouts",
    "TrainArgs",
    "check_trl_fields",
    "episode_tokens",
    "token_rows",
    "train_dpo",
    "train_grpo",
    "train_sft",
    "within_length",
]
