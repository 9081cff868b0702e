"""Third-party packages add environments through the `hone.envs` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = '''
from hone.envs import Arith


def make(**kwargs):
    """Arithmetic from a plugin package."""
    env = Arith(levels="1")
    env.name = "plugin-arith"
    return env
'''


def _install_fake_distribution(root: Path) -> None:
    (root / "hone_plugin_demo.py").write_text(PLUGIN)
    dist = root / "hone_plugin_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hone-plugin-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hone.envs]\nplugin-arith = hone_plugin_demo:make\n")


def test_entry_point_environment_is_listed_and_runs(tmp_path: Path) -> None:
    _install_fake_distribution(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run([sys.executable, "-m", "hone", "envs"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "plugin-arith" in listed.stdout and "from a plugin package" in listed.stdout
    code = "from hone.envs import make_env; e = make_env('plugin-arith'); print(e.name, len(e.tasks('test', n=3)))"
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == ["plugin-arith", "3"]
