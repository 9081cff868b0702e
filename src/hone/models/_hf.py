"""`HFLocal`: a Hugging Face causal LM served in-process with batched generation (extra `hone[train]`).

This module imports no torch or transformers at import time, so `hone.models` stays
importable without the extra; the engine (`_hf_engine`) is imported on construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from hone.core import (
    ConfigError,
    ContextOverflow,
    Message,
    ModelCall,
    ModelError,
    Sampling,
    ToolSpec,
    Usage,
    duplicate_tool_name,
)

from ._base import request_digest
from ._capabilities import CONFIG_KEY, Capabilities
from ._gguf import GGUFInfo, convert, gguf_file, read_info
from ._hf_stats import HFStats
from ._hf_turns import TurnIds
from ._toolformats import TemplateFormat, ToolFormat, detect_format, tools_rendered

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ._hf_constrain import RowConstraint, ToolConstraint
    from ._hf_engine import Engine, GenResult

TRAIN_HINT = "hf:/micro models need the train extra: pip install 'hone[train]'"

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def require_train_extra() -> None:
    """Raise `ConfigError` with the install hint unless torch and transformers import."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(TRAIN_HINT) from exc


class HFLocal:
    """A `ChatModel` running any Hugging Face causal LM in this process, with batched generation.

    `model` is a local model directory (`config.json`, weights, tokenizer files), a GGUF file
    or a folder holding exactly one (converted once to a cached model folder, weights
    dequantised: `hone.models._gguf`, extra `hone[gguf]`; `gguf` then says what it was), or a
    loaded `PreTrainedModel` (then pass `tokenizer`, unless the model's `name_or_path` is a
    directory holding one). The model is put in eval mode and runs without gradients.

    Prompts are rendered with the tokenizer's chat template in the model's tool format
    (`tool_format`: hermes, llama3_json, mistral or fallback; detected from the template when
    None, docs/tool-formats.md): a template that ignores tools gets hone's fallback format
    (tools in the system prompt), or a `ConfigError` with `strict_tools`. Generated text is
    split into content and tool calls by the same format (malformed calls are kept with
    `parse_error`); every `ModelCall` records the format in `tool_format`.

    Concurrent `generate` calls are batched by one engine thread (torch work never runs on
    the event loop): a new batch waits until no call has arrived for `batch_window_s` (at
    most ten windows), then its rows decode together, up to `max_batch_size`. For plain
    full-attention models (Llama, Qwen, Mistral, ...) the KV cache lives in preallocated
    buffers, calls that arrive meanwhile join the running batch between decode steps
    (continuous batching), and a prompt prefix shared by a group of calls (system prompt,
    tools) is computed once; other architectures decode one group at a time with the
    model's own cache. Each row stops on its own eos (`tokenizer.eos_token_id` and
    `generation_config.eos_token_id`), stop string or token limit. Padding does not change
    a row's output beyond floating-point noise. `stats` counts batches, steps and tokens.

    Sampling: temperature 0 is greedy; otherwise temperature and top-p, drawn from the row's
    own `torch.Generator` seeded with `sampling.seed` (a fresh random seed when None), so a
    seeded call is reproducible whichever calls share its batch, up to the float noise that
    a different batch can put in the logits. `sampling.max_tokens` defaults to
    `max_new_tokens` and is capped so that prompt plus completion fit the context.
    `sampling.extra` may hold `ignore_eos` (generate exactly `max_tokens`) and
    `min_new_tokens` (eos is masked out until then); other keys are ignored.

    `completion_logprobs` are log-softmax of the raw logits at temperature 1 (no top-p, no
    eos masking) for each generated token: the model's own distribution, as RL needs it.
    `completion_token_ids` include the final eos token when one was generated; the message
    text is their decoding without it. When a stop string ends a row, the token ids run to
    the token that completed it and the text stops before it (as in vLLM). A prompt that continues a
    conversation this instance generated starts with that turn's exact prompt and completion ids, so
    multi-turn episodes chain token-exact even where a sampled completion is not the tokenizer's own
    split of its text (`_hf_turns`).

    `device="auto"` is CUDA when available, else CPU; `dtype` defaults to float32 on CPU and
    bfloat16 on CUDA (float32 where bfloat16 is unsupported); "auto" takes the checkpoint's.
    Torch's default intra-op thread count is left alone; on a CPU shared with other busy
    processes `torch.set_num_threads(1)` can be many times faster for small models.
    The shared-prefix cache is dropped when the model's parameters change in place (their
    version counters), so a model trained between calls is not served stale keys.

    `constrained_tools` (extra `hone[constrained]`, llguidance): a request that offers tools
    generates under a grammar, either an answer without call markup or calls naming offered
    tools with arguments valid for their schemas, laid out as the template renders calls
    (`_hf_constrain`; hermes and fallback formats). Logprobs stay the raw model's.
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        device: str = "auto",
        dtype: str | None = None,
        max_batch_size: int = 64,
        batch_window_s: float = 0.005,
        max_new_tokens: int = 256,
        tool_format: str | None = None,
        strict_tools: bool = False,
        constrained_tools: bool = False,
        name: str | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if batch_window_s < 0:
            raise ConfigError(f"batch_window_s must not be negative, got {batch_window_s}")
        require_train_extra()
        if constrained_tools:
            from ._hf_constrain import require_llguidance

            require_llguidance()
        self.max_new_tokens = max_new_tokens
        self.model, self.tokenizer, where = _load(model, tokenizer, device, dtype)
        source = str(getattr(self.model, "name_or_path", "") or "")
        self.gguf: GGUFInfo | None = read_info(Path(source)) if source else None  # where a GGUF's came from
        self.name = name or where
        self.tool_format: ToolFormat = detect_format(self.tokenizer, tool_format, strict=strict_tools, name=self.name)
        if isinstance(self.tool_format, TemplateFormat) and not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"the tokenizer of {where} has no chat template; set tokenizer.chat_template")
        config = self.model.config.get_text_config()
        self.context: int | None = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        self.capabilities = declared_capabilities(self.model.config, self.tokenizer, self.context)
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.eos_ids[0] if self.eos_ids else 0)
        self.constraint: ToolConstraint | None = None
        if constrained_tools:
            from ._hf_constrain import ToolConstraint

            vocab = int(getattr(config, "vocab_size", 0) or len(self.tokenizer))
            self.constraint = ToolConstraint(
                self.tokenizer, self.tool_format, n_vocab=vocab, eos_ids=self.eos_ids, name=self.name
            )
        self.stats = HFStats()
        self.turns = TurnIds()
        from ._hf_engine import Engine

        self.engine: Engine = Engine(
            self.model,
            self.tokenizer,
            eos_ids=self.eos_ids,
            pad_id=self.pad_id,
            max_batch_size=max_batch_size,
            batch_window_s=batch_window_s,
            stats=self.stats,
        )

    def __repr__(self) -> str:
        return f"HFLocal({self.name!r}, device={str(self.engine.device)!r})"

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None) -> str:
        """The prompt text: `messages` and `tools` in the model's tool format, generation prompt added.

        A tool set naming one tool twice is a `ModelError` (a call could not say which it means).
        """
        self._check_names(tools)
        try:
            text = self.tool_format.render(self.tokenizer, messages, tools)
        except Exception as exc:  # jinja errors, templates that raise on unsupported roles
            raise ModelError(f"{self.name}: the chat template failed: {type(exc).__name__}: {exc}") from exc
        self._check_tools(text, tools, messages)
        return text

    def encode(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None) -> list[int]:
        """The prompt token ids (the template already holds any special tokens, so none are added)."""
        if isinstance(self.tool_format, TemplateFormat):
            text = self.render(messages, tools)
            extended = self.turns.encode(messages, text, self._decode_all, self._tokenize)
            return extended if extended is not None else self._tokenize(text)
        self._check_names(tools)
        try:  # a format that encodes to ids itself (Mistral's, through mistral-common)
            ids = self.tool_format.encode(self.tokenizer, messages, tools)
        except Exception as exc:
            raise ModelError(f"{self.name}: encoding the prompt failed: {type(exc).__name__}: {exc}") from exc
        if tools:
            self._check_tools(self.tool_format.decode(self.tokenizer, ids), tools, messages)
        return ids

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _decode_all(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def _check_names(self, tools: Sequence[ToolSpec] | None) -> None:
        twice = duplicate_tool_name(tools or ())
        if twice is not None:
            raise ModelError(f"{self.name}: the tools offered name {twice!r} twice; give every tool a distinct name")

    def _check_tools(self, text: str, tools: Sequence[ToolSpec] | None, messages: Sequence[Message] = ()) -> None:
        missing = tools_rendered(text, tools, messages)
        if missing:  # never let a model run without the tools it was offered
            raise ModelError(
                f"{self.name}: the prompt lacks the offered tools {', '.join(missing)} in the {self.tool_format.name} "
                "tool format; use tool_format=fallback"
            )

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        sampling: Sampling | None = None,
    ) -> ModelCall:
        """Generate the next assistant message (batched with concurrent calls)."""
        start = time.perf_counter()
        sampling = sampling or Sampling()
        try:
            # In a thread: a long prompt takes seconds to tokenize (the tokenizer releases the
            # GIL), and the caller's event loop (hone serve's included) must keep running.
            prompt, constraint = await asyncio.to_thread(self._prepare, messages, tools)
            # Unconstrained calls keep the two-argument form (tests stand in for `_generate_ids`).
            result = await (
                self._generate_ids(prompt, sampling)
                if constraint is None
                else self._generate_ids(prompt, sampling, constraint)
            )
            call = self._to_call(messages, tools, sampling, prompt, result, time.perf_counter() - start)
        except ModelError:
            self.stats.errors += 1
            raise
        self.stats.calls += 1
        return call

    def _prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[int], RowConstraint | None]:
        """The prompt ids and, with `constrained_tools` and tools, the request's grammar (built once per tool set)."""
        prompt = self.encode(messages, tools)
        return prompt, self.constraint.row(tools) if self.constraint is not None else None

    async def aclose(self) -> None:
        """Stop the engine thread (it restarts on the next call); queued calls fail with `ModelError`."""
        await asyncio.to_thread(self.engine.close)

    def close(self) -> None:
        """`aclose` for synchronous code."""
        self.engine.close()

    def _max_new(self, sampling: Sampling, prompt_len: int) -> int:
        wanted = sampling.max_tokens if sampling.max_tokens is not None else self.max_new_tokens
        if wanted < 1:
            raise ModelError(f"{self.name}: max_tokens must be at least 1, got {wanted}")
        if self.context is None:
            return wanted
        if prompt_len + 1 > self.context:  # refused whole: truncating would hide tools or the request
            raise ContextOverflow(self.name, prompt_len, self.context)
        return min(wanted, self.context - prompt_len)

    async def _generate_ids(
        self, prompt: list[int], sampling: Sampling, constraint: RowConstraint | None = None
    ) -> GenResult:
        """Queue one request on the engine and wait for its tokens."""
        from ._hf_engine import GenRequest

        if sampling.temperature < 0:
            raise ModelError(f"{self.name}: temperature must not be negative, got {sampling.temperature}")
        if not 0 < sampling.top_p <= 1:
            raise ModelError(f"{self.name}: top_p must be in (0, 1], got {sampling.top_p}")
        extra = sampling.extra
        loop = asyncio.get_running_loop()
        future: asyncio.Future[GenResult] = loop.create_future()

        def settle(value: GenResult | BaseException) -> None:
            if future.done():
                return
            if isinstance(value, BaseException):
                future.set_exception(value)
            else:
                future.set_result(value)

        def deliver(value: GenResult | BaseException) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody is waiting
                loop.call_soon_threadsafe(settle, value)

        request = GenRequest(
            prompt_ids=prompt,
            max_new_tokens=self._max_new(sampling, len(prompt)),
            deliver=deliver,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
            stop=list(sampling.stop or ()),
            ignore_eos=bool(extra.get("ignore_eos", False)),
            min_new_tokens=int(extra.get("min_new_tokens", 0)),
            cancelled=future.cancelled,
            constraint=constraint,
        )
        self.engine.submit(request)
        return await future

    def _to_call(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        sampling: Sampling,
        prompt: list[int],
        result: GenResult,
        latency: float,
    ) -> ModelCall:
        ids = result.token_ids
        if result.text is not None:
            text = result.text
        else:
            body = ids[:-1] if result.finish == "eos" and ids and ids[-1] in self.eos_ids else ids
            text = self.tool_format.decode(self.tokenizer, body)
        content, calls = self.tool_format.parse(text)
        # A truncated completion says so even when it holds a (possibly cut) tool call.
        finish = "length" if result.finish == "length" else "tool_calls" if calls else "stop"
        message = Message.assistant(content, calls or None)
        if isinstance(self.tool_format, TemplateFormat):
            self.turns.remember(message, [*prompt, *ids])
        return ModelCall(
            model=self.name,
            request_digest=request_digest(self.name, messages, tools, sampling),
            sampling=sampling,
            message=message,
            finish_reason=finish,
            usage=Usage(prompt_tokens=len(prompt), completion_tokens=len(ids)),
            latency_s=latency,
            prompt_token_ids=prompt,
            completion_token_ids=list(ids),
            completion_logprobs=list(result.logprobs),
            tool_format=self.tool_format.name,
        )


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None)
    if isinstance(extra, int):
        ids.append(extra)
    elif isinstance(extra, list | tuple):
        ids.extend(int(i) for i in extra)
    return sorted(set(ids))


