"""What an OpenAI-compatible server does, through the official `openai` SDK against uvicorn on 127.0.0.1.

Streaming (content and tool calls reassembled from chunks, usage), `n` choices, every
`tool_choice`, `response_format`, and the rule that a reply never carries a tool call that
was not offered or is malformed or truncated: such a generation is plain content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import openai
import pytest
from _serve_helpers import CALCULATOR, Recorder, SamplingSpy, serving

from hone.core import Message, ModelCall, ToolCall, ToolSpec, Usage
from hone.models import Scripted, call_tool, request_digest
from hone.serve import BackgroundServer

QUESTION = [{"role": "user", "content": "What is 12 * (3 + 4)?"}]
SEARCH = {
    "type": "function",
    "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}
GOOD_CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6 * 7"}}\n</tool_call>'


def sdk(server: BackgroundServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def reassemble(chunks: Iterable[Any]) -> dict[str, Any]:
    """What a streaming client rebuilds: per choice index, content, tool calls and finish reason."""
    out: dict[str, Any] = {"choices": {}, "usage": None, "chunks": 0, "ids": set()}
    for chunk in chunks:
        out["chunks"] += 1
        out["ids"].add(chunk.id)
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            out["usage"] = chunk.usage
        for choice in chunk.choices:
            got = out["choices"].setdefault(choice.index, {"content": "", "tool_calls": {}, "finish": None})
            delta = choice.delta
            got["content"] += delta.content or ""
            for tc in delta.tool_calls or ():
                call = got["tool_calls"].setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                got["finish"] = choice.finish_reason
    return out


def truncated(message: Message) -> ModelCall:
    """A reply cut by max_tokens."""
    return ModelCall(
        model="m",
        request_digest=request_digest("m", [], None, None),
        message=message,
        finish_reason="length",
        usage=Usage(prompt_tokens=3, completion_tokens=8),
    )


def not_an_object() -> Message:
    """A call whose arguments parse, but as a list (no parse_error recorded by the backend)."""
    return Message.assistant(None, [ToolCall(id="c", name="calculator", arguments_raw="[1, 2]")])


def test_streamed_tool_call_and_answer_reassemble(server: BackgroundServer) -> None:
    client = sdk(server)
    stream = client.chat.completions.create(
        model="scripted", messages=QUESTION, tools=[CALCULATOR], stream=True, stream_options={"include_usage": True}
    )
    got = reassemble(stream)
    first = got["choices"][0]
    assert len(got["ids"]) == 1 and first["finish"] == "tool_calls" and first["content"] == ""
    call = first["tool_calls"][0]
    assert call["name"] == "calculator" and call["id"]
    assert json.loads(call["arguments"]) == {"expression": "12 * (3 + 4)"}
    assert got["usage"].completion_tokens == len(call["arguments"]) and got["usage"].total_tokens > 0

    history = [
        *QUESTION,
        {"role": "assistant", "tool_calls": [{"id": call["id"], "type": "function", "function": call}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "84"},
    ]
    history[1]["tool_calls"][0]["function"] = {"name": call["name"], "arguments": call["arguments"]}
    answer = reassemble(client.chat.completions.create(model="scripted", messages=history, stream=True))
    assert answer["choices"][0] == {"content": "The answer is 84.", "tool_calls": {}, "finish": "stop"}
    assert answer["usage"] is None  # not asked for


def test_long_stream_comes_in_pieces_and_ends_with_done() -> None:
    text = "".join(f"word{i} " for i in range(300))  # about 2,100 characters
    args = {"expression": " + ".join(["1"] * 200)}
    with serving(Scripted([text, call_tool("calculator", args)], name="m")) as server:
        got = reassemble(sdk(server).chat.completions.create(model="m", messages=QUESTION, stream=True))
        assert got["choices"][0]["content"] == text and got["chunks"] >= 8
        body = {"model": "m", "messages": QUESTION, "tools": [CALCULATOR], "stream": True}
        raw = httpx.post(server.base_url + "/chat/completions", json=body)
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [block for block in raw.text.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in events[:-1]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"] == {"name": "calculator", "arguments": ""} and calls[0]["index"] == 0
    assert len(calls) >= 3 and all(set(c) == {"index", "function"} for c in calls[1:])
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == args


def test_n_choices_are_separate_samples() -> None:
    model = SamplingSpy(["one", "two", "three"], name="m")
    with serving(model) as server:
        reply = sdk(server).chat.completions.create(model="m", messages=QUESTION, n=3, seed=5, temperature=0.7)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert sorted(c.message.content for c in reply.choices) == ["one", "three", "two"]
    assert sorted(s.seed for s in model.samplings if s) == [5, 6, 7]
    usage = reply.usage
    assert usage is not None and usage.completion_tokens >= 3  # summed over choices
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_n_choices_stream_by_index() -> None:
    with serving(Scripted(lambda m, t: call_tool("calculator", {"expression": "1 + 1"}), name="m")) as server:
        stream = sdk(server).chat.completions.create(
            model="m", messages=QUESTION, tools=[CALCULATOR], n=2, stream=True, stream_options={"include_usage": True}
        )
        got = reassemble(stream)
    assert sorted(got["choices"]) == [0, 1]
    for choice in got["choices"].values():
        assert choice["finish"] == "tool_calls" and json.loads(choice["tool_calls"][0]["arguments"]) == {
            "expression": "1 + 1"
        }
    assert got["usage"] is not None


@pytest.mark.parametrize(
    ("reply", "tools", "content", "finish"),
    [
        # A call of a tool that was not offered, with no tools at all, or with other tools.
        (call_tool("calculator", {"expression": "6 * 7"}), None, GOOD_CALL, "stop"),
        (call_tool("calculator", {"expression": "6 * 7"}), [SEARCH], GOOD_CALL, "stop"),
        # No name; arguments that are not JSON or not an object.
        (
            call_tool("", {"q": "x"}),
            [SEARCH],
            '<tool_call>\n{"name": "", "arguments": {"q": "x"}}\n</tool_call>',
            "stop",
        ),
        (call_tool("calculator", '{"expression": '), [CALCULATOR], '"arguments": {"expression": ', "stop"),
        (not_an_object(), [CALCULATOR], '"arguments": [1, 2]', "stop"),
        # Truncated by max_tokens, even when the JSON happens to parse.
        (truncated(call_tool("calculator", {"expression": "6 * 7"})), [CALCULATOR], GOOD_CALL, "length"),
        (truncated(call_tool("calculator", '{"expr')), [CALCULATOR], '{"expr', "length"),
        (truncated(Message.assistant("The answer is")), [CALCULATOR], "The answer is", "length"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_malformed_or_unoffered_calls_are_plain_content(
    reply: Any, tools: list[dict[str, Any]] | None, content: str, finish: str, stream: bool
) -> None:
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    with serving(Scripted([reply], name="m")) as server:
        client = sdk(server)
        if stream:
            got = reassemble(client.chat.completions.create(model="m", messages=QUESTION, stream=True, **extra))
            text, calls, reason = (
                got["choices"][0]["content"],
                got["choices"][0]["tool_calls"],
                got["choices"][0]["finish"],
            )
        else:
            choice = client.chat.completions.create(model="m", messages=QUESTION, **extra).choices[0]
            text, calls, reason = choice.message.content, choice.message.tool_calls, choice.finish_reason
    assert not calls and reason == finish
    assert content in text if content != GOOD_CALL else text == GOOD_CALL


def test_a_reply_with_any_bad_call_is_content_as_a_whole() -> None:
    good = call_tool("calculator", {"expression": "1 + 1"}).tool_calls or []
    bad = call_tool("search", {"q": "x"}, call_id="call_1").tool_calls or []
    with serving(Scripted([Message.assistant("Let me see.", [*good, *bad])], name="m")) as server:
        choice = sdk(server).chat.completions.create(model="m", messages=QUESTION, tools=[CALCULATOR]).choices[0]
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert choice.message.content is not None and choice.message.content.startswith("Let me see.\n<tool_call>")
    assert choice.message.content.count("<tool_call>") == 2


def test_tool_choice_none_shows_no_tools_and_returns_no_calls(server: BackgroundServer, recorder: Recorder) -> None:
    reply = sdk(server).chat.completions.create(
        model="scripted", messages=QUESTION, tools=[CALCULATOR], tool_choice="none"
    )
    assert recorder.requests[-1][1] == []  # the model was shown no tools
    choice = reply.choices[0]
    # The scripted model calls the calculator anyway: that is text, not a tool call.
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert '"expression": "12 * (3 + 4)"' in (choice.message.content or "")


def test_tool_choice_auto_and_required_pass_a_real_call(server: BackgroundServer) -> None:
    for choice in ("auto", "required"):
        reply = sdk(server).chat.completions.create(
            model="scripted", messages=QUESTION, tools=[CALCULATOR], tool_choice=choice
        )
        assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.tool_calls


def test_tool_choice_named_shows_only_that_tool(server: BackgroundServer, recorder: Recorder) -> None:
    named = {"type": "function", "function": {"name": "calculator"}}
    reply = sdk(server).chat.completions.create(
        model="scripted", messages=QUESTION, tools=[SEARCH, CALCULATOR], tool_choice=named
    )
    assert [t.name for t in recorder.requests[-1][1]] == ["calculator"]
    assert reply.choices[0].message.tool_calls and reply.choices[0].message.tool_calls[0].function.name == "calculator"
    with pytest.raises(openai.BadRequestError, match="names the function 'lookup', which is not in 'tools'"):
        sdk(server).chat.completions.create(
            model="scripted",
            messages=QUESTION,
            tools=[CALCULATOR],
            tool_choice={"type": "function", "function": {"name": "lookup"}},
        )


@pytest.mark.parametrize(
    ("tool_choice", "replies"),
    [
        ("required", ["No tool for me."]),
        # Text, or a call of another tool than the named one.
        (
            {"type": "function", "function": {"name": "search"}},
            ["No tool for me.", call_tool("calculator", {"expression": "1 + 1"})],
        ),
    ],
    ids=["required", "named"],
)
def test_tool_choice_that_the_model_ignores_is_a_clear_error(tool_choice: Any, replies: list[Any]) -> None:
    with serving(Scripted(replies, name="m")) as server:
        for _ in replies:
            with pytest.raises(openai.InternalServerError) as caught:
                sdk(server).chat.completions.create(
                    model="m", messages=QUESTION, tools=[CALCULATOR, SEARCH], tool_choice=tool_choice
                )
            error = caught.value.body
            assert isinstance(error, dict) and error["code"] == "invalid_model_output"
            assert "as tool_choice demands" in error["message"]


def test_response_format_json_object() -> None:
    replies = ['Sure:\n```json\n{"answer": 84, "steps": ["12 * 7"]}\n```', '{"ok": true}', "I cannot say.", '{"cut": ']
    with serving(Scripted([*replies[:3], truncated(Message.assistant(replies[3])), "plain"], name="m")) as server:
        client = sdk(server)
        fmt: Any = {"type": "json_object"}
        first = client.chat.completions.create(model="m", messages=QUESTION, response_format=fmt)
        assert json.loads(first.choices[0].message.content or "") == {"answer": 84, "steps": ["12 * 7"]}
        second = client.chat.completions.create(model="m", messages=QUESTION, response_format=fmt)
        assert second.choices[0].message.content == '{"ok": true}'
        with pytest.raises(openai.InternalServerError, match="wrote no JSON object"):
            client.chat.completions.create(model="m", messages=QUESTION, response_format=fmt)
        # Cut by max_tokens: returned as it is, and the finish reason says so (as OpenAI does).
        cut = client.chat.completions.create(model="m", messages=QUESTION, response_format=fmt)
        assert cut.choices[0].message.content == '{"cut": ' and cut.choices[0].finish_reason == "length"
        with pytest.raises(openai.BadRequestError, match="json_schema is not supported"):
            schema: Any = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
            client.chat.completions.create(model="m", messages=QUESTION, response_format=schema)
        text = client.chat.completions.create(model="m", messages=QUESTION, response_format={"type": "text"})
        assert text.choices[0].message.content == "plain"


def test_models_endpoint(server: BackgroundServer) -> None:
    models = sdk(server).models.list()
    assert [(m.id, m.object, m.owned_by) for m in models.data] == [("scripted", "model", "hone")]


def test_tool_spec_round_trip_with_tool_choice_auto(server: BackgroundServer, recorder: Recorder) -> None:
    sdk(server).chat.completions.create(model="scripted", messages=QUESTION, tools=[CALCULATOR, SEARCH])
    assert recorder.requests[-1][1] == [
        ToolSpec.model_validate(CALCULATOR["function"]),
        ToolSpec.model_validate(SEARCH["function"]),
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_ids_in_a_reply_are_distinct(stream: bool) -> None:
    # A client answers each call by its id: a backend's repeated (or empty) ids must not reach it.
    calls = [ToolCall(id="a", name="calculator", arguments={"expression": e}) for e in ("1 + 1", "2 + 2")]
    calls.append(ToolCall(id="", name="calculator", arguments={"expression": "3 + 3"}))
    with serving(Scripted([Message.assistant(None, calls)], name="m")) as server:
        client = sdk(server)
        if stream:
            chunks = client.chat.completions.create(model="m", messages=QUESTION, tools=[CALCULATOR], stream=True)
            ids = [c["id"] for c in reassemble(chunks)["choices"][0]["tool_calls"].values()]
        else:
            choice = client.chat.completions.create(model="m", messages=QUESTION, tools=[CALCULATOR]).choices[0]
            ids = [tc.id for tc in choice.message.tool_calls or ()]
    assert len(ids) == 3 and len(set(ids)) == 3 and all(ids), ids
