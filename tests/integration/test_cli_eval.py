"""`hone eval` end to end against a real local OpenAI-compatible HTTP server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.store import open_store
from hone.testing import OpenAIServer, scripted_policy

runner = CliRunner()


def hone(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_show_export_parquet(server: OpenAIServer, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    spec = f"openai-compatible:{server.base_url}:x"
    code, out, err = hone("eval", "arith", "--model", spec, "-n", "50", "-k", "2", "--store", db, "--run-id", "it")
    assert code == 0, err + out
    assert "accuracy" in out and "pass@2" in out and "by subset" in out
    st = open_store(db)
    trajs = list(st.query(run_id="it"))
    assert len(trajs) == 100
    assert Counter((t.task_id, t.sample) for t in trajs).most_common(1)[0][1] == 1
    # the mock model solves literal expressions with the calculator and fails word problems
    acc = sum(t.passed for t in trajs) / len(trajs)
    assert 0.3 < acc < 0.98
    assert all(t.status == "ok" for t in trajs)
    solved = next(t for t in trajs if t.passed)
    assert solved.steps[0].call.message.tool_calls and solved.steps[0].call.completion_token_ids
    assert solved.usage.tokens > 0 and solved.steps[0].call.latency_s > 0

    code, out, _ = hone("show", "it", "--store", db)
    assert code == 0 and "arith" in out and solved.task_id in out
    code, out, _ = hone("show", "it", "--traj", solved.id, "--store", db)
    assert code == 0 and "calculator" in out and "The answer is" in out and "PASS" in out

    pq_path = tmp_path / "it.parquet"
    code, _, err = hone("export", "it", "--format", "parquet", "-o", str(pq_path), "--store", db)
    assert code == 0, err
    frame = pd.read_parquet(pq_path)
    assert len(frame) == 100 and set(frame["run_id"]) == {"it"}
    assert pq.read_table(pq_path).num_rows == 100
    code, out, _ = hone("runs", "--store", db)
    assert code == 0 and "it" in out

    jl = tmp_path / "it.jsonl"
    assert hone("export", "it", "-o", str(jl), "--store", db)[0] == 0
    db2 = str(tmp_path / "other.db")
    assert hone("import", str(jl), "--store", db2)[0] == 0
    back = {t.id: t for t in open_store(db2).query(run_id="it")}
    assert back == {t.id: t for t in trajs}


def test_eval_survives_injected_429_and_500(server: OpenAIServer, tmp_path: Path) -> None:
    server.fail_next(3, 429)
    server.fail_next(2, 500)
    db = str(tmp_path / "hone.db")
    code, _, err = hone(
        "eval", "arith", "-m", f"openai-compatible:{server.base_url}:x", "-n", "10", "--store", db, "--run-id", "f"
    )
    assert code == 0, err
    trajs = list(open_store(db).query(run_id="f"))
    assert len(trajs) == 10 and all(t.status == "ok" for t in trajs)


def test_record_then_replay_offline_gives_identical_trajectories(tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    cassette = tmp_path / "cassette.jsonl"
    with OpenAIServer() as srv:
        spec = f"openai-compatible:{srv.base_url}:x"
        args = ["-n", "12", "-k", "2", "--store", db]
        code, _, err = hone("eval", "arith", "-m", spec, "--record", str(cassette), "--run-id", "rec", *args)
        assert code == 0, err
    # the server is gone: replay must not touch the network
    code, _, err = hone(
        "eval", "arith", "-m", f"replay:{cassette}", "--run-id", "rep", "-n", "12", "-k", "2", "--store", db
    )
    assert code == 0, err
    st = open_store(db)

    def key(run: str) -> dict[tuple[str, int], str]:
        out = {}
        for t in st.query(run_id=run):
            same = t.model_dump(
                mode="json", include={"prompt", "tools", "steps", "answer", "feedback", "reward", "status"}
            )
            out[(t.task_id, t.sample)] = json.dumps(same, sort_keys=True)
        return out

    rec, rep = key("rec"), key("rep")
    assert len(rec) == 24 and rec == rep


def test_broken_tool_json_is_an_episode_error_and_the_run_goes_on(tmp_path: Path) -> None:
    bad = {"content": None, "tool_calls": [{"name": "calculator", "arguments": '{"expression": "1+'}]}
    good = {"content": None, "tool_calls": [{"name": "nope", "arguments": "{}"}]}
    with OpenAIServer(scripted_policy([bad, good])) as srv:
        db = str(tmp_path / "hone.db")
        code, out, err = hone(
            "eval",
            "arith",
            "-m",
            f"openai-compatible:{srv.base_url}:x",
            "-n",
            "2",
            "--store",
            db,
            "--run-id",
            "b",
            "--concurrency",
            "1",
        )
    assert code == 0, err
    trajs = sorted(open_store(db).query(run_id="b"), key=lambda t: t.task_id)
    assert [t.status for t in trajs] == ["error", "error"]
    errors = sorted((t.error.type, t.error.raw or "") for t in trajs if t.error)
    assert errors[0][0] == errors[1][0] == "ToolError"
    assert any('{"expression": "1+' in raw for _, raw in errors)
    assert "ToolError" in out


@pytest.mark.parametrize(
    ("args", "needle", "exit_code"),
    [
        (["eval", "nosuchenv", "-m", "openai:x"], "unknown environment 'nosuchenv'", 2),
        (["eval", "arith", "-m", "bogus:thing"], "model", 2),
        (["eval", "arith", "-m", "replay:/nonexistent/cassette.jsonl"], "cassette", 2),
        (["eval", "arith", "-m", "openai-compatible:http://127.0.0.1:9/v1:x", "--budget", "calls=zz"], "budget", 2),
        (["eval", "arith", "-m", "openai-compatible:http://127.0.0.1:9/v1:x", "-e", "levels=9"], "level", 2),
        (["eval", "arith", "-m", "openai-compatible:http://127.0.0.1:9/v1:x", "-e", "tools=calculater"], "'python'", 2),
        (["eval", "arith", "-m", "openai-compatible:http://127.0.0.1:9/v1:x", "-e", "level=3"], "no option 'level'", 2),
        (["eval", "gsm8k", "-m", "openai-compatible:http://127.0.0.1:9/v1:x", "-e", "strict=maybe"], "strict=", 2),
        (["show", "no-such-run"], "no run 'no-such-run'", 2),
    ],
)
def test_bad_input_gives_one_clear_line(args: list[str], needle: str, exit_code: int, tmp_path: Path) -> None:
    open_store(tmp_path / "hone.db").close()
    code, out, err = hone(*args, "--store", str(tmp_path / "hone.db"))
    assert code == exit_code, out + err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:") and needle in err, err
    assert "Traceback" not in err + out


def test_unwritable_store_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = hone("runs", "--store", str(blocker / "sub" / "hone.db"))
    assert code != 0 and err.startswith("error:") and "Traceback" not in err


def test_malformed_dataset_line_strict_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "gsm.jsonl"
    data.write_text('{"question": "q", "answer": "#### 4"}\n{not json\n')
    code, _, err = hone(
        "eval",
        "gsm8k",
        "-m",
        "openai-compatible:http://127.0.0.1:9/v1:x",
        "-e",
        f"path={data}",
        "-e",
        "strict=true",
        "--store",
        str(tmp_path / "h.db"),
    )
    assert code != 0 and "line 2" in err and "Traceback" not in err


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "eval", "nosuchenv", "-m", "openai:x", "--store", str(tmp_path / "h.db")])
    assert result.exit_code != 0 and result.exception is not None


def test_envs_lists_builtins() -> None:
    code, out, _ = hone("envs")
    assert code == 0 and "arith" in out and "gsm8k" in out
