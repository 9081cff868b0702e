"""hone.metrics: confidence intervals, pass@k, harmony, and run summaries."""

from ._stats import harmony, mean_ci, pass_at_k, t_quantile, wilson_interval
from ._summary import NO_SUBSET, SubsetSummary, Summary, natural_key, summarize

__all__ = [
    "NO_SUBSET",
    "SubsetSummary",
    "Summary",
    "harmony",
    "mean_ci",
    "natural_key",
    "pass_at_k",
    "summarize",
    "t_quantile",
    "wilson_interval",
]
