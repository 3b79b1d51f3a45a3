"""Runs the test suite once per installed Keras backend, each in its own processes.

    python tests/run_backends.py            # tensorflow, jax and torch (those installed)
    python tests/run_backends.py -x -k cli  # extra arguments go to pytest

TensorFlow runs the whole suite, split in three shards by file (`SHARDS`:
two lists and everything else). JAX and torch run `BACKEND_TESTS`: the tests whose outcome
can depend on the backend's kernels, tracing and loops (the layers, whole-model
causality, reference = fast sampler for every family, the likelihoods, the NLL,
`.keras` files loaded and saved on this backend, `fit` with its seed and mixed
precision, the classifier's features, distribution, one CLI sampling run). The
rest (bad-input cases, export, evaluation reports, kill-safe resume, training
plumbing, import order, the README and the notebook) drives backend-independent
package code (argument checks, files, backups, the batch order) that the
TensorFlow pass proves; `LEFT_OUT` names the few cases of those tests that
only the TensorFlow pass runs. `FULL=1` runs everything on every backend.

`TEST_JOBS` jobs run at once (default: 2, or 1 on a one-core machine). Much of
the suite waits on one core (process start-up, `import tensorflow`,
Python-level model building), so two jobs at a time finish sooner on two cores
than one after the other. Jobs start in `plan`'s order, chosen so
that the two lanes end together. Each job gets
its share of the cores (`job_env`): left alone, torch's OpenMP threads take
every core and spin while they wait, and next to a TensorFlow job a torch test
ran 3x slower (the whole torch job: 518 -> 186 s). Each job's output is
printed when it ends. Arguments
naming test files or test ids run exactly those, one process per backend,
unsharded.

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
BACKEND_TESTS = [
    "tests/test_layers.py",
    "tests/test_causality.py",
    "tests/test_masked_conv.py",
    "tests/test_pointwise.py",  # JAX's custom gradient
    "tests/test_colour.py",  # channel masks, colour likelihoods and samplers
    "tests/test_pixelcnn.py",
    "tests/test_gated_pixelcnn.py",
    "tests/test_pixelcnn_pp.py::test_every_position_sees_exactly_its_past",
    "tests/test_pixelcnn_pp.py::test_fast_multiscale_sampler_draws_the_reference_images",
    "tests/test_fast_sampling.py",
    "tests/test_sampling.py",
    "tests/test_completion.py",
    "tests/test_likelihoods.py",
    "tests/test_likelihood_models.py::test_no_output_parameter_sees_its_pixel_or_later",
    "tests/test_likelihood_models.py::test_fast_and_reference_samplers_draw_the_same_256_level_images",
    "tests/test_likelihood_models.py::test_nll_is_the_float64_pmf_of_the_model_outputs",
    "tests/test_evaluation.py",
    "tests/test_sample_quality.py::test_classifier_predictions_report_progress_over_every_image",
    "tests/test_keras_file.py::test_keras_round_trip_in_a_fresh_process",
    "tests/test_keras_file.py::test_loaded_model_keeps_masks",
    "tests/test_keras_file.py::test_loaded_model_compiles_the_fastest_way_of_this_backend",
    "tests/test_keras_file.py::test_loading_draws_the_discarded_initial_weights_the_cheap_way",
    "tests/test_keras_file.py::test_bad_model_files",
    "tests/test_keras_file.py::test_truncated_model_file",
    "tests/test_keras_file.py::test_unrelated_keras_model_is_rejected",
    "tests/test_export.py::test_keras_file_is_portable_across_backends",
    "tests/test_shipped_models.py::test_same_logits_and_samples_as_before_the_restructure",
    "tests/test_training.py::test_tiny_fit_writes_every_output_and_resumes",
    "tests/test_training.py::test_same_seed_same_weights",
    "tests/test_training.py::test_mixed_bfloat16_trains_and_samples",
    "tests/test_training.py::test_ema_trains_the_raw_weights_and_saves_their_average",
    "tests/test_distribution.py",  # keras.distribution on JAX; refused on torch
    "tests/test_cli.py::test_generate_writes_png_and_npy",
]
# Cases of the tests above that the TensorFlow pass runs and the named
# backends leave out: variants whose difference is backend-independent
# package code (the plan, a likelihood's sampling, the label path), with the
# case kept that drives the same backend code (the loops, the compiled or
# eager calls) through the most of it.
LEFT_OUT = {
    "jax torch": [
        # kept: a 3-logistic mixture with labels (lik2-10)
        "tests/test_pixelcnn_pp.py::test_fast_multiscale_sampler_draws_the_reference_images[lik0-None]",
        "tests/test_pixelcnn_pp.py::test_fast_multiscale_sampler_draws_the_reference_images[lik1-10]",
        # kept: the categorical ones (one pass per channel group), gated-mixture
        # (labels, one pass per pixel), pixelcnn_pp-mixture (three scales)
        "tests/test_colour.py::test_cached_sampler_draws_the_reference_colour_images[pixelcnn-mixture]",
        # the sums over every possible image prove the architectures'
        # arithmetic; what they rest on is proved on this backend too: no
        # output sees its pixel or later (the exact Jacobians of
        # test_every_channel_sees_exactly_its_past) and every conditional
        # sums to 1 (test_likelihoods.py, test_colour_mixture_sums_to_one_and_matches_float64)
        "tests/test_colour.py::test_every_possible_2x2_rgb_image_sums_to_one",
        "tests/test_colour.py::test_every_possible_4x4_image_sums_to_one_under_pixelcnn_pp",
        # a colour PixelCNN++ reads no channel of its own pixel (its mixture
        # couples them after the network), so three input channels change
        # nothing its grey case proves on this backend:
        # test_pixelcnn_pp.py::test_every_position_sees_exactly_its_past
        # (JAX: 29-36 s, its Jacobians op by op)
        "tests/test_colour.py::test_every_channel_sees_exactly_its_past[pixelcnn_pp-mixture]",
        # the batch dimension left unknown is TensorFlow's (`reduce_retracing`):
        # JAX traces each batch size with static shapes, torch runs eagerly
        "tests/test_fast_sampling.py::test_one_sampler_draws_several_batch_sizes",
        # a fresh process loading a .keras on this backend:
        # test_keras_file.py::test_keras_round_trip_in_a_fresh_process; the
        # conditional model's config is the same on every backend
        "tests/test_gated_pixelcnn.py::test_conditional_keras_round_trip_in_subprocess",
    ],
    "torch": [
        # kept: pixelcnn-categorical (the same group passes, 18 s on torch)
        "tests/test_colour.py::test_cached_sampler_draws_the_reference_colour_images[gated-categorical]",
    ],
}
# The shards of a full pass, in the order they start: the files of each
# (measured with `pytest --durations`); `REST` stands for every file no other
# shard names, so together they are the whole suite. With JAX started first
# and torch last, two lanes end together (afb06cb's `--durations=0` run on the
# 2-core AVX-512 machine: JAX 319 s, these 546, 311 and 187 s, torch 159 s,
# with `test_install.py`'s 30 s then in the rest): JAX, then the rest, then
# torch in one lane, the first shard then the third in the other.
REST = None
SHARDS = [
    [
        "tests/test_pixelcnn_pp.py",
        "tests/test_notebook.py",
        "tests/test_resume.py",
        "tests/test_export.py",
        "tests/test_readme.py",
        "tests/test_training.py",
        "tests/test_cli.py",
        "tests/test_fast_sampling.py",
    ],
    REST,
    [
        "tests/test_shipped_models.py",
        "tests/test_runtime.py",
        "tests/test_image_folder.py",
        "tests/test_tensorboard.py",
        "tests/test_cli_report.py",
        "tests/test_install.py",
    ],
]


def _names_tests(argv):
    """Whether the extra arguments name test files or ids (then run just those)."""
    return any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in argv)


def _left_out(backend):
    """pytest's `--deselect` arguments for `LEFT_OUT`'s cases of `backend`."""
    return [
        f"--deselect={case}"
        for backends, cases in LEFT_OUT.items()
        if backend in backends.split()
        for case in cases
    ]


def plan(backends, argv, full=False):
    """The jobs: (label, backend, pytest arguments) in their start order:
    the JAX pass of `BACKEND_TESTS`, the shards of a full pass (`SHARDS`),
    the torch pass."""
    jobs = []
    for backend in backends:
        if backend != "tensorflow" and not full and not _names_tests(argv):
            jobs.append((backend, backend, [*BACKEND_TESTS, *_left_out(backend), *argv]))
        elif _names_tests(argv):
            jobs.append((backend, backend, list(argv)))
        else:
            named = [path for files in SHARDS if files is not REST for path in files]
            rest = ["tests", *(f"--ignore={path}" for path in named)]
            for i, files in enumerate(SHARDS, 1):
                args = rest if files is REST else files
                jobs.append((f"{backend} {i}/{len(SHARDS)}", backend, [*args, *argv]))
    order = {"jax": 0, "tensorflow": 1, "torch": 2}
    return sorted(jobs, key=lambda job: order.get(job[1], 1))


def job_env(backend, cores):
    """The environment of a job given `cores` (a set of CPU ids), and the
    cores to pin it to (or None): OpenMP's thread count (torch) is their
    number; JAX, whose XLA thread pool has no such setting, is pinned to them.
    TensorFlow's thread pools are left whole: they block rather than spin,
    and two TensorFlow jobs limited to one thread each took 8% longer."""
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="3",
        OMP_NUM_THREADS=str(len(cores)),
    )
    return env, (set(cores) if backend == "jax" and hasattr(os, "sched_setaffinity") else None)


def core_shares(width):
    """`width` disjoint sets of this process's CPUs, one per job slot (all
    of them in one set when there are fewer CPUs than slots)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cores:
        cores = list(range(os.cpu_count() or 1))
    if len(cores) < width:
        return [set(cores)] * width
    return [set(cores[i::width]) for i in range(width)]


def _start(label, backend, args, cores):
    env, pin = job_env(backend, cores)
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
        preexec_fn=None if pin is None else (lambda: os.sched_setaffinity(0, pin)),
    )
    print(f"[{label}] started", flush=True)
    return process, log, time.perf_counter()


def main(argv):
    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    only = os.environ.get("BACKENDS")
    if only:
        backends = [b for b in backends if b in only.split(",")]
    width = int(os.environ.get("TEST_JOBS", min(2, os.cpu_count() or 1)))
    pending = plan(backends, argv, full=bool(os.environ.get("FULL")))
    width = max(1, width)
    free = core_shares(width)
    running, results = {}, {}
    start = time.perf_counter()
    while pending or running:
        while pending and free:
            label, backend, args = pending.pop(0)
            cores = free.pop()
            running[label] = (backend, cores, *_start(label, backend, args, cores))
        time.sleep(0.5)
        for label in [k for k, (_, _, p, _, _) in running.items() if p.poll() is not None]:
            backend, cores, process, log, began = running.pop(label)
            free.append(cores)
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
