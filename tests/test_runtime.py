"""runtime.py: oneDNN is on by default for TensorFlow (unless the user chose),
and training compiles with the fastest jit setting per backend."""

import os
import subprocess
import sys

import keras
import pytest
from conftest import ROOT

from keras_pixelcnn.runtime import ONEDNN_VARIABLE, fastest_jit_compile

PROBE = (
    "import os, keras_pixelcnn, keras\n"
    "on = None\n"
    "if keras.backend.backend() == 'tensorflow':\n"
    "    from tensorflow.python.util import _pywrap_util_port as port\n"
    "    on = port.IsMklEnabled()\n"
    f"print(os.environ.get({ONEDNN_VARIABLE!r}), on)\n"
)


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
    variable, on = _probe(None)
    assert variable == "1"
    if keras.backend.backend() == "tensorflow":
        assert on == "True"  # TensorFlow really runs its oneDNN kernels


def test_a_user_choice_is_kept():
    variable, on = _probe("0")
    assert variable == "0"
    if keras.backend.backend() == "tensorflow":
        assert on == "False"


def test_fastest_jit_compile():
    jit = fastest_jit_compile()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # XLA only on a GPU; on a CPU it would bypass oneDNN (measured slower).
        assert jit is bool(tf.config.list_physical_devices("GPU"))
    else:
        assert jit == "auto"


def test_train_compiles_with_the_fastest_setting(tiny_model):
    from keras_pixelcnn.training import compile_model

    model = tiny_model()
    compile_model(model, 1e-3)
    expected = fastest_jit_compile()
    if expected == "auto":
        pytest.skip("the backend resolves 'auto' itself")
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
