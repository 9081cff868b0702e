from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from _env_driver import drive

from hone.core import ConfigError, DataError, Trajectory
from hone.envs import GSM8K
from hone.envs._gsm8k import load
from hone.models import Scripted

REAL = Path(__file__).parents[3] / "shared/data/gsm8k/test.jsonl"
needs_real = pytest.mark.skipif(not REAL.is_file(), reason=f"GSM8K data not found at {REAL}")


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(question: str, answer: str) -> str:
    return json.dumps({"question": question, "answer": answer})


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "small.jsonl",
        [row(f"What is {i} + {i}?", f"{i} + {i} = {2 * i}\n#### {2 * i:,}") for i in (1, 2, 3, 600, 5)],
    )


@needs_real
def test_real_file_loads_all_problems() -> None:
    env = GSM8K(path=REAL)
    tasks = env.tasks("test")
    assert len(tasks) == 1319 and env.data_errors == []
    first = tasks[0]
    assert first.id == "gsm8k-0" and first.target == 18
    assert first.input["question"].startswith("Janet")
    assert len({t.id for t in tasks}) == 1319
    assert all(isinstance(t.target, int | float) for t in tasks)


@needs_real
async def test_real_episode_and_regrade_in_fresh_instance() -> None:
    env = GSM8K(path=str(REAL))
    task = env.tasks("test", n=1)[0]
    reset = await env.clone().reset(task)
    system, user = reset.messages
    assert "calculator" in system.text and '"The answer is N."' in system.text and user.text == task.input["question"]
    assert [t.name for t in reset.tools] == ["calculator"]
    tr, _ = await drive(env, Scripted(["16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars. The answer is $18."]), task)
    assert tr.answer == "18" and tr.passed
    stored = Trajectory.model_validate_json(tr.model_dump_json())
    [fb] = await GSM8K(path=REAL).grade(stored)
    assert fb.passed and fb.visibility == "hidden" and fb.evidence == {"expected": 18, "got": "18"}


def test_targets_order_and_seeded_shuffle(small: Path) -> None:
    env = GSM8K(path=small)
    tasks = env.tasks("test")
    assert [t.target for t in tasks] == [2, 4, 6, 1200, 10]  # "1,200" parsed without its comma
    assert [t.id for t in env.tasks("test", n=2)] == ["gsm8k-0", "gsm8k-1"]
    shuffled = env.tasks("test", seed=3)
    assert shuffled == env.tasks("test", seed=3)
    assert sorted(t.id for t in shuffled) == sorted(t.id for t in tasks)
    assert [t.id for t in shuffled] != [t.id for t in tasks]
    assert env.tasks("test", n=2, seed=3) == shuffled[:2]
    with pytest.raises(ConfigError, match="unknown split 'train'"):
        env.tasks("train")


async def test_wrong_and_tolerant_answers(small: Path) -> None:
    env = GSM8K(path=small)
    task = env.tasks("test")[3]
    assert (await drive(env, Scripted(["The answer is 1,200.00"]), task))[0].passed
    assert not (await drive(env, Scripted(["The answer is 1201."]), task))[0].passed


def test_malformed_lines_lenient(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "bad.jsonl",
        [
            row("ok one", "#### 1"),
            '{"question": "broken',
            json.dumps({"question": "no answer"}),
            row("no hashes", "it is 4"),
            "",
            row("not a number", "#### four"),
            "[1, 2]",
            row("ok two", "#### -2.5"),
        ],
    )
    with pytest.warns(UserWarning, match=r"skipped 5 malformed line\(s\)") as record:
        env = GSM8K(path=path)
    assert len(record) == 1 and "line 2 of" in str(record[0].message)
    assert [t.id for t in env.tasks("test")] == ["gsm8k-0", "gsm8k-7"]
    assert env.tasks("test")[1].target == -2.5
    assert env.data_errors == [
        f"gsm8k: line 2 of {path}: invalid JSON (Unterminated string starting at, column 14)",
        f"gsm8k: line 3 of {path}: missing 'answer'",
        f"gsm8k: line 4 of {path}: no '####' in 'answer'",
        f"gsm8k: line 6 of {path}: the answer after '####' is not a number: 'four'",
        f"gsm8k: line 7 of {path}: not a JSON object",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env.clone()  # a clone neither reloads nor warns again


def test_malformed_lines_strict(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [row("ok", "#### 1")] * 16 + [json.dumps({"question": "q"})])
    for strict in (True, "true", "1"):
        with pytest.raises(DataError, match=rf"^gsm8k: line 17 of {path}: missing 'answer'$"):
            GSM8K(path=path, strict=strict)
    with pytest.raises(ConfigError, match="strict"):
        GSM8K(path=path, strict="maybe")


def test_path_resolution(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HONE_GSM8K", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--env-arg path="):
        GSM8K()
    with pytest.raises(ConfigError, match="not found"):
        GSM8K(path=tmp_path / "missing.jsonl")
    monkeypatch.setenv("HONE_GSM8K", str(small))
    assert GSM8K().path == small.resolve()
    monkeypatch.delenv("HONE_GSM8K")
    work = tmp_path / "work"
    data = tmp_path / "shared/data/gsm8k"
    work.mkdir()
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text(small.read_text())
    monkeypatch.chdir(work)
    assert len(GSM8K().tasks("test")) == 5


def test_parsed_files_are_cached_until_they_change(small: Path) -> None:
    assert load(small) is load(small)
    before = load(small)
    small.write_text(small.read_text() + row("extra", "#### 7") + "\n")
    stat = small.stat()
    os.utime(small, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load(small) is not before and len(load(small).rows) == 6


def test_a_file_without_a_good_line_is_an_error_naming_it(tmp_path: Path) -> None:
    # Malformed lines among good ones are skipped with a warning (above); with no good line at
    # all the run would have 0 tasks, which must not pass for a result.
    empty = write_lines(tmp_path / "empty.jsonl", ["", "   "])
    with pytest.raises(DataError, match=rf"^gsm8k: {empty} holds no problems \(it is empty\)$"):
        GSM8K(path=empty)
    bad = write_lines(tmp_path / "bad.jsonl", ['{"question": "broken', json.dumps({"question": "q"})])
    with pytest.raises(DataError) as info:
        GSM8K(path=bad)
    assert str(info.value) == (
        f"gsm8k: no valid problem in {bad}: all 2 line(s) malformed; first: line 1 of {bad}: "
        "invalid JSON (Unterminated string starting at, column 14)"
    )
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(row("q", "#### 1").encode() + b"\n\xff\xfe\n")
    with pytest.raises(DataError, match=rf"^gsm8k: {binary} is not UTF-8 text"):
        GSM8K(path=binary)


def test_an_unreadable_file_is_an_error_naming_it() -> None:
    # Root reads through any chmod; /proc/self/mem is a file whose first read fails for anyone.
    with pytest.raises(DataError, match=r"^gsm8k: cannot read /proc/\d+/mem: "):
        GSM8K(path="/proc/self/mem")
