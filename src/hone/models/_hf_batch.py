"""The running batch of the HF engine: per-row decode state plus the KV cache rows attend to.

Two layouts, both left-padded (every row's newest token sits in the same column):

`SlabBatch` (models whose cache is plain full attention, e.g. Llama, Qwen, Mistral without a
sliding window) keeps every layer's keys and values in preallocated buffers of shape
`[slots, kv_heads, capacity, head_dim]`. A decode step writes one column in place (no
`torch.cat` of the whole cache per step, which dominated CPU decode time) and attends to
the columns `lo:length+1`. Rows join a running batch (continuous batching): a new group is
prefilled with a standard `DynamicCache`, then its keys and values are copied into free
slots, right-aligned to the write column. Finished rows free their slot at once; the buffers
are compacted when a quarter of the slots are free. Positions are per row, so a row's
keys (rotary embeddings included) do not depend on which column they are stored in, and a
padding column is masked, so padding does not change a row's output.

`DynamicBatch` (anything else: sliding windows, linear attention, KV sharing) runs one
prefill group to completion with the model's own `DynamicCache`; finished rows keep
computing (their output is ignored) until every row is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

# Column capacity is allocated in multiples of this.
_COLUMN_BLOCK = 64


class Batch(Protocol):
    """What the engine needs from a batch layout."""

    rows: list[Any]
    cache: Cache

    def room(self) -> int:
        """How many new rows may join now."""
        ...

    def reserve(self, rows: int, width: int, room: int, like: DynamicCache) -> None:
        """Make room for `rows` new rows of up to `width` columns that may generate `room` tokens."""
        ...

    def admit(
        self,
        rows: Sequence[Any],
        prefill: DynamicCache,
        mask: torch.Tensor,
        lengths: Sequence[int],
        first: torch.Tensor,
    ) -> None:
        """Add prefilled rows: `mask` is the group's left-padded `[g, L]` mask, `first` their first tokens."""
        ...

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input ids `[S, 1]`, position ids `[S, 1]` and the 2D attention mask of the next decode step."""
        ...

    def advance(self, active: torch.Tensor | None, tokens: torch.Tensor) -> None:
        """After a decode step: `tokens` are the next inputs of the rows at slot indices `active` (all if None)."""
        ...

    def release(self, slot: int) -> None:
        """Free a slot whose row finished or was cancelled."""
        ...

    def tidy(self, waiting: bool) -> None:
        """Reclaim freed space between steps (`waiting`: requests are queued and may reuse free slots)."""
        ...


def plain_full_attention(config: Any) -> tuple[bool, int]:
    """Whether `config`'s cache is plain full-attention layers (the slab layout works), and how many."""
    layers = DynamicCache(config=config).layers
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers), len(layers)


