"""The tool formats rendered by a chat template: the `ToolFormat` protocol, Hermes/Qwen, Llama 3.x JSON
and hone's fallback (docs/tool-formats.md). `_toolformats` picks one per tokenizer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from hone.core import Message, ToolCall, ToolSpec

from ._toolparse import PARSERS

FORMAT_NAMES = ("hermes", "llama3_json", "mistral", "fallback")
"""The tool formats hone renders and parses (`tool_format=` on `hf:` models)."""

FALLBACK_MARKERS = ("<tools>", "</tools>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
"""The tags of the fallback format: a tokenizer with a special token holding one cannot use it."""


class ToolFormat(Protocol):
    """One model family's tool convention: rendering tools, calls and results, and parsing calls."""

    name: str

    def prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """The conversation and tools to hand to the tokenizer's chat template."""
        ...

    def parse(self, text: str) -> tuple[str | None, list[ToolCall]]:
        """Generated text -> content and tool calls (malformed calls kept raw with `parse_error`)."""
        ...

    def render(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> str:
        """The prompt text, generation prompt included."""
        ...

    def encode(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> list[int]:
        """The prompt token ids, generation prompt included."""
        ...

    def decode(self, tokenizer: Any, ids: Sequence[int]) -> str:
        """Generated ids as text, special tokens kept (what `parse` reads)."""
        ...


RAW_CALL_KEY = "hone_raw_call"
"""Set on a template call's `function` when the model wrote a malformed call object: the whole object as
written, so a template that knows the key (micro-tools') renders it back exactly (the next prompt then
extends the tokens the model generated) instead of wrapping it in a new `{"name": ..., "arguments": ...}`."""


def raw_call_body(call: ToolCall) -> str | None:
    """The whole call object exactly as the model wrote it, when it did not parse (else None)."""
    raw = call.arguments_raw
    return raw if call.parse_error is not None and raw is not None and '"name"' in raw else None


def openai_messages(messages: Sequence[Message], *, dict_arguments: bool) -> list[dict[str, Any]]:
    """Messages as OpenAI dicts for a chat template; `dict_arguments` for templates that JSON-encode
    the arguments themselves (`| tojson`), which would quote a string: parsed calls get their object.
    A malformed call object also carries itself under `RAW_CALL_KEY`."""
    out = [m.to_openai(object_arguments=True) for m in messages]
    for message, entry in zip(messages, out, strict=True):
        for call, item in zip(message.tool_calls or (), entry.get("tool_calls", ()), strict=True):
            body = raw_call_body(call)
            if body is not None:
                item["function"][RAW_CALL_KEY] = body
    if dict_arguments:
        for message, entry in zip(messages, out, strict=True):
            for call, item in zip(message.tool_calls or (), entry.get("tool_calls", ()), strict=True):
                if call.parse_error is None:
                    item["function"]["arguments"] = dict(call.arguments)
    return out


class TemplateFormat:
    """A format the chat template renders natively: hone's messages pass through as OpenAI dicts."""

    name = "hermes"

    def __init__(self, *, dict_arguments: bool = False) -> None:
        self.dict_arguments = dict_arguments

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dict_arguments={self.dict_arguments})"

    def prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        specs = [t.to_openai() for t in tools] if tools else None
        return openai_messages(messages, dict_arguments=self.dict_arguments), specs

    def parse(self, text: str) -> tuple[str | None, list[ToolCall]]:
        return PARSERS[self.name](text)

    def render(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> str:
        conversation, specs = self.prepare(messages, tools)
        text = tokenizer.apply_chat_template(conversation, tools=specs, add_generation_prompt=True, tokenize=False)
        return str(text)

    def encode(self, tokenizer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> list[int]:
        # The template already holds any special tokens, so none are added.
        return list(tokenizer(self.render(tokenizer, messages, tools), add_special_tokens=False)["input_ids"])

    def decode(self, tokenizer: Any, ids: Sequence[int]) -> str:
        return str(tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False))


class HermesFormat(TemplateFormat):
    """Hermes/Qwen: tools in `<tools>`, calls as `<tool_call>{"name", "arguments"}</tool_call>`."""

    name = "hermes"


class Llama3JsonFormat(TemplateFormat):
    """Llama 3.x JSON calls `{"name", "parameters"}` (the template encodes arguments; results in `ipython`)."""

    name = "llama3_json"

    def __init__(self, *, dict_arguments: bool = True) -> None:
        super().__init__(dict_arguments=dict_arguments)


FALLBACK_INSTRUCTIONS = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n"
    '<tool_call>\n{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>\n'
    "Each result comes back in the next message within <tool_response></tool_response> XML tags."
)


class FallbackFormat(TemplateFormat):
    """hone's own format for templates that ignore tools (docs/tool-formats.md).

    Tools are described in the system message (in the first user message where the template
    has no system role); assistant calls become `<tool_call>{json}</tool_call>` text; tool
    results become one user message of `<tool_response>` blocks per batch of results.
    """

    name = "fallback"

    def __init__(self, *, system_role: bool = True) -> None:
        super().__init__(dict_arguments=False)
        self.system_role = system_role

    def __repr__(self) -> str:
        return f"FallbackFormat(system_role={self.system_role})"

    def prepare(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        out: list[dict[str, Any]] = []
        results: list[str] = []
        for m in messages:
            if m.role == "tool":
                results.append(f"<tool_response>\n{m.content or ''}\n</tool_response>")
                continue
            if results:
                out.append({"role": "user", "content": "\n".join(results)})
                results = []
            content = calls_text(m.content, m.tool_calls) if m.tool_calls else (m.content or "")
            out.append({"role": m.role, "content": content})
        if results:
            out.append({"role": "user", "content": "\n".join(results)})
        if tools:
            _fold_tools(out, tools_prompt(tools), self.system_role)
        return out, None


def tools_prompt(tools: Sequence[ToolSpec]) -> str:
    """The fallback format's description of `tools` (one JSON object per line)."""
    lines = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters}, ensure_ascii=False)
        for t in tools
    )
    return FALLBACK_INSTRUCTIONS.format(tools=lines)


