"""Grammar-constrained tool calls for `HFLocal` (`constrained_tools=True`, extra `hone[constrained]`).

When a request offers tools, its row decodes under an llguidance grammar built from them: either
an answer (free text without the call markup) or optional text followed by one or more calls,
each `{"name": <an offered tool>, "arguments": <valid for its schema>}` in the model's own call
layout (read from its chat template by rendering two probe calls), separators `", "` and `": "`
and no other whitespace, as the template renders calls; then eos. Objects that do not say
otherwise get no properties beyond their schema's, so a misspelled key cannot be written.

One `ToolConstraint` per model holds the llguidance tokenizer and a grammar cache keyed by the
tool set; each request gets a fresh copy of its tool set's matcher (`RowConstraint`), which the
engine asks for a token mask before sampling and advances after. A tool set whose grammar cannot
be built runs unconstrained, with one warning. llguidance is imported only here, lazily.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hone.core import ConfigError, Message, ToolCall, ToolSpec

from ._toolformat_base import ToolFormat

log = logging.getLogger(__name__)

CONSTRAINED_HINT = "constrained_tools needs llguidance: pip install 'hone[constrained]'"
CONSTRAINED_FORMATS = ("hermes", "fallback")
"""Tool formats whose calls (`<tool_call>{json}</tool_call>`) can be constrained."""
GRAMMAR_CACHE = 512
"""Tool sets whose grammars a model keeps (an RL run over generated tool documents meets many)."""
OPEN, CLOSE = "<tool_call>", "</tool_call>"
# The JSON layout of `json.dumps` and Jinja's `tojson`, which chat templates render calls with.
_JSON_LAYOUT = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False, "lenient": True}

_PROBES = [
    ToolSpec(name=f"hone_probe_{x}", description="hone probe", parameters={"type": "object", "properties": {"x": {}}})
    for x in ("a", "b")
]
_PROBE_CALLS = [
    ToolCall(id=f"c{i}robe0a1", name=t.name, arguments={"x": i}, arguments_raw=json.dumps({"x": i}))
    for i, t in enumerate(_PROBES, 1)
]


def require_llguidance() -> None:
    """Raise `ConfigError` with the install hint unless llguidance imports."""
    try:
        import llguidance  # noqa: F401
    except ImportError as exc:
        raise ConfigError(CONSTRAINED_HINT) from exc


@dataclass(frozen=True)
class CallLayout:
    """Text around each call's JSON: `<tool_call>` + `lead` + JSON + `trail` + `</tool_call>`, calls
    joined by `sep` (micro-tools: all empty; Qwen 2.5: newlines)."""

    lead: str = ""
    trail: str = ""
    sep: str = ""


def call_layout(tool_format: ToolFormat, tokenizer: Any, name: str) -> CallLayout:
    """The call layout `tool_format` renders, read from an assistant turn holding two probe calls.

    `ConfigError` when the format is not one of `CONSTRAINED_FORMATS` or renders calls otherwise.
    """
    if tool_format.name not in CONSTRAINED_FORMATS:
        raise ConfigError(
            f"{name}: constrained_tools supports the {' and '.join(CONSTRAINED_FORMATS)} tool formats, "
            f"not {tool_format.name}"
        )
    turn = [Message.user("hone probe"), Message.assistant(None, _PROBE_CALLS)]
    try:
        text = tool_format.render(tokenizer, turn, _PROBES)
    except Exception as exc:  # a template that refuses the probe
        raise ConfigError(f"{name}: constrained_tools cannot read the call layout: {exc}") from None
    bodies = [json.dumps({"name": c.name, "arguments": c.arguments}) for c in _PROBE_CALLS]
    first, second = (text.find(b) for b in bodies)
    layout = None
    if 0 <= first < second:
        start = text.rfind(OPEN, 0, first)
        between = text[first + len(bodies[0]) : second]
        lead = text[start + len(OPEN) : first] if start >= 0 else None
        if lead is not None and CLOSE in between and between.endswith(OPEN + lead):
            trail, _, rest = between.partition(CLOSE)
            layout = CallLayout(lead, trail, rest[: len(rest) - len(OPEN + lead)])
            after = text[second + len(bodies[1]) :]
            if not after.startswith(trail + CLOSE) or any(s.strip() for s in (lead, trail, layout.sep)):
                layout = None
    if layout is None:
        raise ConfigError(
            f"{name}: constrained_tools needs calls rendered as {OPEN}{{json}}{CLOSE}; its template renders {text!r}"
        )
    return layout


def strict_schema(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that lists properties and says
    nothing about extra ones (a tool schema means its properties; a tiny model misspells keys)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) if k not in ("enum", "const", "default", "examples") else v for k, v in schema.items()}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: strict_schema(v) for k, v in schema["properties"].items()}
        combined = any(k in out for k in ("allOf", "anyOf", "oneOf", "$ref"))
        if "additionalProperties" not in out and "patternProperties" not in out and not combined:
            out["additionalProperties"] = False
    return out


def _rebased(ref: str, i: int) -> str:
    """A local `$ref` of tool `i`'s schema, pointing into the root `$defs` it is hoisted to."""
    pointer = ref[1:]
    for key in ("/$defs/", "/definitions/"):
        if pointer.startswith(key):
            return f"#/$defs/t{i}_{pointer[len(key) :]}"
    return f"#/$defs/t{i}{pointer}"  # `#` itself, or a path inside the tool's schema