def layer_kv(layer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values a `DynamicLayer` holds."""
    keys, values = layer.keys, layer.values
    if keys is None or values is None:
        raise RuntimeError(f"prefill left cache layer {type(layer).__name__} empty")
    return keys, values


def _round_up(n: int) -> int:
    return -(-n // _COLUMN_BLOCK) * _COLUMN_BLOCK


class _SlabLayer(DynamicLayer):  # type: ignore[no-untyped-call]
    """One layer's window onto the slab: writes the step's keys and values at the write column."""

    def __init__(self, slab: SlabBatch, index: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.slab = slab
        self.index = index
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        slab = self.slab
        keys, values = slab.keys[self.index], slab.values[self.index]
        end = slab.length + key_states.shape[-2]
        keys[:, :, slab.length : end] = key_states
        values[:, :, slab.length : end] = value_states
        return keys[:, :, slab.lo : end], values[:, :, slab.lo : end]

    def get_seq_length(self) -> int:
        return self.slab.length - self.slab.lo

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


class SlabBatch:
    """Continuous batching over preallocated KV buffers (see the module docstring)."""

    def __init__(self, n_layers: int, device: torch.device, max_rows: int) -> None:
        self.device = device
        self.max_rows = max_rows
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.rows: list[Any] = []  # one per slot; None when free
        self.starts: list[int] = []  # first column of each slot's row
        self.lo = 0  # first column any active row uses
        self.length = 0  # the next decode step writes this column
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.tok = torch.zeros(0, dtype=torch.long, device=device)
        self.pos = torch.zeros(0, dtype=torch.long, device=device)
        self.alive = torch.zeros(0, dtype=torch.long, device=device)
        self.layers = [_SlabLayer(self, i) for i in range(n_layers)]
        self.cache = Cache(layers=list(self.layers))

    @property
    def capacity(self) -> int:
        return self.mask.shape[1]

    def active(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is not None]

    def room(self) -> int:
        return self.max_rows - len(self.active())

    def _relayout(self, keep: list[int], extra: int, min_width: int, room: int, like: DynamicCache | None) -> None:
        """New buffers holding the rows in slots `keep` (in order) then `extra` empty slots.

        The kept columns `lo:length` move to the left edge; the write column becomes at least
        `min_width` (a joining group's prompt must fit left of it) and `room` columns stay free.
        """
        width = self.length - self.lo if keep else 0
        length = max(width, min_width)
        shift = length - width - self.lo
        slots = len(keep) + extra
        capacity = _round_up(length + room + 1)
        if not keep and self.keys and self.keys[0].shape[0] >= slots and self.capacity >= capacity:
            # An empty batch reuses its buffers: stale keys and values are finite and masked out.
            self.keys = [k[:slots] for k in self.keys]
            self.values = [v[:slots] for v in self.values]
            self.mask = self.mask[:slots].zero_()
            capacity = self.capacity
        else:
            idx = torch.tensor(keep, dtype=torch.long, device=self.device)
            shapes = [(k.shape[1:], v.shape[1:], k.dtype) for k, v in zip(self.keys, self.values, strict=True)]
            if like is not None:  # the first group decides head counts, head dims and dtype
                kvs = [layer_kv(layer) for layer in like.layers]
                shapes = [(k.shape[1:], v.shape[1:], k.dtype) for k, v in kvs]
            keys, values = [], []
            for i, (kshape, vshape, dtype) in enumerate(shapes):
                k = torch.zeros((slots, kshape[0], capacity, kshape[2]), dtype=dtype, device=self.device)
                v = torch.zeros((slots, vshape[0], capacity, vshape[2]), dtype=dtype, device=self.device)
                if keep and width:
                    k[: len(keep), :, length - width : length] = self.keys[i][idx, :, self.lo : self.length]
                    v[: len(keep), :, length - width : length] = self.values[i][idx, :, self.lo : self.length]
                keys.append(k)
                values.append(v)
            mask = torch.zeros((slots, capacity), dtype=torch.long, device=self.device)
            if keep and width:
                mask[: len(keep), length - width : length] = self.mask[idx, self.lo : self.length]
            self.keys, self.values, self.mask = keys, values, mask
        pad = torch.zeros(extra, dtype=torch.long, device=self.device)
        if keep:
            idx = torch.tensor(keep, dtype=torch.long, device=self.device)
            self.tok = torch.cat([self.tok[idx], pad])
            self.pos = torch.cat([self.pos[idx], pad])
            self.alive = torch.cat([self.alive[idx], pad])
        else:
            self.tok, self.pos, self.alive = pad, pad.clone(), pad.clone()
        self.rows = [self.rows[i] for i in keep] + [None] * extra
        self.starts = [self.starts[i] + shift for i in keep] + [length] * extra
        self.length = length
        self._update_lo()

    def _update_lo(self) -> None:
        starts = [self.starts[i] for i in self.active()]
        self.lo = min(starts) if starts else self.length

    def _remaining(self) -> int:
        return max((row.remaining for row in self.rows if row is not None), default=0)

    def reserve(self, rows: int, width: int, room: int, like: DynamicCache) -> None:
        if not self.active():  # an empty batch starts over at the left edge
            self._relayout([], rows, width, room, like if not self.keys else None)
        self._ensure(rows, width, room, like)

    def _ensure(self, rows: int, width: int, room: int, like: DynamicCache) -> None:
        free = sum(row is None for row in self.rows)
        room = max(self._remaining(), room)
        if free < rows or self.length < width or self.length + room >= self.capacity:
            self._relayout(self.active(), rows, width, room, like if not self.keys else None)

    def admit(
        self,
        rows: Sequence[Any],
        prefill: DynamicCache,
        mask: torch.Tensor,
        lengths: Sequence[int],
        first: torch.Tensor,
    ) -> None:
        width = mask.shape[1]
        self._ensure(len(rows), width, max(row.remaining for row in rows), prefill)
        slots = [i for i, row in enumerate(self.rows) if row is None][: len(rows)]
        idx = torch.tensor(slots, dtype=torch.long, device=self.device)
        start = self.length - width
        real = mask.to(self.device, torch.bool)[:, None, :, None]
        for i, layer in enumerate(prefill.layers):
            # Padding columns may hold anything the prefill computed there; store zeros (finite, masked).
            keys, values = layer_kv(layer)
            self.keys[i][idx, :, start : self.length] = torch.where(real, keys, 0).to(self.keys[i].dtype)
            self.values[i][idx, :, start : self.length] = torch.where(real, values, 0).to(self.values[i].dtype)
        self.mask[idx] = 0
        self.mask[idx, start : self.length] = mask.to(self.device, torch.long)
        self.tok[idx] = first
        self.pos[idx] = torch.tensor(list(lengths), dtype=torch.long, device=self.device)
        self.alive[idx] = 1
        # A row starts at its first unmasked column (a shared prefix leaves padding in the middle).
        firsts = mask.argmax(dim=1).tolist()
        for slot, row, first_col in zip(slots, rows, firsts, strict=True):
            self.rows[slot] = row
            self.starts[slot] = start + first_col
        self._update_lo()

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.length + 1 > self.capacity:  # a safety net: admission normally reserves the room
            self._relayout(self.active(), 0, 0, max(self._remaining(), _COLUMN_BLOCK), None)
        # Free slots attend to their own new column too, so no query row is fully masked.
        self.mask[:, self.length] = 1
        return self.tok[:, None], self.pos[:, None], self.mask[:, self.lo : self.length + 1]

    def advance(self, active: torch.Tensor | None, tokens: torch.Tensor) -> None:
        self.length += 1
        if active is None:
            self.tok = tokens
        else:
            self.tok[active] = tokens
        self.pos += self.alive

    def release(self, slot: int) -> None:
        self.rows[slot] = None
        self.mask[slot] = 0
        self.pos[slot] = 0
        self.alive[slot] = 0
        self._update_lo()

    def tidy(self, waiting: bool) -> None:
        active = self.active()
        free = len(self.rows) - len(active)
        if active and not waiting and free and free * 4 >= len(self.rows):
            self._relayout(active, 0, 0, self._remaining(), None)


class DynamicBatch:
    """One prefill group decoded to completion with the model's own cache (any architecture)."""

    def __init__(self, config: Any, device: torch.device, max_rows: int) -> None:
        self.config = config
        self.device = device
        self.max_rows = max_rows
        self.rows: list[Any] = []
        self.cache: Cache = DynamicCache(config=config)
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=device)
        self.tok = torch.zeros(0, dtype=torch.long, device=device)
        self.pos = torch.zeros(0, dtype=torch.long, device=device)
        self.alive = torch.zeros(0, dtype=torch.long, device=device)

    def room(self) -> int:
        return 0 if any(row is not None for row in self.rows) else self.max_rows

    def reserve(self, rows: int, width: int, room: int, like: DynamicCache) -> None:
        return None

    def admit(
        self,
        rows: Sequence[Any],
        prefill: DynamicCache,
        mask: torch.Tensor,
        lengths: Sequence[int],
        first: torch.Tensor,
    ) -> None:
        if any(row is not None for row in self.rows):
            raise RuntimeError("DynamicBatch admits rows only when it is empty")
        self.rows = list(rows)
        self.cache = prefill
        self.mask = mask.to(self.device, torch.long)
        self.tok = first
        self.pos = torch.tensor(list(lengths), dtype=torch.long, device=self.device)
        self.alive = torch.ones(len(rows), dtype=torch.long, device=self.device)

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ones = torch.ones((len(self.rows), 1), dtype=torch.long, device=self.device)
        self.mask = torch.cat([self.mask, ones], dim=1)
        return self.tok[:, None], self.pos[:, None], self.mask

    def advance(self, active: torch.Tensor | None, tokens: torch.Tensor) -> None:
        if active is None:
            self.tok = tokens
        else:
            self.tok[active] = tokens
        self.pos += self.alive

    def release(self, slot: int) -> None:
        self.rows[slot] = None
        self.alive[slot] = 0
        if all(row is None for row in self.rows):
            self.rows = []
            self.cache = DynamicCache(config=self.config)

    def tidy(self, waiting: bool) -> None:
        return None
