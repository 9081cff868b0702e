"""Tool formats: how a local chat model is shown its tools, and how its calls are read back.

A `ToolFormat` turns hone's messages and tools into what the model's chat template renders
(`prepare`), renders and encodes the prompt (`render`, `encode`), and splits generated text
into content and tool calls (`parse`). `detect_format` picks one per tokenizer: the format
the user declared, else the one its chat template shows when rendered with a probe tool,
tool call and tool result. A template that ignores tools gets hone's fallback format (tools
described in the system prompt, calls and results as tagged text; docs/tool-formats.md), so
tools are never dropped silently. See docs/tool-formats.md for every format.
"""

from __future__ import annotations

import re
from typing import Any

from hone.core import ConfigError, Message, ToolCall, ToolSpec

from ._toolformat_base import (
    FALLBACK_MARKERS,
    FORMAT_NAMES,
    FallbackFormat,
    HermesFormat,
    Llama3JsonFormat,
    TemplateFormat,
    ToolFormat,
    calls_text,
    tools_prompt,
    tools_rendered,
)
from ._toolformats_mistral import mistral_format

__all__ = [
    "FALLBACK_MARKERS",
    "FORMAT_NAMES",
    "FallbackFormat",
    "HermesFormat",
    "Llama3JsonFormat",
    "TemplateFormat",
    "ToolFormat",
    "calls_text",
    "detect_format",
    "is_mistral_common",
    "tool_format_notice",
    "tools_prompt",
    "tools_rendered",
]

# --- detection ---------------------------------------------------------------------------

_PROBE = ToolSpec(
    name="hone_probe_tool",
    description="hone probe",
    parameters={"type": "object", "properties": {"hone_probe_arg": {"type": "integer"}}},
)
_PROBE_ARGS = '{"hone_probe_arg": 7}'
_PROBE_CALL = ToolCall(id="a1b2c3d4e", name=_PROBE.name, arguments={"hone_probe_arg": 7}, arguments_raw=_PROBE_ARGS)
_PROBE_OPENING = [Message.system("hone probe system"), Message.user("hone probe user")]
_PROBE_TURN = [
    Message.assistant(None, [_PROBE_CALL]),
    Message.tool("hone probe result", _PROBE_CALL.id, _PROBE.name),
]
_HERMES_CALL = re.compile(r"<tool_call>\s*\{")
_LLAMA3_CALL = re.compile(r'\{"name":\s*"hone_probe_tool",\s*"parameters"')
_NOT_PARSEABLE = (
    "its chat template renders tool calls in a format hone cannot parse; declare the model's format with the "
    "option tool_format= (hermes, llama3_json, mistral) or tool_format=fallback"
)


def detect_format(tokenizer: Any, declared: str | None = None, *, strict: bool = False, name: str = "") -> ToolFormat:
    """The tool format for `tokenizer`: `declared` (one of `FORMAT_NAMES`) if given, else the one its
    chat template shows when rendering a probe tool, tool call and result.

    A template that ignores tools gets `FallbackFormat`; with `strict` that raises `ConfigError`
    instead. A template that renders tools in a form hone cannot parse, or (fallback) a tokenizer
    whose special tokens collide with the fallback's tags, raises `ConfigError` naming the model
    (`name`) and what to do.
    """
    who = name or str(getattr(tokenizer, "name_or_path", "") or "the model")
    if declared is not None and declared not in FORMAT_NAMES:
        raise ConfigError(f"{who}: unknown tool_format {declared!r}; known: {', '.join(FORMAT_NAMES)}")
    if declared == "fallback":
        return _fallback(tokenizer, who)
    templated = bool(getattr(tokenizer, "chat_template", None))
    if declared == "mistral" or (declared is None and (is_mistral_common(tokenizer) or not templated)):
        return mistral_format(tokenizer, who)
    with_tools = ""
    for opening in (_PROBE_OPENING, _PROBE_OPENING[1:]):  # some templates refuse a system message
        try:
            with_tools = _probe(tokenizer, [*opening], dict_arguments=False)
            break
        except Exception:  # a template that fails with tools is classified below
            continue
    if declared is not None and _PROBE.name not in with_tools:
        # A declared template format cannot show tools the template drops: refuse rather than run blind.
        raise ConfigError(
            f"{who}: tool_format={declared} was declared, but its chat template does not render tools; "
            "drop tool_format to use hone's fallback format (or tool_format=fallback), or use a template that does"
        )
    if declared is None and _PROBE.name not in with_tools:
        if strict:
            raise ConfigError(
                f"{who}: its chat template does not render tools (strict_tools); drop strict_tools to use hone's "
                "fallback tool format, or declare the model's format with tool_format="
            )
        return _fallback(tokenizer, who)
    if "[AVAILABLE_TOOLS]" in with_tools and declared is None:
        return mistral_format(tokenizer, who)
    try:
        turn, dict_arguments = _probe_turn(tokenizer, who)
    except ConfigError:
        if declared is None:
            raise
        turn, dict_arguments = "", declared == "llama3_json"  # the user's word; rendering errors surface per call
    if declared == "hermes" or (declared is None and _HERMES_CALL.search(turn)):
        return HermesFormat(dict_arguments=dict_arguments)
    if declared == "llama3_json" or (declared is None and _LLAMA3_CALL.search(turn)):
        return Llama3JsonFormat(dict_arguments=True)
    if "[TOOL_CALLS]" in turn:
        return mistral_format(tokenizer, who)
    raise ConfigError(f"{who}: {_NOT_PARSEABLE}")


