"""The benchmarks' `--before REV`: the earlier package is the one imported,
and the rest of the command line is passed on unchanged."""

import subprocess
import sys
from pathlib import Path

import keras
import pytest
from helpers import ROOT

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent: runs in the TensorFlow pass",
)
sys.path.insert(0, str(ROOT))
from benchmarks.before import VARIABLE, extract, package_root, without_before  # noqa: E402


def test_without_before_keeps_every_other_argument():
    argv = ["--batches", "64", "256", "--before", "abc123", "--repeats", "2"]
    assert without_before(argv) == ["--batches", "64", "256", "--repeats", "2"]
    assert without_before(["--before=abc123", "--only", "x"]) == ["--only", "x"]


def test_extract_gives_the_package_of_that_commit(monkeypatch):
    first = subprocess.run(  # the repository's first commit: its package differs from HEAD's
        ["git", "rev-list", "--max-parents=0", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    folder, short = extract(first)
    assert first.startswith(short)
    init = subprocess.run(
        ["git", "show", f"{first}:keras_pixelcnn/__init__.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # bug: HEAD's (or the working tree's) package measured as "before"
    assert (Path(folder) / "keras_pixelcnn" / "__init__.py").read_text() == init
    monkeypatch.setenv(VARIABLE, folder)
    assert package_root() == folder
    monkeypatch.delenv(VARIABLE)
    assert package_root() == str(ROOT)