def calls_text(content: str | None, calls: Sequence[ToolCall]) -> str:
    """An assistant message with tool calls as the fallback format writes it (what the model is shown
    to generate: the content, then one `<tool_call>` block per call, newline-separated)."""
    parts = [content] if content else []
    for call in calls:
        body = raw_call_body(call)  # the whole malformed object, exactly as written
        if body is None:
            raw = call.arguments_raw
            args = raw if raw is not None else json.dumps(call.arguments, ensure_ascii=False)
            body = f'{{"name": {json.dumps(call.name, ensure_ascii=False)}, "arguments": {args}}}'
        parts.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(parts)


def _fold_tools(conversation: list[dict[str, Any]], docs: str, system_role: bool) -> None:
    if system_role:
        if conversation and conversation[0]["role"] == "system":
            first = conversation[0]["content"]
            conversation[0] = {"role": "system", "content": f"{first}\n\n{docs}" if first else docs}
        else:
            conversation.insert(0, {"role": "system", "content": docs})
        return
    for i, entry in enumerate(conversation):
        if entry["role"] == "user":
            conversation[i] = {"role": "user", "content": f"{docs}\n\n{entry['content']}"}
            return
    conversation.insert(0, {"role": "user", "content": docs})


def _call_text(call: ToolCall) -> str:
    # A malformed object is rendered as written (its name once, inside it); a parsed call as name + arguments.
    body = raw_call_body(call)
    return body if body is not None else f"{call.name} {call.arguments_raw or ''}"


def tools_rendered(prompt_text: str, tools: Sequence[ToolSpec] | None, messages: Sequence[Message] = ()) -> list[str]:
    """Names of offered tools absent from a rendered prompt ([] when every tool is there).

    A tool counts only if its name occurs in the prompt more often than in the conversation
    itself (`messages`: their text and calls; a template may leave a tool result's name out),
    so a system prompt that merely says "use the calculator tool" is not a tool document.
    """
    said = "\n".join(part for m in messages for part in (m.content or "", *(_call_text(c) for c in m.tool_calls or [])))
    return [t.name for t in tools or () if prompt_text.count(t.name) <= said.count(t.name)]
