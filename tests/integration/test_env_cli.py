"""`hone env build`, `hone env show`, `hone envs` and the installed package, end to end through the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.envs import make_env
from hone.envs.build._env import BuiltEnv

GARDEN = Path(__file__).parent / "specs" / "garden.py"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("garden") / "env"
    code, stdout, stderr = invoke("env", "build", str(GARDEN), "-o", str(out), "--tasks-per-level", "3")
    assert code == 0, stdout + stderr
    return out


def test_build_writes_a_directory_and_prints_the_manifest(built: Path) -> None:
    for name in ("hone_env.json", "tasks.jsonl", "splits.json", "pyproject.toml"):
        assert (built / name).is_file(), name
    env = BuiltEnv.load(built)
    assert env.name == "garden" and len(env.scenarios) == 2
    assert env.tasks("heldout"), "one of the two scenarios is held out"
    # A rerun is served by the stage cache and gives the same tasks; --json is machine-readable.
    code, stdout, _ = invoke("env", "build", str(GARDEN), "-o", str(built), "--tasks-per-level", "3", "--json")
    assert code == 0
    manifest = json.loads(stdout)
    assert manifest["name"] == "garden" and manifest["tasks"] == len(env.built_tasks())
    assert set(manifest["by_level"]) <= {"single", "choice", "parallel", "chain", "ask", "no_tool"}
    assert manifest["seconds"] >= 0 and set(manifest["splits"]) == {"train", "test", "heldout"}


def test_build_summary_table(tmp_path: Path) -> None:
    code, stdout, stderr = invoke("env", "build", str(GARDEN), "-o", str(tmp_path / "e"), "--tasks-per-level", "2")
    assert code == 0, stderr
    for word in ("scenarios", "tools", "tasks (verified)", "splits", "dropped", "seconds", "tasks by level", "single"):
        assert word in stdout, word
    assert "hone eval" in stderr


def test_show_prints_tools_levels_and_references(built: Path) -> None:
    code, stdout, stderr = invoke("env", "show", str(built), "--tasks", "4", "--split", "heldout")
    assert code == 0, stderr
    assert "find_plant" in stdout and "order_plant" in stdout and "(heldout)" in stdout
    assert "levels" in stdout and "no_tool" in stdout
    assert "reference solution" in stdout and "plant_id=" in stdout
    code, stdout, _ = invoke("env", "show", str(built), "--level", "6", "--split", "heldout")
    assert code == 0 and "(no call: answer directly)" in stdout
    assert "plant_id=" not in stdout.split("tasks (heldout)")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env", "build", "nope.py", "-o", "{out}"], "nope.py: no such file"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--generator", "magic"], "--generator must be one of"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--generator", "llm"], "--generator llm needs --model"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--model", "openai:x"], "only used with --generator llm"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--heldout-share", "1.5"], "--heldout-share must be in [0, 1)"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--tasks-per-level", "0"], "--tasks-per-level must be >= 1"),
        (["env", "build", str(GARDEN), "-o", "{out}", "--kind", "yaml"], "unknown input kind"),
        (["env", "show", "{out}"], "is not a built environment"),
        (["env", "show", str(GARDEN.parent), "--level", "9"], "--level must be 1-6"),
    ],
)
def test_setup_mistakes_are_one_line_before_any_work(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    code, _, stderr = invoke(*[a.replace("{out}", str(out)) for a in args])
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], stderr
    assert not out.exists()  # nothing was written


def test_a_foreign_directory_needs_force_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _, stderr = invoke("env", "build", str(GARDEN), "-o", str(out), "--tasks-per-level", "2")
    assert code != 0 and "not empty" in stderr and "--force" in stderr
    code, _, stderr = invoke("env", "build", str(GARDEN), "-o", str(out), "--tasks-per-level", "2", "--force")
    assert code == 0, stderr
    assert (out / "notes.txt").read_text() == "keep me" and (out / "hone_env.json").is_file()


def test_a_spec_without_types_is_refused_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.py"
    spec.write_text("state = {}\n\ndef f(x):\n    return x\n")
    code, _, stderr = invoke("env", "build", str(spec), "-o", str(tmp_path / "o"))
    assert code != 0 and stderr.startswith("error:") and len(stderr.strip().splitlines()) == 1, stderr


def test_make_env_and_eval_options_understand_a_built_directory(built: Path) -> None:
    env = make_env(str(built), call_timeout_s="2.5")
    assert isinstance(env, BuiltEnv) and env.call_timeout_s == 2.5
    with pytest.raises(Exception, match="call_timeout_s"):
        make_env(str(built), call_timeout_s="-1")
    with pytest.raises(Exception, match="no option 'levels'"):
        make_env(str(built), levels="3")


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None,
    reason="installing a built package offline needs setuptools in this Python (pip install setuptools)",
)
def test_the_package_installs_and_registers_its_entry_point(built: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    installed = subprocess.run([*pip, "--target", str(target), str(built)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([sys.executable, "-m", "hone", "envs"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "garden" in listed.stdout
    code = (
        "from hone.envs import make_env; e = make_env('garden', call_timeout_s='3');"
        "print(type(e).__name__, e.name, e.call_timeout_s, len(e.tasks('heldout')) > 0, e.root.name)"
    )
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == ["BuiltEnv", "garden", "3.0", "True", "data"]  # the package's own copy


def test_show_takes_a_registered_built_env_by_name() -> None:
    pytest.importorskip("hone.envs.build._toolgen")
    code, stdout, stderr = invoke("env", "show", "toolgen", "--tasks", "2", "--level", "4")
    assert code == 0, stderr
    assert "toolgen" in stdout and "->" in stdout  # chains: steps joined by ->
    code, _, stderr = invoke("env", "show", "arith")
    assert code != 0 and "'arith' is not a built environment" in stderr


def test_build_from_the_shipped_catalog(tmp_path: Path) -> None:
    code, out, err = invoke("env", "build", "catalog:hotel,garden", "-o", str(tmp_path / "cat"), "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["kind"] == "catalog" and manifest["scenarios"] == 2 and manifest["tasks"] > 0
    env = BuiltEnv.load(tmp_path / "cat")
    assert {t.scenario for t in env.built_tasks()} == {"hotel", "garden"}
    code, _, err = invoke("env", "build", "catalog:nope", "-o", str(tmp_path / "bad"))
    assert code != 0 and "no catalog scenario 'nope'" in err and not (tmp_path / "bad" / "tasks.jsonl").exists()
