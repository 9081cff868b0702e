"""Prefill for the HF engine: one forward pass over a group of prompts, computing a shared prefix once.

Agent prompts in a batch usually share a long prefix (system prompt, tool list). When every
prompt of a group starts with the same `MIN_SHARED` or more tokens, that prefix is run once
with batch size 1, its keys and values are repeated for every row, and only the suffixes go
through the batched forward pass; the row layout is then `[prefix][padding][suffix]`, the
padding masked out. The last prefix is kept and reused by later groups (single rows too)
that start with it, until the model's parameters change in place (their version counters).
A prefix's keys and values do not depend on what follows it, so outputs are unchanged up
to floating-point noise.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicCache

from ._hf_batch import layer_kv

# Shorter common prefixes are not worth a separate forward pass.
MIN_SHARED = 16


def cache_kwarg(model: Any) -> str:
    """The name `model.forward` takes its key/value cache by: `cache` from transformers 5.25 on
    (`past_key_values` still works there but warns on every call), `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@dataclass
class Prefilled:
    """A prefilled group: last-position logits `[g, V]`, its cache, the `[g, W]` mask (CPU), prompt lengths,
    and how many leading tokens came from a shared prefix."""

    logits: torch.Tensor
    cache: DynamicCache
    mask: torch.Tensor
    lengths: list[int]
    shared: int


@dataclass
class _Prefix:
    tokens: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, batch size 1
    version: tuple[int, int]


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Prefiller:
    """Runs prefill forward passes for `model`; `share` enables prefix sharing (plain caches only)."""

    def __init__(self, model: Any, pad_id: int, *, share: bool) -> None:
        self.model = model
        self.pad_id = pad_id
        self.share = share
        self.device = next(model.parameters()).device
        self.keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.cache_kw = cache_kwarg(model)
        self.prefix: _Prefix | None = None

    def _version(self) -> tuple[int, int]:
        params = list(self.model.parameters())
        return sum(p._version for p in params), params[0].data_ptr()

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor | None, positions: torch.Tensor, cache: Any) -> Any:
        extra = {"logits_to_keep": 1} if self.keep_last else {}
        return self.model(
            input_ids=ids.to(self.device),
            attention_mask=None if mask is None else mask.to(self.device),
            position_ids=positions.to(self.device),
            use_cache=True,
            **{self.cache_kw: cache},
            **extra,
        )

    def _shared(self, prompts: list[list[int]]) -> tuple[int, list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """How many leading tokens all `prompts` share with a computed prefix, and its keys and values."""
        limit = min(len(p) for p in prompts) - 1  # every row keeps a token to produce its logits
        first = prompts[0][:limit]
        common = min([limit, *(_common(first, p) for p in prompts[1:])])
        version = self._version()
        cached = self.prefix if self.prefix is not None and self.prefix.version == version else None
        reuse = _common(cached.tokens, first[:common]) if cached is not None else 0
        if reuse < MIN_SHARED:
            reuse = 0
        if len(prompts) == 1 or common < MIN_SHARED:
            if cached is None or not reuse:
                return 0, None
            return reuse, [(k[:, :, :reuse], v[:, :, :reuse]) for k, v in cached.kv]
        if cached is not None and reuse == common:
            return common, [(k[:, :, :common], v[:, :, :common]) for k, v in cached.kv]
        # Compute the group's prefix at batch size 1, extending the cached one where it matches.
        cache = DynamicCache(config=self.model.config)
        if cached is not None and reuse:
            for i, (k, v) in enumerate(cached.kv):
                cache.update(k[:, :, :reuse], v[:, :, :reuse], i)
        ids = torch.tensor([first[reuse:common]], dtype=torch.long)
        self._forward(ids, None, torch.arange(reuse, common)[None, :], cache)
        kv = [layer_kv(layer) for layer in cache.layers]
        self.prefix = _Prefix(first[:common], kv, version)
        return common, kv

    def __call__(self, prompts: list[list[int]]) -> Prefilled:
        """Prefill `prompts` (left-padded together) and return their logits and cache."""
        lengths = [len(p) for p in prompts]
        shared, kv = self._shared(prompts) if self.share else (0, None)
        suffixes = [p[shared:] for p in prompts]
        rows, width = len(prompts), max(len(s) for s in suffixes)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        real = torch.zeros((rows, width), dtype=torch.long)
        for i, suffix in enumerate(suffixes):
            ids[i, width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            real[i, width - len(suffix) :] = 1
        positions = shared + (real.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((rows, shared), dtype=torch.long), real], dim=1)
        cache = DynamicCache(config=self.model.config)
        if kv is not None:
            for i, (k, v) in enumerate(kv):
                cache.update(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1), i)
        out = self._forward(ids, mask, positions, cache)
        return Prefilled(out.logits[:, -1, :], cache, mask, lengths, shared)
