"""The code is formatted and linted as pyproject.toml's [tool.ruff] says."""

import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.backend_independent  # see conftest.py


def _ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_check_passes():
    result = _ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_ruff_format_leaves_nothing_to_change():
    result = _ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
