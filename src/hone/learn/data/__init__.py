"""hone.learn.data: datasets for learning, built from stored trajectories.

SFT by rejection sampling (conversational and token-exact records), multi-turn and
step-level preference pairs, KTO labels, GRPO groups with group-relative advantages, and
the tokenization-consistency check. Records follow TRL's dataset formats and export as a
`datasets.Dataset` (extra `train`) or Parquet (extra `parquet`); importing this package
needs neither.
"""

from ._grpo import GroupStats, GRPOData, group_advantages, grpo_groups
from ._prefs import PairData, PairStats, kto_data, preference_pairs, step_pairs, step_value
from ._records import MESSAGE_COLUMNS, RecordFormat, Records, arrow_row
from ._sft import SFTData, SFTStats, conversation_record, sft_data
from ._source import Source, continuation, dedup_key, is_success, load_trajectories, reward_of
from ._tokens import (
    MASK_COLUMN,
    MismatchKind,
    TokenizationReport,
    TokenMismatch,
    chain_mismatches,
    check_tokenization,
    has_token_ids,
    render_ids,
    token_record,
)

__all__ = [
    "MASK_COLUMN",
    "MESSAGE_COLUMNS",
    "GRPOData",
    "GroupStats",
    "MismatchKind",
    "PairData",
    "PairStats",
    "RecordFormat",
    "Records",
    "SFTData",
    "SFTStats",
    "Source",
    "TokenMismatch",
    "TokenizationReport",
    "arrow_row",
    "chain_mismatches",
    "check_tokenization",
    "continuation",
    "conversation_record",
    "dedup_key",
    "group_advantages",
    "grpo_groups",
    "has_token_ids",
    "is_success",
    "kto_data",
    "load_trajectories",
    "preference_pairs",
    "render_ids",
    "reward_of",
    "sft_data",
    "step_pairs",
    "step_value",
    "token_record",
]
