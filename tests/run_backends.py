"""Runs the test suite once per installed Keras backend, each in its own process.

    python tests/run_backends.py            # tensorflow and jax (and torch if installed)
    python tests/run_backends.py -x -k cli  # extra arguments go to pytest

Exit code 0 only if every backend passed.
"""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv):
    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    only = os.environ.get("BACKENDS")
    if only:
        backends = [b for b in backends if b in only.split(",")]
    results = {}
    for backend in backends:
        print(f"\n===== KERAS_BACKEND={backend} =====", flush=True)
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        start = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", *argv], cwd=ROOT, env=env)
        results[backend] = (code, time.perf_counter() - start)
    print("\n===== summary =====")
    for backend, (code, seconds) in results.items():
        print(f"{backend:>10}: {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s")
    return 0 if results and all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
