"""The batched generation engine behind `HFLocal`: one thread that owns the model.

Requests from any thread or event loop go into a queue. The engine thread admits them into
the running batch: a new batch waits until no request has arrived for `batch_window_s`; a
running one admits whatever is queued before each decode step (continuous batching, where
the batch layout allows it), up to `max_batch_size` rows. Joining requests are prefilled in
groups of similar length (less padding), their common prefix computed once (`_hf_prefill`).
Then one forward pass per decode step serves every row, each sampled with its own settings
and stopped on its own eos, stop string or token limit. Results go back through each
request's `deliver` callback.

Torch work never runs on an event loop, so loops keep accepting requests while a batch runs.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from hone.core import ModelError

from ._hf_batch import Batch, DynamicBatch, SlabBatch, plain_full_attention
from ._hf_prefill import Prefiller, cache_kwarg
from ._hf_stats import HFStats

if TYPE_CHECKING:
    from ._hf_constrain import RowConstraint

Finish = Literal["eos", "stop", "length"]

# Padded prompt tokens per prefill forward pass: bounds the activation memory of a big group.
PREFILL_TOKENS = 16384
# An idle engine thread ends after this many seconds.
IDLE_EXIT_S = 30.0
# A prompt shorter than this share of its group's longest starts a new prefill group (less padding).
SPLIT_RATIO = 0.85


@dataclass(eq=False)
class GenRequest:
    """One generation: a tokenized prompt and per-row sampling settings."""

    prompt_ids: list[int]
    max_new_tokens: int
    deliver: Callable[[GenResult | BaseException], None]
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    ignore_eos: bool = False
    min_new_tokens: int = 0
    cancelled: Callable[[], bool] = lambda: False
    constraint: RowConstraint | None = None  # the tokens it may generate (constrained tool calls)


@dataclass
class GenResult:
    """What a row generated. `text` is set when a stop string ended it (the text before the stop string)."""

    token_ids: list[int]
    logprobs: list[float]
    finish: Finish
    text: str | None = None


@dataclass(eq=False)
class _Row:
    req: GenRequest
    uniforms: list[float] | None  # the row's random stream (None when greedy)
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    constraint: RowConstraint | None = None  # dropped when its grammar ends or breaks

    @property
    def greedy(self) -> bool:
        return self.uniforms is None

    @property
    def remaining(self) -> int:
        return self.req.max_new_tokens - len(self.tokens)


class Engine:
    """Owns `model` on its own thread; `submit` from anywhere."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_ids: Sequence[int],
        pad_id: int,
        max_batch_size: int,
        batch_window_s: float,
        stats: HFStats,
    ) -> None:
        self.model = model
        # A private copy: a fast tokenizer used by two threads at once can fail with "Already borrowed".
        self.tokenizer = copy.deepcopy(tokenizer)
        self.eos_ids = sorted(set(eos_ids))
        self.pad_id = pad_id
        self.max_batch_size = max_batch_size
        self.batch_window_s = batch_window_s
        self.device = next(model.parameters()).device
        self.stats = stats
        try:
            self.slab, n_layers = plain_full_attention(model.config)
        except Exception:  # an exotic config DynamicCache cannot read: use the model's own cache
            self.slab, n_layers = False, 0
        self._prefiller = Prefiller(model, pad_id, share=self.slab)
        self._cache_kw = cache_kwarg(model)
        self._batch: Batch = self._new_batch(n_layers)
        self._n_layers = n_layers
        self._queue: deque[GenRequest] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._seeds = random.Random()

    def _new_batch(self, n_layers: int) -> Batch:
        if self.slab:
            return SlabBatch(n_layers, self.device, self.max_batch_size)
        return DynamicBatch(self.model.config, self.device, self.max_batch_size)

    # --- the public side (any thread) -------------------------------------------------

    def submit(self, request: GenRequest) -> None:
        """Queue a request; the engine thread starts on first use."""
        with self._cond:
            self._queue.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._closing = False
                self._thread = threading.Thread(target=self._run, name="hone-hf-engine", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread; queued and running requests fail with `ModelError`."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the engine thread --------------------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cond:
                    busy = any(row is not None for row in self._batch.rows)
                    while not self._queue and not busy and not self._closing:
                        if not self._cond.wait(IDLE_EXIT_S) and not self._queue:
                            # Idle: end the thread (the next `submit` starts another), so an engine
                            # nobody closed does not keep a thread, and its model, alive forever.
                            self._thread = None
                            return
                    if self._closing:
                        break
                    if not busy:
                        # A new batch waits until no request has arrived for `batch_window_s`, so that a
                        # burst of concurrent callers (each rendering its prompt first) shares it; the
                        # wait is capped at 10 windows.
                        now = time.monotonic()
                        cap = now + 10 * self.batch_window_s
                        seen, deadline = len(self._queue), now + self.batch_window_s
                        while len(self._queue) < self.max_batch_size and not self._closing:
                            now = time.monotonic()
                            if len(self._queue) > seen:
                                seen, deadline = len(self._queue), min(cap, now + self.batch_window_s)
                            if now >= deadline:
                                break
                            self._cond.wait(deadline - now)
                    joining: list[GenRequest] = []
                    room = self._batch.room()
                    while self._queue and len(joining) < room:
                        joining.append(self._queue.popleft())
                    waiting = bool(self._queue)
                try:
                    joining = [r for r in joining if not r.cancelled()]
                    if joining:
                        self._admit(joining)
                    if any(row is not None for row in self._batch.rows):
                        self._step()
                        self._batch.tidy(waiting)
                except Exception as exc:  # a model failure fails its rows, never the thread
                    error = ModelError(f"local generation failed: {type(exc).__name__}: {exc}")
                    failed = {id(r): r for r in [*joining, *(row.req for row in self._batch.rows if row is not None)]}
                    for req in failed.values():
                        req.deliver(error)
                    self._batch = self._new_batch(self._n_layers)
        closed = ModelError("the local model was closed")
        with self._cond:
            pending = list(self._queue)
            self._queue.clear()
        for req in [*pending, *(row.req for row in self._batch.rows if row is not None)]:
            req.deliver(closed)
        self._batch = self._new_batch(self._n_layers)

    def _new_row(self, req: GenRequest) -> _Row:
        if req.temperature <= 0:
            return _Row(req, None, constraint=req.constraint)
        seed = req.seed if req.seed is not None else self._seeds.getrandbits(63)
        generator = torch.Generator().manual_seed(seed)
        uniforms = torch.rand(req.max_new_tokens, generator=generator, dtype=torch.float64).tolist()
        return _Row(req, uniforms, constraint=req.constraint)

    def _admit(self, requests: list[GenRequest]) -> None:
        """Prefill the joining requests in groups of similar length, then add them to the batch."""
        self.stats.batches += 1
        requests.sort(key=lambda r: len(r.prompt_ids), reverse=True)
        groups: list[list[GenRequest]] = [[]]
        for req in requests:
            group = groups[-1]
            # The dynamic layout holds one prefill group; the slab takes several, each padded little.
            if self.slab and group:
                longest = len(group[0].prompt_ids)
                if len(req.prompt_ids) < SPLIT_RATIO * longest or longest * (len(group) + 1) > PREFILL_TOKENS:
                    groups.append(group := [])
            group.append(req)
        done = []
        for group in groups:
            rows = [self._new_row(req) for req in group]
            done.append((rows, self._prefiller([req.prompt_ids for req in group])))
            self.stats.prefills += 1
        room = max(req.max_new_tokens for req in requests)
        self._batch.reserve(len(requests), len(requests[0].prompt_ids), room, done[0][1].cache)
        for rows, prefilled in done:
            self.stats.prefix_tokens += prefilled.shared * len(rows)
            tokens = self._sample(prefilled.logits, rows)
            self._batch.admit(rows, prefilled.cache, prefilled.mask, prefilled.lengths, tokens)
            self.stats.rows += len(rows)
            self._finish_rows(rows, self._slots_of(rows))
        self.stats.max_rows = max(self.stats.max_rows, sum(row is not None for row in self._batch.rows))

    def _slots_of(self, rows: list[_Row]) -> list[int]:
        index = {id(row): slot for slot, row in enumerate(self._batch.rows) if row is not None}
        return [index[id(row)] for row in rows]

    def _step(self) -> None:
        batch = self._batch
        ids, positions, mask = batch.inputs()
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{self._cache_kw: batch.cache}
        )
        self.stats.steps += 1
        slots = [i for i, row in enumerate(batch.rows) if row is not None]
        logits = out.logits[:, -1, :]
        index: torch.Tensor | None = None
        if len(slots) < len(batch.rows):
            index = torch.tensor(slots, dtype=torch.long, device=self.device)
            logits = logits[index]
        rows = [batch.rows[i] for i in slots]
        tokens = self._sample(logits, rows)
        batch.advance(index, tokens)
        self._finish_rows(rows, slots)

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
        """The next token of each row, appended to the row with its logprob; returns them as a tensor.

        Logprobs are the log-softmax of the raw logits (temperature 1, no top-p, no eos or
        grammar masking): the model's own distribution, which is what policy-gradient training
        needs (its trainer recomputes them with a plain forward pass, never masked).
        A constrained row draws only among the tokens its grammar allows.
        Sampling draws inverse-CDF with the row's own uniform stream, so a seeded row gets the
        same tokens in any batch (given the same logits).
        """
        logits = logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        blocked = [i for i, row in enumerate(rows) if len(row.tokens) < row.req.min_new_tokens]
        constrained = [i for i, row in enumerate(rows) if row.constraint is not None]
        if constrained:
            logits = self._constrain(logits, rows, constrained, blocked)
        elif blocked and self.eos_ids:
            logits = logits.clone()
            rows_at = torch.tensor(blocked, device=logits.device)[:, None]
            logits[rows_at, torch.tensor(self.eos_ids, device=logits.device)[None, :]] = -math.inf
        greedy = logits.argmax(dim=-1)
        chosen = greedy if all(row.greedy for row in rows) else self._draw(logits, rows, greedy)
        picked = logprobs.gather(1, chosen[:, None]).squeeze(1)
        for row, token, logprob in zip(rows, chosen.tolist(), picked.tolist(), strict=True):
            row.tokens.append(token)
            row.logprobs.append(logprob)
            if row.constraint is not None and not row.constraint.advance(token):
                row.constraint = None
        self.stats.tokens += len(rows)
        return chosen

    def _constrain(
        self, logits: torch.Tensor, rows: list[_Row], constrained: list[int], blocked: list[int]
    ) -> torch.Tensor:
        """`logits` with every token its row's grammar forbids at -inf (and eos while `min_new_tokens` holds,
        unless the grammar allows nothing else: then the row may end)."""
        from ._hf_constrain import allowed_tokens

        device = logits.device
        allowed = torch.ones_like(logits, dtype=torch.bool)
        at = torch.tensor(constrained, device=device)
        grammars = [c for i in constrained if (c := rows[i].constraint) is not None]
        allowed[at] = allowed_tokens(grammars, logits.shape[-1], device)
        for row in (rows[i] for i in constrained):
            if row.constraint is not None and row.constraint.failed:
                row.constraint = None
        if blocked and self.eos_ids:
            held = torch.tensor(blocked, device=device)
            was = allowed[held]
            without = was.clone()
            without[:, torch.tensor(self.eos_ids, device=device)] = False
            # A row whose grammar allows only eos keeps it: a finished call beats a broken one.
            allowed[held] = torch.where(without.any(dim=-1, keepdim=True), without, was)
        return logits.masked_fill(~allowed, -math.inf)

    def _draw(self, logits: torch.Tensor, rows: list[_Row], greedy: torch.Tensor) -> torch.Tensor:
        device = logits.device
        temps = torch.tensor([1.0 if row.greedy else row.req.temperature for row in rows], device=device)
        uniforms = [0.0 if row.uniforms is None else row.uniforms[len(row.tokens)] for row in rows]
        u = torch.tensor(uniforms, dtype=torch.float64, device=device)
        probs = torch.softmax(logits / temps[:, None], dim=-1)
        order: torch.Tensor | None = None
        if any(not row.greedy and row.req.top_p < 1.0 for row in rows):
            top_p = torch.tensor([1.0 if row.greedy else row.req.top_p for row in rows], device=device)
            probs, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest prefix whose mass reaches top_p (always at least the top token).
            keep = (probs.cumsum(dim=-1) - probs) < top_p[:, None]
            keep[:, 0] = True
            probs = probs * keep
        cdf = probs.double().cumsum(dim=-1)
        target = (u * cdf[:, -1])[:, None]
        # The first index whose cumulative mass exceeds the target: zero-probability tokens are never picked.
        index = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
        drawn = index if order is None else order.gather(1, index)
        drawn = drawn.squeeze(1)
        greedy_rows = torch.tensor([row.greedy for row in rows], device=device)
        return torch.where(greedy_rows, greedy, drawn)

    def _finish_rows(self, rows: list[_Row], slots: list[int]) -> None:
        for row, slot in zip(rows, slots, strict=True):
            result = self._check(row)
            if result is None and row.req.cancelled():
                self._batch.release(slot)
                continue
            if result is not None:
                self._batch.release(slot)
                row.req.deliver(result)

    def _check(self, row: _Row) -> GenResult | None:
        req, token = row.req, row.tokens[-1]
        if token in self.eos_ids and not req.ignore_eos:
            return GenResult(row.tokens, row.logprobs, "eos")
        if req.stop:
            text = self.tokenizer.decode(row.tokens, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            hits = [i for i in (text.find(s) for s in req.stop if s) if i >= 0]
            if hits:
                return GenResult(row.tokens, row.logprobs, "stop", text=text[: min(hits)])
        if row.remaining <= 0:
            return GenResult(row.tokens, row.logprobs, "length")
        return None
