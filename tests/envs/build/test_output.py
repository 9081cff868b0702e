"""The built directory: held-out scenarios, splits, and the pip-installable package with its entry point."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _buildbank import bank_source

from hone.envs.build import BuiltTask, assign_splits, build, choose_heldout, slug
from hone.sandbox import Sandbox


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("built") / "Bank Demo"
    with Sandbox(workers=2, timeout_s=60) as sb:
        build(bank_source(name="Bank Demo"), out, tasks_per_level=5, sandbox=sb)
    yield out


def test_heldout_choice_is_seeded_and_never_empty_or_total() -> None:
    names = [f"s{i}" for i in range(10)]
    assert choose_heldout(names, 0, 0.2) == choose_heldout(names, 0, 0.2) and len(choose_heldout(names, 0, 0.2)) == 2
    assert choose_heldout(names, 0, 0.2) != choose_heldout(names, 1, 0.2)
    assert len(choose_heldout(["a", "b"], 0, 0.01)) == 1 and len(choose_heldout(["a", "b"], 0, 0.99)) == 1
    assert choose_heldout(["a"], 0, 0.5) == frozenset() and choose_heldout(names, 0, 0.0) == frozenset()


def test_splits_keep_heldout_scenarios_apart() -> None:
    tasks = [
        BuiltTask(id=f"{s}-{i}", scenario=s, level=1, prompt=f"{s} {i}", offered=[], reference=[])
        for s in "abcde"
        for i in range(200)
    ]
    splits = assign_splits(tasks, frozenset({"c"}), 0, 0.2)
    scenario = {t.id: t.scenario for t in tasks}
    assert {scenario[i] for i in splits["heldout"]} == {"c"}
    assert "c" not in {scenario[i] for i in splits["train"] + splits["test"]}
    assert 0.14 < len(splits["test"]) / 800 < 0.26 and sum(map(len, splits.values())) == len(tasks)


def test_built_directory_splits_have_no_scenario_overlap(built: Path) -> None:
    env = json.loads((built / "hone_env.json").read_text())
    held = {s["name"] for s in env["scenarios"] if s["heldout"]}
    assert len(held) == 1  # two scenarios: one is held out
    tasks = {t["id"]: t for t in map(json.loads, (built / "tasks.jsonl").read_text().splitlines())}
    splits = json.loads((built / "splits.json").read_text())
    assert {tasks[i]["scenario"] for i in splits["heldout"]} == held
    assert not held & {tasks[i]["scenario"] for i in splits["train"] + splits["test"]}
    assert splits["train"] and env["manifest"]["splits"] == {k: len(v) for k, v in splits.items()}


@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None,
    reason="installing a built package offline needs setuptools in this Python (pip install setuptools)",
)
def test_package_installs_with_its_entry_point(built: Path, tmp_path: Path) -> None:
    assert slug("Bank Demo") == "bank_demo" and slug("3d world") == "env_3d_world"
    package = built / "src" / "hone_env_bank_demo"
    for name in ("hone_env.json", "tasks.jsonl", "splits.json"):
        assert (package / "data" / name).read_bytes() == (built / name).read_bytes()
    target = tmp_path / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(built),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [points] = list(target.glob("hone_env_bank_demo-*.dist-info/entry_points.txt"))
    assert "[hone.envs]" in points.read_text() and "bank_demo = hone_env_bank_demo:make" in points.read_text()
    assert (target / "hone_env_bank_demo" / "data" / "tasks.jsonl").read_bytes() == (built / "tasks.jsonl").read_bytes()
    # The registry finds it by the entry point, and the factory loads the package's own copy of the data.
    code = (
        "from hone.envs import make_env; env = make_env('bank_demo'); "
        "print(type(env).__name__, env.root.parent.name, len(env.tasks('heldout')) > 0)"
    )
    env = {"PYTHONPATH": str(target), "PATH": os.environ.get("PATH", "")}
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert shown.stdout.split() == ["BuiltEnv", "hone_env_bank_demo", "True"], shown.stderr[-2000:]
