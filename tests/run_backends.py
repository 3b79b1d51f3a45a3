"""Runs the test suite once per installed Keras backend, each in its own process.

    python tests/run_backends.py            # tensorflow, jax and torch (those installed)
    python tests/run_backends.py -x -k cli  # extra arguments go to pytest

TensorFlow runs the whole suite, JAX all of it but the tests marked
`backend_independent` (data files, figures, lint, README: no backend code). torch runs `TORCH_TESTS`: the layers,
whole-model causality (PixelCNN++ too), reference = fast sampler, the
likelihoods, `.keras` portability to and from TensorFlow/JAX, and short
`fit`s. The rest (CLI, export, evaluation
reports, kill-safe resume, distribution) runs the same package code paths on
every backend and takes most of the suite's time. `TORCH_FULL=1` runs it all.

Exit code 0 only if every backend passed.
"""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
]


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
        selection = TORCH_TESTS if backend == "torch" and not os.environ.get("TORCH_FULL") else []
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", *selection, *argv], cwd=ROOT, env=env
        )
        results[backend] = (code, time.perf_counter() - start)
    print("\n===== summary =====")
    for backend, (code, seconds) in results.items():
        print(
            f"{backend:>10}: {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s"
        )
    return 0 if results and all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
