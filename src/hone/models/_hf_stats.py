"""The counters an `HFLocal` and its engine share (no torch here: `hone.models` imports it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HFStats:
    """Counters of one `HFLocal` (for tests, benchmarks and debugging)."""

    calls: int = 0  # calls that returned a ModelCall
    errors: int = 0  # calls that raised ModelError
    batches: int = 0  # admissions: times the engine took a set of queued requests into its batch
    prefills: int = 0  # prefill forward passes (a large admission is split into several)
    steps: int = 0  # decode forward passes, each for every row in the batch
    rows: int = 0  # requests admitted
    tokens: int = 0  # tokens generated
    prefix_tokens: int = 0  # prompt tokens whose keys and values came from a shared prefix
    max_rows: int = 0  # most rows decoded together
