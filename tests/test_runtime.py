"""runtime.py: oneDNN is on by default for TensorFlow (unless the user chose),
XLA:CPU's convolutions stay out of YNNPACK on JAX, and training compiles with
the fastest jit setting per backend."""

import functools
import os
import subprocess
import sys

import keras
import pytest
from conftest import ROOT

from keras_pixelcnn.runtime import (
    NO_YNN_CONVOLUTIONS,
    ONEDNN_VARIABLE,
    YNN_FLAG_RELEASES,
    fastest_jit_compile,
)

PROBE = (
    "import os, keras_pixelcnn, keras\n"
    "on = None\n"
    "if keras.backend.backend() == 'tensorflow':\n"
    "    from tensorflow.python.util import _pywrap_util_port as port\n"
    "    on = port.IsMklEnabled()\n"
    f"print(os.environ.get({ONEDNN_VARIABLE!r}), on)\n"
)


@functools.cache  # one subprocess per setting for the whole module
def _probe(value):
    env = dict(os.environ)
    env.pop(ONEDNN_VARIABLE, None)
    if value is not None:
        env[ONEDNN_VARIABLE] = value
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_onednn_is_turned_on_by_importing_the_package():
    assert _probe(None)[0] == "1"


def test_a_user_choice_is_kept():
    assert _probe("0")[0] == "0"


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's kernels")
def test_tensorflow_really_runs_onednn_kernels_as_chosen():
    assert _probe(None)[1] == "True"
    assert _probe("0")[1] == "False"


def _gpu():
    if keras.backend.backend() != "tensorflow":
        return False  # the CPU builds this project installs for JAX and torch
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def test_fastest_jit_compile():
    # TensorFlow: XLA only on a GPU (on a CPU it bypasses oneDNN, measured
    # slower); JAX and torch: Keras's "auto" (XLA on JAX, eager on torch)
    expected = {"tensorflow": _gpu(), "jax": "auto", "torch": "auto"}[keras.backend.backend()]
    assert fastest_jit_compile() == expected and type(fastest_jit_compile()) is type(expected)


def test_train_compiles_with_the_fastest_setting(tiny_model):
    from keras_pixelcnn.training import compile_model

    model = tiny_model()
    compile_model(model, 1e-3)
    expected = {"tensorflow": _gpu(), "jax": True, "torch": False}[keras.backend.backend()]
    assert model.jit_compile is expected


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's kernels")
def test_importing_tensorflow_first_is_reported_when_it_costs_onednn():
    """`import keras` before `import keras_pixelcnn`: TensorFlow decided
    about oneDNN itself. A warning must say so exactly when oneDNN is off."""
    code = (
        "import warnings, keras\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import keras_pixelcnn\n"
        "from keras_pixelcnn.runtime import onednn_in_use\n"
        "warned = any('oneDNN kernels are off' in str(w.message) for w in caught)\n"
        "print(onednn_in_use(), warned)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.pop(ONEDNN_VARIABLE, None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    in_use, warned = out.stdout.split()
    assert in_use in ("True", "False")
    assert warned == str(in_use == "False")


# How many convolutions XLA:CPU hands to YNNPACK in a masked-3×3-sized one.
YNN_PROBE = (
    "import os, keras_pixelcnn, jax, jax.numpy as jnp\n"
    "conv = jax.jit(lambda x, k: jax.lax.conv_general_dilated(\n"
    "    x, k, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))\n"
    "hlo = conv.lower(jnp.ones((8, 28, 28, 32)), jnp.ones((2, 3, 32, 32))).compile().as_text()\n"
    "print(os.environ.get('XLA_FLAGS'), '|', hlo.count('__ynn_fusion'))\n"
)


def _ynn_probe(backend, xla_flags=None, code=YNN_PROBE):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("XLA_FLAGS", None)
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    flags, ynn = out.stdout.strip().splitlines()[-1].split(" | ")
    return flags, int(ynn)


def _jaxlib_release():
    from importlib.metadata import version

    return tuple(int(part) for part in version("jaxlib").split(".")[:2])


def test_jax_convolutions_leave_ynnpack_on_the_releases_that_know_the_flag():
    """On a known jaxlib, importing the package sets the flag before JAX's
    first computation, and XLA really compiles the convolution without
    YNNPACK (bugs: a misspelt flag aborts the process; a flag set too late
    or ignored leaves the YNNPACK convolution, 2-4x slower here)."""
    flags, ynn = _ynn_probe("jax")
    if _jaxlib_release() in YNN_FLAG_RELEASES:
        assert flags == NO_YNN_CONVOLUTIONS and ynn == 0
        # the same convolution without the package's flag does go to YNNPACK
        bare = YNN_PROBE.replace("import os, keras_pixelcnn,", "import os,")
        assert _ynn_probe("jax", code=bare) == ("None", 1)
    else:  # an unknown flag would abort every JAX process
        assert flags == "None"


def test_the_xla_flag_is_left_to_tensorflow_and_to_the_user():
    # TensorFlow's own XLA reads XLA_FLAGS too: the flag is for JAX only
    code = YNN_PROBE.split("conv =")[0] + "print(os.environ.get('XLA_FLAGS'), '| 0')\n"
    assert _ynn_probe("tensorflow", code=code) == ("None", 0)
    # the user's own setting of the flag is kept as it is; other flags are kept
    assert _ynn_probe("jax", "--xla_cpu_experimental_ynn_fusion_type=")[0] == (
        "--xla_cpu_experimental_ynn_fusion_type="
    )
    if _jaxlib_release() in YNN_FLAG_RELEASES:
        flags, ynn = _ynn_probe("jax", "--xla_cpu_multi_thread_eigen=true")
        assert flags == f"--xla_cpu_multi_thread_eigen=true {NO_YNN_CONVOLUTIONS}" and ynn == 0


@pytest.mark.slow
def test_a_library_script_that_samples_and_evaluates_prints_nothing():
    """Bug: a script using the package printed TensorFlow's start-up lines
    and, on every `sample` call after the fifth, "triggered tf.function
    retracing" (a new sampler, so a new compiled function, per call). With
    the package imported first (the README's order) and no
    TF_CPP_MIN_LOG_LEVEL of the user's, repeated sampling and evaluation
    print nothing but the script's own line."""
    code = """
import keras_pixelcnn as kp
import keras
import numpy as np

x = np.zeros((4, 28, 28, 1), "float32")
for name, calls in (("pixelcnn", 7), ("gated_pixelcnn_conditional", 2)):
    model = keras.saving.load_model(f"saved_models/{name}.keras")
    labels = [3, 5] if len(model.inputs) == 2 else None
    for seed in range(calls):  # TensorFlow warns of retracing from the sixth
        kp.sample(model, num_images=2, seed=seed, labels=labels)
    kp.evaluate_nll(model, x, None if labels is None else np.array([1, 2, 3, 4]))
print("sampled and evaluated")
"""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = keras.backend.backend()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "sampled and evaluated\n"
    assert result.stderr == "", result.stderr[-3000:]