def _hoisted(schema: Any, i: int, defs: dict[str, Any]) -> Any:
    """`schema` (tool `i`'s parameters) with its `$defs`/`definitions` moved into `defs` and its local refs
    rebased: the grammar nests each schema under `anyOf`, where `#/$defs/...` would no longer resolve."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) if k not in ("enum", "const", "default", "examples") else v for k, v in node.items()}
        if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#"):
            out["$ref"] = _rebased(out["$ref"], i)
        return out

    body = dict(schema) if isinstance(schema, dict) else schema
    if isinstance(body, dict):
        for key in ("$defs", "definitions"):
            for name, sub in (body.pop(key, None) or {}).items():
                defs[f"t{i}_{name}"] = strict_schema(walk(sub))
    rebased = strict_schema(walk(body))
    defs[f"t{i}"] = rebased
    return rebased


def _literal(text: str) -> str:
    return json.dumps(text)  # a Lark string literal: JSON escapes are Lark escapes


def tool_grammar(tools: Sequence[ToolSpec], layout: CallLayout, tag_ids: tuple[int, int] | None = None) -> str:
    """The Lark grammar of one turn: an answer without call markup, or text then calls (see module doc).

    `tag_ids` are the token ids of `<tool_call>` and `</tool_call>` where the tokenizer has them as
    special tokens (llguidance never matches those to text, so the grammar names them by id).
    """
    defs: dict[str, Any] = {}
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": _hoisted(t.parameters or {"type": "object"}, i, defs),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for i, t in enumerate(tools)
    ]
    body = json.dumps({"x-guidance": _JSON_LAYOUT, "$defs": defs, "anyOf": calls}, ensure_ascii=False)
    if tag_ids is None:  # the tags are text: everything up to the first `<tool_call>` is the answer part
        opening, close = "head", _literal(CLOSE)
        head = f"head[lazy]: /(?s:.*){OPEN}/"
        reopen = _literal(OPEN)
    else:
        opening, close = f"ANSWER? <[{tag_ids[0]}]>", f"<[{tag_ids[1]}]>"
        head, reopen = "", f"<[{tag_ids[0]}]>"
    lead, trail, sep = (_literal(s) for s in (layout.lead, layout.trail, layout.sep))
    return "\n".join(
        [
            "%llguidance {}",
            f"start: ANSWER | {opening} {lead} body {trail} {close} ({sep} {reopen} {lead} body {trail} {close})*",
            f"ANSWER: /(?s:.+)/ & ~/(?s:.*){OPEN}(?s:.*)/",
            head,
            f"body: %json {body}",
        ]
    )


class RowConstraint:
    """One request's grammar state: the token mask before each step, advanced by the sampled token."""

    def __init__(self, matcher: Any, label: str) -> None:
        self.matcher = matcher
        self.label = label
        self.failed = False  # set when no mask could be computed: the row goes on unconstrained

    def fill(self, bitmask: torch.Tensor, index: int) -> None:
        """Write the allowed tokens (llguidance's packed bitmask) into row `index` of `bitmask`."""
        from llguidance.torch import fill_next_token_bitmask

        try:
            fill_next_token_bitmask(self.matcher, bitmask, index)
        except Exception as exc:  # API misuse (a mask size the tokenizer disagrees with): never fail the batch
            self.fail(f"{type(exc).__name__}: {exc}")

    def fail(self, why: str) -> None:
        """Give up on this row's grammar (logged); the engine drops it."""
        log.warning("constrained tool calls: no mask for %s (%s); unconstrained from here", self.label, why)
        self.failed = True

    def advance(self, token: int) -> bool:
        """Consume `token`; False once the grammar is done (eos) or broken (the row goes on unconstrained)."""
        ok = bool(self.matcher.consume_token(token))
        if not ok or self.matcher.is_error():
            log.warning("constrained tool calls: %s left its grammar (%s); unconstrained from here", self.label, token)
            return False
        return not self.matcher.is_stopped()


