"""`hone runs`, `show` and `export` read a store they cannot write: a read-only mount, another user, `mode=ro`.

Tests run as root, for whom `chmod` stops nothing; so the store is put where writes really
fail: under a read-only bind mount (a private mount namespace), or read by user `nobody`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hone.cli import app
from hone.testing import OpenAIServer

runner = CliRunner()


def _can(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _hone(*args: str) -> str:
    return " ".join([sys.executable, "-m", "hone", *args])


@pytest.fixture
def stored(server: OpenAIServer, tmp_path: Path) -> Path:
    """A directory holding a store with run `ro` (12 trajectories), written and closed."""
    folder = tmp_path / "stores"
    spec = f"openai-compatible:{server.base_url}:x"
    result = runner.invoke(
        app, ["eval", "arith", "-m", spec, "-n", "12", "--store", str(folder / "h.db"), "--run-id", "ro"]
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["h.db"]  # closed: no write-ahead log left behind
    return folder


def _check_reads(output: str, out_file: Path) -> None:
    assert "ro" in output and "arith" in output
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == 12 and {r["run_id"] for r in rows} == {"ro"}


@pytest.mark.skipif(not _can(["unshare", "-m", "true"]), reason="needs a private mount namespace (unshare -m)")
def test_reads_work_under_a_read_only_bind_mount(stored: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    db = stored / "h.db"
    script = " && ".join(
        [
            f"mount --bind -o ro {stored} {stored}",
            f"! touch {stored}/probe 2>/dev/null",  # the mount really is read-only
            _hone("runs", "--store", str(db)),
            _hone("show", "ro", "--store", str(db)),
            _hone("export", "ro", "-o", str(out), "--store", str(db)),
        ]
    )
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _check_reads(done.stdout, out)
    # and a write is refused in one line, not half-done
    script = f"mount --bind -o ro {stored} {stored} && " + _hone(
        "import", str(out), "--run-id", "x", "--store", str(db)
    )
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and done.stderr.strip().startswith("error:") and "Traceback" not in done.stderr


@pytest.mark.skipif(
    os.geteuid() != 0 or not _can([*_AS_NOBODY, sys.executable, "-c", "import hone"]),
    reason="needs root, setpriv, and a Python that user nobody can run",
)
def test_reads_work_for_a_user_who_cannot_write_the_store(stored: Path) -> None:
    # pytest's tmp_path is private to root: work in a directory `nobody` can reach
    base = Path(tempfile.mkdtemp(prefix="hone-ro-"))
    try:
        base.chmod(0o755)
        folder = base / "stores"
        shutil.copytree(stored, folder)
        folder.chmod(0o555)
        (folder / "h.db").chmod(0o444)
        outdir = base / "out"
        outdir.mkdir()
        outdir.chmod(0o777)
        out, db = outdir / "out.jsonl", folder / "h.db"
        env = {**os.environ, "COLUMNS": "200", "HOME": str(outdir)}
        probe = subprocess.run([*_AS_NOBODY, "touch", str(folder / "probe")], capture_output=True, timeout=60)
        assert probe.returncode != 0  # this user really cannot write there
        outputs = []
        for args in (["runs"], ["show", "ro"], ["export", "ro", "-o", str(out)]):
            cmd = [*_AS_NOBODY, sys.executable, "-m", "hone", *args, "--store", str(db)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=outdir)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
        _check_reads(" ".join(outputs), out)
        assert sorted(p.name for p in folder.iterdir()) == ["h.db"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(base)


def test_reads_work_through_a_read_only_sqlite_uri(stored: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    url = f"sqlite:///file:{stored / 'h.db'}?mode=ro&uri=true"
    outputs = []
    for args in (["runs"], ["show", "ro"], ["export", "ro", "-o", str(out)]):
        result = runner.invoke(app, [*args, "--store", url])
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
    _check_reads(" ".join(outputs), out)


def test_a_missing_store_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nothing" / "h.db"
    for args in (["runs"], ["show", "x"], ["export", "x"]):
        result = runner.invoke(app, [*args, "--store", str(db)])
        assert result.exit_code == 2 and result.stderr.startswith("error: no store at")
    assert not (tmp_path / "nothing").exists()
