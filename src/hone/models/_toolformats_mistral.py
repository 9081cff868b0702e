"""Mistral's `[TOOL_CALLS]` format, encoded by Mistral's own request encoder (`mistral-common`).

Mistral's Hugging Face chat templates do not reproduce what the models were trained on
(docs/tool-formats.md): Mistral-Nemo's drops the system prompt once the conversation has gone
past the last user message, where mistral-common keeps it before that message, and writes a
tool result that is not JSON unquoted. So the prompt ids come from mistral-common itself
(`ChatCompletionRequest` -> `encode_chat_completion`), with the model's own tokenizer files (a
transformers `MistralCommonBackend`, or `tekken.json` / `tokenizer.model.v*` beside the model).
Without them the model's chat template renders the prompt, call ids still Mistral's 9 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hone.core import ConfigError, Message, ToolCall, ToolSpec

from ._toolformat_base import TemplateFormat, openai_messages
from ._toolparse import parse_mistral

_ID = re.compile(r"[A-Za-z0-9]{9}")
_FILES = ("tekken.json", "tokenizer.model.v7", "tokenizer.model.v3", "tokenizer.model.v2", "tokenizer.model.v1")


def mistral_call_id(call_id: str) -> str:
    """`call_id` if it is Mistral's 9 alphanumeric characters, else 9 derived from it (stable, so a call
    and its result keep matching ids)."""
    if _ID.fullmatch(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()
    return digest[:9]


def mistral_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """OpenAI dicts with Mistral call ids; parsed arguments as objects, malformed ones as written."""
    out = openai_messages(messages, dict_arguments=True)
    for entry in out:
        for item in entry.get("tool_calls", ()):
            item["id"] = mistral_call_id(item["id"])
        if entry.get("tool_call_id") is not None:
            entry["tool_call_id"] = mistral_call_id(entry["tool_call_id"])
    return out


class MistralTemplateFormat(TemplateFormat):
    """Mistral's format rendered by the model's chat template (no mistral-common tokenizer at hand)."""

    name = "mistral"

    def __init__(self) -> None:
        super().__init__(dict_arguments=True)

    def prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        return mistral_messages(messages), ([t.to_openai() for t in tools] if tools else None)

    def parse(self, text: str) -> tuple[str | None, list[ToolCall]]:
        return parse_mistral(text)


class MistralFormat:
    """Mistral's format encoded by mistral-common's `MistralTokenizer` (the authoritative encoder)."""

    name = "mistral"

    def __init__(self, mistral: Any) -> None:
        self.mistral = mistral

    def __repr__(self) -> str:
        return f"MistralFormat({type(self.mistral.instruct_tokenizer.tokenizer).__name__})"

    def prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        return mistral_messages(messages), ([t.to_openai() for t in tools] if tools else None)

    def parse(self, text: str) -> tuple[str | None, list[ToolCall]]:
        return parse_mistral(text)

    def request(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> Any:
        """The mistral-common `ChatCompletionRequest` for a conversation."""
        from mistral_common.protocol.instruct.request import ChatCompletionRequest

        conversation, specs = self.prepare(messages, tools)
        return ChatCompletionRequest.from_openai(conversation, specs)

    def encode(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> list[int]:
        return list(self.mistral.encode_chat_completion(self.request(messages, tools)).tokens)

    def render(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> str:
        return self.decode(tokenizer, self.encode(tokenizer, messages, tools))

    def decode(self, tokenizer: Any, ids: Sequence[int]) -> str:
        # Text runs are decoded apart from the control tokens between them: mistral-common's
        # SentencePiece decoder keeps raw pieces (U+2581 for spaces) when asked to keep specials.
        inner = self.mistral.instruct_tokenizer.tokenizer
        parts: list[str] = []
        run: list[int] = []
        for token in ids:
            if inner.is_special(token):
                parts.append(str(inner.decode(run)) if run else "")
                parts.append(str(inner.id_to_piece(token)))
                run = []
            else:
                run.append(token)
        parts.append(str(inner.decode(run)) if run else "")
        return "".join(parts)


def mistral_format(tokenizer: Any, who: str) -> MistralFormat | MistralTemplateFormat:
    """The Mistral format for `tokenizer`: through mistral-common when its tokenizer files are at hand."""
    inner = getattr(tokenizer, "tokenizer", None)
    if type(inner).__name__ == "MistralTokenizer":  # transformers' MistralCommonBackend
        return MistralFormat(inner)
    source = Path(str(getattr(tokenizer, "name_or_path", "") or ""))
    found = next((source / f for f in _FILES if source.name and (source / f).is_file()), None)
    if found is None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"the tokenizer of {who} has no chat template; set tokenizer.chat_template")
        return MistralTemplateFormat()
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"{who}: Mistral tool calls are encoded with Mistral's own encoder: pip install mistral-common "
            "(or declare tool_format=fallback)"
        ) from exc
    mistral = MistralTokenizer.from_file(str(found))
    _check_vocabulary(tokenizer, mistral, who, found.name)
    return MistralFormat(mistral)


def _check_vocabulary(tokenizer: Any, mistral: Any, who: str, file: str) -> None:
    """The Hugging Face tokenizer must decode mistral-common's ids: same special tokens, same size."""
    inner = mistral.instruct_tokenizer.tokenizer
    for token in ("[INST]", "[TOOL_CALLS]"):
        lookup = getattr(inner, "get_special_token", None) or inner.get_control_token
        try:
            expected = lookup(token)
        except Exception:  # a version without this token
            continue
        if tokenizer.convert_tokens_to_ids(token) != expected:
            raise ConfigError(
                f"{who}: its {file} and its Hugging Face tokenizer disagree on {token} "
                f"(id {expected} vs {tokenizer.convert_tokens_to_ids(token)}); use the files of one checkpoint"
            )


def mistral_common_tokenizer(folder: Path) -> Any | None:
    """transformers' `MistralCommonBackend` for a folder holding only Mistral's tokenizer files
    (`tekken.json`, `tokenizer.model.v*`), or None when there are none or mistral-common is missing."""
    if not any((folder / f).is_file() for f in _FILES):
        return None
    try:
        from transformers.tokenization_mistral_common import MistralCommonBackend
    except ImportError:
        return None
    return MistralCommonBackend.from_pretrained(folder)