class ToolConstraint:
    """Builds `RowConstraint`s for one model: its llguidance tokenizer, call layout and grammar cache."""

    def __init__(self, tokenizer: Any, tool_format: ToolFormat, *, n_vocab: int, eos_ids: Sequence[int], name: str):
        require_llguidance()
        import llguidance.hf

        self.name = name
        self.layout = call_layout(tool_format, tokenizer, name)
        try:
            self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=n_vocab, eos_token=list(eos_ids))
        except Exception as exc:  # slow tokenizers, vocabularies larger than the model's
            raise ConfigError(f"{name}: constrained_tools cannot read the tokenizer: {exc}") from None
        # A tag that is one token llguidance holds special (never matched to text) is named by id.
        # (Encoded, not looked up: a tokenizer without the token looks it up as its unknown token.)
        ids = [tokenizer(tag, add_special_tokens=False)["input_ids"] for tag in (OPEN, CLOSE)]
        special = all(len(i) == 1 and 0 <= i[0] < n_vocab and self.tokenizer.is_special_token(i[0]) for i in ids)
        self.tag_ids: tuple[int, int] | None = (ids[0][0], ids[1][0]) if special else None
        # tool-set key -> a fresh matcher to copy, or None (unconstrained); least recently used dropped first
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def row(self, tools: Sequence[ToolSpec] | None) -> RowConstraint | None:
        """A constraint for one request offering `tools` (None without tools, or when its grammar fails)."""
        if not tools:
            return None
        # Names and schemas as given (property order is the order calls are written in).
        key = json.dumps([[t.name, t.parameters] for t in tools])
        with self._lock:  # built under the lock: concurrent requests for a new tool set build it once
            if key not in self._cache:
                self._cache[key] = self._build(tools)
                if len(self._cache) > GRAMMAR_CACHE:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            template = self._cache[key]
            matcher = template.deep_copy() if template is not None else None  # one thread at a time on it
        if matcher is None:
            return None
        return RowConstraint(matcher, f"a call offering {', '.join(t.name for t in tools)}")

    def _build(self, tools: Sequence[ToolSpec]) -> Any:
        import llguidance

        try:
            grammar = llguidance.LLMatcher.grammar_from_lark(tool_grammar(tools, self.layout, self.tag_ids))
            matcher = llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)
            error = matcher.get_error() if matcher.is_error() else ""
        except Exception as exc:  # a schema the JSON compiler rejects outright
            matcher, error = None, f"{type(exc).__name__}: {exc}"
        if error:
            names = ", ".join(t.name for t in tools)
            reason = " ".join(error.split())[:300]
            log.warning("%s: no grammar for the tools %s (%s); they run unconstrained", self.name, names, reason)
            return None
        return matcher


_SHIFTS: dict[torch.device, torch.Tensor] = {}
_EXECUTOR: list[Any] = []  # llguidance's thread pool, made on first use
PARALLEL_ROWS = 8
"""From this many constrained rows on, their masks are computed on llguidance's threads."""


def _fill_parallel(constraints: Sequence[RowConstraint], bitmask: torch.Tensor) -> bool:
    """Fill every row's mask at once on llguidance's threads; False if too few rows or it failed (then
    row by row, which finds the row at fault)."""
    if len(constraints) < PARALLEL_ROWS:
        return False
    import llguidance
    from llguidance.torch import fill_next_token_bitmask_par

    if not _EXECUTOR:
        _EXECUTOR.append(llguidance.LLExecutor())
    try:
        fill_next_token_bitmask_par(_EXECUTOR[0], [(c.matcher, i) for i, c in enumerate(constraints)], bitmask)
    except Exception:
        return False
    return True


def allowed_tokens(constraints: Sequence[RowConstraint], vocab: int, device: torch.device) -> torch.Tensor:
    """A (rows, vocab) bool tensor on `device`: the tokens each row's grammar allows next.

    A row whose mask fails, or allows nothing, allows everything and is marked `failed`.
    """
    words = (vocab + 31) // 32
    bitmask = torch.zeros((len(constraints), words), dtype=torch.int32)
    if not _fill_parallel(constraints, bitmask):
        for i, constraint in enumerate(constraints):
            constraint.fill(bitmask, i)
    empty = (~bitmask.any(dim=1)).tolist()
    for i, constraint in enumerate(constraints):
        if empty[i] and not constraint.failed:
            constraint.fail("its grammar allows no token")
        if constraint.failed:
            bitmask[i] = -1
    shifts = _SHIFTS.get(device)
    if shifts is None:
        shifts = _SHIFTS[device] = torch.arange(32, dtype=torch.int32, device=device)
    bits = (bitmask.to(device)[:, :, None] >> shifts) & 1
    return bits.view(len(constraints), words * 32)[:, :vocab].bool()
