import json
from pathlib import Path

import pytest

from hone.core import ConfigError, DataError, Message, ModelCall, ModelError, Sampling, ToolSpec
from hone.models import OpenAICompatible, Replay, Scripted, replay_key
from hone.testing import OpenAIServer


async def episode(model: Replay, tools: list[ToolSpec], question: list[Message], seed: int) -> list[ModelCall]:
    """A two-turn calculator episode, as the Runner would drive it."""
    sampling = Sampling(temperature=1.0, seed=seed)
    first = await model.generate(question, tools, sampling)
    call = first.message.tool_calls[0]  # type: ignore[index]
    history = [*question, first.message, Message.tool("84", call.id)]
    return [first, await model.generate(history, tools, sampling)]


async def test_record_then_replay_offline_is_identical(
    tmp_path: Path, tools: list[ToolSpec], question: list[Message]
) -> None:
    cassette = tmp_path / "runs" / "cassette.jsonl"
    with OpenAIServer() as srv:
        inner = OpenAICompatible("mock-model", base_url=srv.base_url, name="policy")
        recorder = Replay(cassette, inner, mode="record")
        recorded = [c for seed in range(3) for c in await episode(recorder, tools, question, seed)]
        await recorder.aclose()
        assert srv.request_count == 6 and recorder.name == "policy"
    assert len(cassette.read_text().splitlines()) == 6

    player = Replay(cassette)  # server gone: nothing may be called
    assert player.name == "policy" and len(player) == 6
    replayed = [c for seed in range(3) for c in await episode(player, tools, question, seed)]
    assert replayed == recorded
    assert replayed[0].completion_token_ids == recorded[0].completion_token_ids is not None
    assert player.hits == 6


async def test_miss_names_the_digest_and_the_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    recorder = Replay(cassette, Scripted(["hi"]), mode="record")
    await recorder.generate([Message.user("a")])
    player = Replay(cassette)
    digest = replay_key([Message.user("b")], None, None)
    with pytest.raises(
        ModelError, match=rf"replay miss: no recorded response for request {digest} in .*c\.jsonl; re-record"
    ):
        await player.generate([Message.user("b")])


async def test_key_ignores_the_model_name(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await Replay(cassette, Scripted(["hi"], name="one"), mode="record").generate([Message.user("a")])
    auto = Replay(cassette, Scripted([], name="another"), mode="auto")
    assert (await auto.generate([Message.user("a")])).message.content == "hi"
    assert auto.name == "another" and auto.recorded == 0


async def test_same_request_twice_replays_in_order_then_repeats_the_last(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    recorder = Replay(cassette, Scripted(["first", "second"]), mode="record")
    for _ in range(2):
        await recorder.generate([Message.user("same")])
    player = Replay(cassette)
    got = [(await player.generate([Message.user("same")])).message.content for _ in range(3)]
    assert got == ["first", "second", "second"]


async def test_auto_mode_records_only_misses(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    inner = Scripted(["one", "two"])
    auto = Replay(cassette, inner, mode="auto")
    await auto.generate([Message.user("a")])
    await auto.generate([Message.user("a")])
    await auto.generate([Message.user("b")])
    assert inner.calls == 2 and auto.recorded == 2 and auto.hits == 1
    assert len(Replay(cassette)) == 2


def test_malformed_line_is_a_data_error_with_its_line_number(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    good = json.dumps(
        {"key": "k", "model": "m", "call": {"model": "m", "request_digest": "d", "message": {"role": "assistant"}}}
    )
    cassette.write_text(f"{good}\n{{not json\n{good}\n")
    with pytest.raises(DataError, match=r"c\.jsonl:2: malformed cassette line"):
        Replay(cassette)
    cassette.write_text(f"{good}\n{json.dumps({'key': 'k'})}\n")
    with pytest.raises(DataError, match=r"c\.jsonl:2:"):
        Replay(cassette)


async def test_truncated_last_line_is_tolerated_and_repaired(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await Replay(cassette, Scripted(["hi"]), mode="record").generate([Message.user("a")])
    with cassette.open("a") as f:
        f.write('{"key": "x", "call": {"mod')  # a process killed mid-write
    auto = Replay(cassette, Scripted(["there"]), mode="auto")
    assert len(auto) == 1
    await auto.generate([Message.user("b")])
    await auto.aclose()
    player = Replay(cassette)
    assert len(player) == 2 and (await player.generate([Message.user("b")])).message.content == "there"


async def test_complete_last_line_without_newline(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await Replay(cassette, Scripted(["hi"]), mode="record").generate([Message.user("a")])
    cassette.write_text(cassette.read_text().rstrip("\n"))
    auto = Replay(cassette, Scripted(["there"]), mode="auto")
    await auto.generate([Message.user("b")])
    await auto.aclose()
    assert len(Replay(cassette)) == 2


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Replay(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="needs the model"):
        Replay(tmp_path / "c.jsonl", mode="record")
    with pytest.raises(ConfigError, match="mode"):
        Replay(tmp_path / "c.jsonl", Scripted([]), mode="bogus")  # type: ignore[arg-type]