def _probe(tokenizer: Any, messages: list[Message], *, dict_arguments: bool) -> str:
    fmt = TemplateFormat(dict_arguments=dict_arguments)
    return fmt.render(tokenizer, messages, [_PROBE])


def _probe_turn(tokenizer: Any, who: str) -> tuple[str, bool]:
    """The template's rendering of a probe call and result, and whether it needs arguments as objects
    (it JSON-encodes them itself, so a string would come out quoted)."""
    messages = [*_PROBE_OPENING, *_PROBE_TURN]
    try:
        text = _probe(tokenizer, messages, dict_arguments=False)
    except Exception:  # templates that iterate or filter the arguments need an object
        try:
            return _probe(tokenizer, messages, dict_arguments=True), True
        except Exception as exc:
            raise ConfigError(
                f"{who}: its chat template fails on a tool call or tool result ({_brief(exc)}); "
                "declare tool_format=fallback to have hone render them as text"
            ) from exc
    quoted = '\\"hone_probe_arg\\"' in text
    return (_probe(tokenizer, messages, dict_arguments=True), True) if quoted else (text, False)


def _fallback(tokenizer: Any, who: str) -> FallbackFormat:
    clash = _marker_clash(tokenizer)
    if clash:
        raise ConfigError(
            f"{who}: its tokenizer has the special token {clash!r}, which hone's fallback tool format uses as a "
            "tag; declare the model's own format with tool_format= (hermes, llama3_json or mistral)"
        )
    try:
        shown = str(
            tokenizer.apply_chat_template(
                [m.to_openai() for m in _PROBE_OPENING], add_generation_prompt=True, tokenize=False
            )
        )
    except Exception:  # templates that refuse a system role
        shown = ""
    return FallbackFormat(system_role="hone probe system" in shown)


def _marker_clash(tokenizer: Any) -> str | None:
    special: set[str] = set(getattr(tokenizer, "all_special_tokens", None) or ())
    added = getattr(tokenizer, "get_added_vocab", None)
    if callable(added):
        special.update(str(t) for t in added())
    for token in sorted(special):
        if any(m in token or (len(token) >= 4 and token in m) for m in FALLBACK_MARKERS):
            return token
    return None


def is_mistral_common(tokenizer: Any) -> bool:
    """True for transformers' tokenizer backed by mistral-common (it encodes chats itself, without a template)."""
    return type(tokenizer).__name__ in {"MistralCommonBackend", "MistralCommonTokenizer"}


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def tool_format_notice(model: object) -> str | None:
    """The line the CLI prints once for a model whose chat template ignores tools (None for others)."""
    current: Any = model
    for _ in range(16):  # wrappers (Cached, Replay) nest a few deep
        fmt = getattr(current, "tool_format", None)
        if fmt is not None and getattr(fmt, "name", None) is not None:
            if fmt.name != "fallback":
                return None
            name = getattr(current, "name", "the model")
            return (
                f"model {name}: its chat template does not render tools; hone renders them in its fallback format "
                "(docs/tool-formats.md)"
            )
        current = getattr(current, "inner", None)
        if current is None:
            return None
    return None