def _load(model: Any, tokenizer: Any, device: str, dtype: str | None) -> tuple[Any, Any, str]:
    """The model (eval mode, on its device), its tokenizer, and where they came from."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model, str | Path):
        path = Path(model).expanduser()
        where = str(model)
        gguf = gguf_file(path)
        if gguf is not None:  # converted once, then read from the cache like any model folder
            path, _ = convert(gguf)
        if not (path / "config.json").is_file():
            reason = "no config.json" if path.exists() else "no such directory"
            raise ConfigError(f"{where} is not a Hugging Face model directory or GGUF file ({reason})")
        target = _device(torch, device)
        torch_dtype = _dtype(torch, dtype, target)
        try:
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(path)
            loaded = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        except Exception as exc:  # unknown architecture, missing weights, corrupt files
            raise ConfigError(f"cannot load {where}: {type(exc).__name__}: {_one_line(str(exc))}") from exc
        loaded = loaded.to(target)
    else:
        loaded = model
        where = str(getattr(model, "name_or_path", "") or type(model).__name__)
        if tokenizer is None:
            source = Path(where)
            if not (source / "tokenizer_config.json").is_file():
                raise ConfigError(f"pass tokenizer= with a loaded model ({where} has no tokenizer directory)")
            tokenizer = AutoTokenizer.from_pretrained(source)
        if device != "auto":
            loaded = loaded.to(_device(torch, device))
        if dtype is not None:
            loaded = loaded.to(_dtype(torch, dtype, next(loaded.parameters()).device))
    loaded.eval()
    return loaded, tokenizer, where


def _device(torch: Any, device: str) -> Any:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"bad device {device!r}: {exc}") from None


def _dtype(torch: Any, dtype: str | None, device: Any) -> Any:
    if dtype is None:
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype == "auto":
        return "auto"
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of: auto, {', '.join(sorted(_DTYPES))}")
    return getattr(torch, _DTYPES[dtype])


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def declared_capabilities(config: Any, tokenizer: Any, context: int | None) -> Capabilities:
    """What a checkpoint declares (`hone_capabilities` in its `config.json`, as hone's micro models do),
    else what its chat template shows: tool calling if the template renders `tools`; instructions
    followed (a chat-tuned model's default)."""
    declared = getattr(config, CONFIG_KEY, None)
    if isinstance(declared, dict):
        try:
            return Capabilities.model_validate({"context": context, **declared})
        except ValidationError as exc:
            raise ConfigError(f"{CONFIG_KEY} in the model's config.json: {exc.errors()[0]['msg']}") from None
    template = getattr(tokenizer, "chat_template", None)
    text = template if isinstance(template, str) else str(template or "")
    return Capabilities(tools="tools" in text, context=context)
