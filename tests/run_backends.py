"""Runs the test suite once per installed Keras backend, each in its own processes.

    python tests/run_backends.py            # tensorflow, jax and torch (those installed)
    python tests/run_backends.py -x -k cli  # extra arguments go to pytest

TensorFlow runs the whole suite, JAX all of it but the tests marked
`backend_independent` (data files, figures, lint, README: no backend code). torch runs `TORCH_TESTS`: the layers,
whole-model causality (PixelCNN++ too), reference = fast sampler (multi-scale too), the
likelihoods, `.keras` portability to and from TensorFlow/JAX, and short
`fit`s. The rest (CLI, export, evaluation
reports, kill-safe resume, distribution) runs the same package code paths on
every backend and takes most of the suite's time. `TORCH_FULL=1` runs it all.

The TensorFlow and JAX passes are each split in two shards by file
(`SHARD_1`, and everything else), and `TEST_JOBS` shards run at once (default:
2, or 1 on a one-core machine). Much of the suite waits on one core (process
start-up, `import tensorflow`, Python-level model building), so two shards at a
time finish sooner on two cores than one pass after the other. Each shard's
output is printed when it ends. Arguments naming test files or test ids run
exactly those, one process per backend, unsharded.

A plain `pytest` leaves out the tests marked `slow` (see pyproject.toml);
this runner runs them too.

Exit code 0 only if every backend passed.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL = "slow or not slow"
NO_TESTS = 5  # pytest's exit code when no test was selected
TORCH_TESTS = [
    "tests/test_layers.py",
    "tests/test_causality.py",
    "tests/test_masked_conv.py",
    "tests/test_pixelcnn.py",
    "tests/test_gated_pixelcnn.py",
    "tests/test_fast_sampling.py",
    "tests/test_sampling.py",
    "tests/test_completion.py",
    "tests/test_evaluation.py",
    "tests/test_saving.py",
    "tests/test_shipped_models.py::test_same_logits_and_samples_as_before_the_restructure",
    "tests/test_export.py::test_keras_file_is_portable_across_backends",
    "tests/test_training.py",
    "tests/test_likelihoods.py",
    "tests/test_likelihood_models.py::test_no_output_parameter_sees_its_pixel_or_later",
    "tests/test_likelihood_models.py::test_fast_and_reference_samplers_draw_the_same_256_level_images",
    "tests/test_likelihood_models.py::test_nll_is_the_float64_pmf_of_the_model_outputs",
    "tests/test_pixelcnn_pp.py::test_every_position_sees_exactly_its_past",
    "tests/test_pixelcnn_pp.py::test_fast_multiscale_sampler_draws_the_reference_images",
]
# The first shard of a full pass: the slowest files, about half of the
# TensorFlow pass's time (measured with `pytest --durations`). The second
# shard is every other file, so the two together are the whole suite.
SHARD_1 = [
    "tests/test_bad_input.py",
    "tests/test_notebook.py",
    "tests/test_resume.py",
    "tests/test_pixelcnn_pp.py",
    "tests/test_export.py",
    "tests/test_distribution.py",
]


def _names_tests(argv):
    """Whether the extra arguments name test files or ids (then run just those)."""
    return any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in argv)


def plan(backends, argv, torch_full=False):
    """The jobs: (label, backend, pytest arguments), longest first."""
    jobs = []
    for backend in backends:
        if backend == "torch" and not torch_full and not _names_tests(argv):
            jobs.append(("torch", backend, [*TORCH_TESTS, *argv]))
        elif _names_tests(argv):
            jobs.append((backend, backend, list(argv)))
        else:
            rest = ["tests", *(f"--ignore={path}" for path in SHARD_1)]
            jobs.append((f"{backend} 1/2", backend, [*SHARD_1, *argv]))
            jobs.append((f"{backend} 2/2", backend, [*rest, *argv]))
    return jobs


def _start(label, backend, args):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        # no cache plugin: shards running at once must not write the same cache files
        # "-m": the whole suite, slow tests too (a plain `pytest` leaves them
        # out); a `-m` among the extra arguments comes later and wins
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", ALL, *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    print(f"[{label}] started", flush=True)
    return process, log, time.perf_counter()


def main(argv):
    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    only = os.environ.get("BACKENDS")
    if only:
        backends = [b for b in backends if b in only.split(",")]
    width = int(os.environ.get("TEST_JOBS", min(2, os.cpu_count() or 1)))
    pending = plan(backends, argv, torch_full=bool(os.environ.get("TORCH_FULL")))
    running, results = {}, {}
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < max(1, width):
            label, backend, args = pending.pop(0)
            running[label] = (backend, *_start(label, backend, args))
        time.sleep(0.5)
        for label in [k for k, (_, p, _, _) in running.items() if p.poll() is not None]:
            backend, process, log, began = running.pop(label)
            seconds = time.perf_counter() - began
            print(f"\n===== KERAS_BACKEND={backend} ({label}), {seconds:.0f} s =====", flush=True)
            log.seek(0)
            sys.stdout.write(log.read().decode(errors="replace"))
            sys.stdout.flush()
            log.close()
            results[label] = (process.returncode, seconds)
    print("\n===== summary =====")
    for label, (code, seconds) in results.items():
        verdict = {0: "passed", NO_TESTS: "no test selected"}.get(code, f"FAILED (exit {code})")
        print(f"{label:>14}: {verdict} in {seconds:.0f} s")
    print(f"{'all':>14}: {time.perf_counter() - start:.0f} s, {width} at a time")
    return 0 if passed(results) else 1


def passed(results):
    """Every job passed; a shard that a `-k`/`-m` filter left empty is fine as
    long as another job of its backend ran tests."""
    by_backend = {}
    for label, (code, _) in results.items():
        by_backend.setdefault(label.split()[0], []).append(code)
    return bool(results) and all(
        all(code in (0, NO_TESTS) for code in codes) and 0 in codes for codes in by_backend.values()
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
