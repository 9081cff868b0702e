"""The micro tokenizer and chat template: round trips, standalone loading, tool-call rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from hone.learn.micro import MARKUP_TOKENS, SPECIAL_TOKENS, build_tokenizer
from hone.models._toolparse import parse_hermes

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    },
}


def conversation(arguments: str | dict[str, str]) -> list[dict[str, object]]:
    call = {"id": "call_0", "type": "function", "function": {"name": "calculator", "arguments": arguments}}
    return [
        {"role": "system", "content": "Use the calculator."},
        {"role": "user", "content": "Compute: 12 * (3 + 4)"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "84", "tool_call_id": "call_0", "name": "calculator"},
        {"role": "assistant", "content": "The answer is 84."},
    ]


def test_text_round_trip_with_markup_and_specials() -> None:
    tok = build_tokenizer()
    text = '<|im_start|>assistant\n<tool_call>{"name": "calculator"}</tool_call><|im_end|>\n\tx = (1 + 2) * 3!'
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    for token in (*SPECIAL_TOKENS, *MARKUP_TOKENS):
        assert len(tok.encode(token, add_special_tokens=False)) == 1, token
    # One id per printable character.
    assert len(tok.encode("hello, world", add_special_tokens=False)) == len("hello, world")
    # Control tokens drop out when asked, markup stays.
    assert tok.decode(ids, skip_special_tokens=True).startswith("assistant\n<tool_call>")


def test_unknown_characters_map_to_unk() -> None:
    tok = build_tokenizer()
    ids = tok.encode("a€b", add_special_tokens=False)
    assert ids == [tok.convert_tokens_to_ids("a"), tok.unk_token_id, tok.convert_tokens_to_ids("b")]


def test_saved_tokenizer_loads_without_hone(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = build_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<|im_start|>user\nCompute: 7 * 6<|im_end|>\n<tool_call>"
    assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    assert loaded.chat_template == tok.chat_template
    messages = conversation({"expression": "12 * (3 + 4)"})
    assert loaded.apply_chat_template(messages, tools=[CALCULATOR], tokenize=False) == tok.apply_chat_template(
        messages, tools=[CALCULATOR], tokenize=False
    )
    assert loaded.eos_token == "<|im_end|>" and loaded.pad_token == "<|pad|>"


@pytest.mark.parametrize("arguments", [{"expression": "12 * (3 + 4)"}, '{"expression": "12 * (3 + 4)"}'])
def test_template_renders_tool_calls_that_parse_back(arguments: str | dict[str, str]) -> None:
    tok = build_tokenizer()
    text = tok.apply_chat_template(conversation(arguments), tools=[CALCULATOR], tokenize=False)
    assert "<tools>calculator(expression)</tools>" in text
    assert "<|im_start|>tool\n84<|im_end|>\n" in text
    start = text.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    segment = text[start : text.index("<|im_end|>", start)]
    content, calls = parse_hermes(segment)
    assert content is None
    assert [(c.name, c.arguments, c.parse_error) for c in calls] == [
        ("calculator", {"expression": "12 * (3 + 4)"}, None)
    ]
    assert calls[0].arguments_raw == json.dumps({"expression": "12 * (3 + 4)"})
    # A generation prompt opens an assistant turn.
    prompt = tok.apply_chat_template(conversation(arguments)[:2], tools=[CALCULATOR], add_generation_prompt=True)
    assert tok.decode(prompt).endswith("<|im_start|>assistant\n")
