"""`stream=true`: vetted choices as server-sent events in OpenAI's `chat.completion.chunk` format.

hone's `ChatModel` returns whole replies, so the events are written once every choice is
generated: per choice a role delta, the content (in pieces of `PIECE` characters), each
tool call as a header delta (index, id, type, name, empty arguments) followed by its
arguments, and a final delta with the finish reason; then, with
`stream_options.include_usage`, a chunk with empty `choices` and the usage; then
`data: [DONE]`. Errors are known before the first event, so they are plain HTTP errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._protocol import ChatRequest
from ._reply import Choice, completion_id, dumps, logprobs, tool_call_out, usage

PIECE = 256  # characters per content or arguments delta


def stream_events(
    choices: Sequence[Choice], request: ChatRequest, model_name: str, tokenizer: Any = None
) -> Iterator[bytes]:
    """The SSE byte stream (`data: {chunk}\\n\\n` lines, then `data: [DONE]`)."""
    base: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model_name,
    }
    with_usage = bool(request.stream_options and request.stream_options.include_usage)
    if with_usage:
        base["usage"] = None  # as OpenAI: null on every chunk but the last

    def event(choice: dict[str, Any] | None, **extra: Any) -> bytes:
        chunk = {**base, "choices": [] if choice is None else [choice], **extra}
        return b"data: " + dumps(chunk) + b"\n\n"

    first = True
    for choice in choices:
        for delta, extra in _deltas(choice, request, tokenizer):
            top: dict[str, Any] = {}
            if first and request.return_token_ids:
                top["prompt_token_ids"] = choices[0].call.prompt_token_ids
            first = False
            entry = {"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": None, **extra}
            yield event(entry, **top)
    if with_usage:
        yield event(None, usage=usage(choices))
    yield b"data: [DONE]\n\n"


def _deltas(choice: Choice, request: ChatRequest, tokenizer: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(delta, extra choice fields) pairs for one choice, in order."""
    yield {"role": "assistant", "content": ""}, {}
    content = choice.content or ""
    pieces = [content[i : i + PIECE] for i in range(0, len(content), PIECE)]
    probs = logprobs(choice, request, tokenizer)
    for n, piece in enumerate(pieces):
        # All logprobs ride on the last content piece: hone does not map tokens to characters.
        yield {"content": piece}, ({"logprobs": probs} if probs and n == len(pieces) - 1 else {})
    for i, tc in enumerate(choice.tool_calls):
        out = tool_call_out(tc, i)
        head = {"index": i, "id": out["id"], "type": "function", "function": {"name": out["function"]["name"]}}
        head["function"]["arguments"] = ""
        yield {"tool_calls": [head]}, {}
        arguments = out["function"]["arguments"]
        for start in range(0, len(arguments), PIECE):
            yield {"tool_calls": [{"index": i, "function": {"arguments": arguments[start : start + PIECE]}}]}, {}
    last: dict[str, Any] = {"finish_reason": choice.finish_reason}
    if probs and not pieces:
        last["logprobs"] = probs
    if request.return_token_ids:
        last["token_ids"] = choice.call.completion_token_ids
    yield {}, last
