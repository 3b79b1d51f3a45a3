"""Timing the code of an earlier commit beside the current one, in one run.

`python benchmarks/sampling.py --before REV` and `python benchmarks/train_speed.py
--before REV` extract the `keras_pixelcnn` package of commit REV into a
temporary folder (`git archive`) and run the same measurement a second time
with that package first on `sys.path` (the benchmark scripts import the
package from `package_root()`). The rows of both come from the same machine
in the same session, so "before" and "after" compare.
"""

import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = "KERAS_PIXELCNN_BENCH_ROOT"


def package_root():
    """Where the benchmark imports `keras_pixelcnn` from: the checkout, or
    the extracted package of an earlier commit."""
    return os.environ.get(VARIABLE, str(ROOT))


def extract(rev):
    """Extracts `keras_pixelcnn/` of commit `rev` into a new temporary folder;
    returns `(folder, short commit)`."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    folder = tempfile.mkdtemp(prefix=f"keras_pixelcnn_{commit}_")
    archive = subprocess.run(
        ["git", "archive", commit, "keras_pixelcnn"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder, commit


def without_before(argv):
    """The command-line arguments without `--before REV` / `--before=REV`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--before":
            skip = True
        elif not arg.startswith("--before="):
            out.append(arg)
    return out
