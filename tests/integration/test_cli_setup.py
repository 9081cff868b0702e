"""Setup mistakes are refused before any model call, in one line, with a non-zero exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.core import ConfigError, Trajectory
from hone.store import export_jsonl, open_store
from hone.testing import OpenAIServer

runner = CliRunner()


def hone(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str, out: str = "") -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err + out
    assert "Traceback" not in err + out and "validation error" not in err + out
    return lines[0]


def eval_args(server: OpenAIServer, tmp_path: Path, *extra: str) -> list[str]:
    spec = f"openai-compatible:{server.base_url}:x"
    return ["eval", "arith", "-m", spec, "-n", "4", "--store", str(tmp_path / "hone.db"), *extra]


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["-n", "0"], "-n"),
        (["-k", "-1"], "-k"),
        (["--concurrency", "0"], "--concurrency"),
        (["--budget", "calls=-1"], "calls=-1"),
        (["--budget", "cost=-0.5"], "cost=-0.5"),
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--max-tokens", "0"], "--max-tokens"),
        (["--max-turns", "0"], "--max-turns"),
        (["--timeout", "0"], "--timeout"),
        (["--tool-errors", "ignore"], "--tool-errors"),
    ],
)
def test_invalid_numbers_name_the_option(server: OpenAIServer, tmp_path: Path, extra: list[str], option: str) -> None:
    code, out, err = hone(*eval_args(server, tmp_path), *extra)
    assert code == 2
    assert option in one_error_line(err, out)
    assert server.request_count == 0


@pytest.mark.parametrize("run_id", ["../x", "a/b", "a\\b", "a\x00b", "tab\there", "..", "x" * 200, ""])
def test_unsafe_run_ids_are_refused(server: OpenAIServer, tmp_path: Path, run_id: str) -> None:
    code, out, err = hone(*eval_args(server, tmp_path, "--run-id", run_id))
    assert code == 2 and "--run-id" in one_error_line(err, out)
    assert server.request_count == 0
    code, out, err = hone("import", str(tmp_path / "x.jsonl"), "--run-id", run_id, "--store", str(tmp_path / "h.db"))
    assert code == 2 and "--run-id" in one_error_line(err, out)


def test_budget_accepts_exponent_counts(server: OpenAIServer, tmp_path: Path) -> None:
    code, _, err = hone(*eval_args(server, tmp_path, "--budget", "calls=1e3,tokens=2e6"))
    assert code == 0, err


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_a_store_url_without_a_file_is_refused_before_any_episode(server: OpenAIServer, url: str) -> None:
    spec = f"openai-compatible:{server.base_url}:x"
    code, out, err = hone("eval", "arith", "-m", spec, "-n", "3", "--store", url)
    assert code != 0 and "names no database file" in one_error_line(err, out)
    assert server.request_count == 0


def test_an_unwritable_store_location_is_refused_before_any_episode(server: OpenAIServer, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a directory should be: unwritable even for root
    spec = f"openai-compatible:{server.base_url}:x"
    code, out, err = hone("eval", "arith", "-m", spec, "-n", "3", "--store", str(blocker / "hone.db"))
    assert code != 0 and "is a file, not a directory" in one_error_line(err, out)
    assert server.request_count == 0


@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_record_to_an_unwritable_path_is_refused_before_any_episode(
    server: OpenAIServer, tmp_path: Path, where: str
) -> None:
    (tmp_path / "file").write_text("x")
    cassette = tmp_path / "file" / "c.jsonl" if where == "under-a-file" else tmp_path
    code, out, err = hone(*eval_args(server, tmp_path, "--record", str(cassette)))
    assert code == 2 and "--record" in one_error_line(err, out)
    assert server.request_count == 0
    with open_store(tmp_path / "hone.db") as st:  # nothing was started, so nothing to clean up
        assert st.list_runs() == []


def test_record_check_leaves_no_file_behind(server: OpenAIServer, tmp_path: Path) -> None:
    cassette = tmp_path / "deep" / "c.jsonl"
    code, _, err = hone(*eval_args(server, tmp_path, "--record", str(cassette)))
    assert code == 0, err
    assert len(cassette.read_text().splitlines()) == server.request_count > 0


def test_an_empty_or_all_malformed_dataset_is_an_error(server: OpenAIServer, tmp_path: Path) -> None:
    spec = f"openai-compatible:{server.base_url}:x"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    code, out, err = hone("eval", "gsm8k", "-m", spec, "-e", f"path={empty}", "--store", str(tmp_path / "h.db"))
    assert code != 0 and str(empty) in one_error_line(err, out) and "empty" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n{not json\n')
    code, out, err = hone("eval", "gsm8k", "-m", spec, "-e", f"path={bad}", "--store", str(tmp_path / "h.db"))
    line = one_error_line(err, out)
    assert code != 0 and str(bad) in line and "line 1" in line and "2 line(s) malformed" in line
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, out, err = hone("eval", "gsm8k", "-m", spec, "-e", f"path={binary}", "--store", str(tmp_path / "h.db"))
    assert code != 0 and str(binary) in one_error_line(err, out)
    assert server.request_count == 0


def test_import_into_a_run_of_another_environment_is_refused(server: OpenAIServer, tmp_path: Path) -> None:
    db = str(tmp_path / "hone.db")
    assert hone(*eval_args(server, tmp_path, "--run-id", "a"))[0] == 0
    other = Trajectory(run_id="g", task_id="gsm8k-1", env="gsm8k", model="x")
    path = tmp_path / "other.jsonl"
    path.write_text(other.model_dump_json() + "\n")
    code, out, err = hone("import", str(path), "--run-id", "a", "--store", db)
    line = one_error_line(err, out)
    assert code == 2 and "'a'" in line and "arith" in line and "gsm8k" in line
    with open_store(db) as st:
        assert {t.env for t in st.query(run_id="a")} == {"arith"}
        assert hone("import", str(path), "--store", db)[0] == 0  # into its own run: fine
        assert st.count("g") == 1
    mixed = tmp_path / "mixed.jsonl"
    export_jsonl(open_store(db), "a", mixed)
    mixed.write_text(mixed.read_text() + other.model_dump_json() + "\n")
    code, out, err = hone("import", str(mixed), "--run-id", "new", "--store", db)
    assert code != 0 and "mix" in one_error_line(err, out)
    assert open_store(db).get_run("new") is None  # refused before anything was stored


def test_export_of_an_unsafe_stored_run_id_stays_in_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "hone.db")
    evil = Trajectory(run_id="../../evil", task_id="t", env="arith", model="x")
    src = tmp_path / "evil.jsonl"
    src.write_text(evil.model_dump_json() + "\n")
    assert hone("import", str(src), "--store", db)[0] == 0  # stored ids may be anything
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, _, err = hone("export", "../../evil", "--store", db)
    assert code == 0, err
    [written] = list(work.iterdir())
    assert written.name.endswith(".jsonl") and "/" not in written.name and not written.name.startswith(".")
    assert json.loads(written.read_text())["run_id"] == "../../evil"
    assert not (tmp_path / "a" / "evil.jsonl").exists()  # where "../../evil.jsonl" would have gone


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["improve", "arith", "-m", "micro", "-n", "0"], "-n"),
        (["improve", "arith", "-m", "micro", "--concurrency", "0"], "--concurrency"),
        (["improve", "arith", "-m", "micro", "--temperature", "-1"], "--temperature"),
        (["improve", "arith", "-m", "micro", "--run-id", "a/b"], "--run-id"),
        (["improve", "arith", "-m", "micro", "--budget", "calls=-3"], "calls=-3"),
        (["loop", "arith", "-k", "0"], "-k"),
        (["loop", "arith", "--steps", "0"], "--steps"),
        (["loop", "arith", "--id", "../../etc"], "--id"),
    ],
)
def test_improve_and_loop_share_the_checks(tmp_path: Path, args: list[str], option: str) -> None:
    code, out, err = hone(*args, "--store", str(tmp_path / "hone.db"))
    assert code == 2 and option in one_error_line(err, out)
    assert not (tmp_path / "hone.db").exists()  # refused before the store was even opened


def test_a_backend_that_never_answers_is_not_a_score_of_zero(server: OpenAIServer, tmp_path: Path) -> None:
    server.fail_next(4, 401)  # a bad key: each episode's first call fails (401 is not retried)
    code, _, err = hone(*eval_args(server, tmp_path, "--run-id", "down"))
    assert code == 1 and "all 4 episodes failed with ModelError" in err and "--retry-errors" in err
    with open_store(tmp_path / "hone.db") as st:
        assert st.count("down") == 4  # kept, to be retried
    code, _, err = hone(*eval_args(server, tmp_path, "--run-id", "down", "--retry-errors"))
    assert code == 0, err


def test_a_loop_id_that_is_not_a_file_name_is_refused_from_python(tmp_path: Path) -> None:
    from hone.learn.loop import LoopConfig
    from hone.learn.loop._loop import Loop

    with pytest.raises(ConfigError, match=re.escape("loop id '../../x' contains '/'")):
        Loop(LoopConfig(loop_id="../../x"), open_store(tmp_path / "h.db"))  # would name .hone/reports/../../x


def test_a_run_that_nothing_could_grade_is_not_a_score_of_zero(tmp_path: Path) -> None:
    # Every episode a GradeError (here: each task's reference solution fails its own test): exit 1, not 0%.
    import gzip

    data = Path(__file__).parents[1] / "data/humaneval/HumanEval.jsonl.gz"
    with gzip.open(data) as fh:
        rows = [json.loads(line) for line in fh][:2]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps({**r, "canonical_solution": "    return None\n"}) + "\n" for r in rows))
    answer = {"role": "assistant", "content": "```python\ndef f():\n    return 0\n```"}
    with OpenAIServer(lambda request: answer) as srv:
        spec = f"openai-compatible:{srv.base_url}:x"
        args = ["eval", "humaneval", "-m", spec, "-e", f"path={broken}", "--store", str(tmp_path / "h.db")]
        code, _, err = hone(*args, "--run-id", "ungraded")
    assert code == 1 and "all 2 episodes failed with GradeError" in err and "--retry-errors" in err, err
