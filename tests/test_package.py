"""The version is written once (hone.__version__) and everything else reads it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from typer.testing import CliRunner

import hone
from hone.cli import app


def test_version_option_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"hone {hone.__version__}"


def test_installed_metadata_carries_the_same_version() -> None:
    # pyproject.toml reads the version from hone.__version__; an installed copy must agree.
    assert importlib.metadata.version("hone") == hone.__version__


def test_version_needs_no_command() -> None:
    out = subprocess.run([sys.executable, "-m", "hone", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"hone {hone.__version__}"
