"""The fastest execution settings per backend, measured with
`benchmarks/train_speed.py` on a 2-core AVX-512 CPU.

- TensorFlow only uses oneDNN's convolution and matmul kernels on some CPUs
  (Intel ones by default); elsewhere it falls back to Eigen. On the AMD EPYC
  this project is developed on, oneDNN trains the PixelCNN about 2× faster.
  `enable_onednn()` turns it on unless the user chose (`TF_ENABLE_ONEDNN_OPTS`
  set to anything); it must run before TensorFlow is imported, which is why
  `keras_pixelcnn/__init__.py` calls it first.
- XLA (`jit_compile=True`) bypasses oneDNN on CPU and is slower there; on a
  GPU it fuses the many small ops of these models and is the better choice.
  JAX always compiles with XLA.
"""

import contextlib
import importlib
import os
import sys
import tempfile

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def enable_onednn():
    """Turns TensorFlow's oneDNN kernels on, unless the user set the variable.

    Returns:
        True when oneDNN will be used by a TensorFlow imported afterwards (or
        already imported with it on), False otherwise.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(ONEDNN_VARIABLE, "1")
        return os.environ.get(ONEDNN_VARIABLE, "").strip().lower() in ("1", "true")
    if ONEDNN_VARIABLE in os.environ:  # the user chose
        return os.environ[ONEDNN_VARIABLE].strip().lower() in ("1", "true")
    enabled = onednn_in_use()
    if enabled is False and _tensorflow_is_the_backend():
        import warnings

        warnings.warn(
            "TensorFlow was imported before keras_pixelcnn, and its oneDNN kernels are off "
            "on this CPU (training runs about 1.4x slower): import keras_pixelcnn before "
            f"keras or tensorflow, or set {ONEDNN_VARIABLE}=1 before starting Python.",
            RuntimeWarning,
            stacklevel=3,
        )
    return bool(enabled)


def onednn_in_use():
    """Whether the imported TensorFlow runs oneDNN kernels (None: unknown)."""
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return bool(port.IsMklEnabled())
    except Exception:  # a private API: absent in some builds
        return None


def _tensorflow_is_the_backend():
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend() == "tensorflow"
    return os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"


def quiet_tensorflow_logs():
    """Hides TensorFlow's C++ log lines (`cuInit` failures on a CPU machine,
    grappler's `remapper failed`, which are harmless) unless the user set
    `TF_CPP_MIN_LOG_LEVEL`; the command line and the Python API alike. Must
    run before TensorFlow is imported."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def fastest_jit_compile():
    """The `jit_compile` argument for `model.compile` on the current backend:
    XLA on a TensorFlow GPU, oneDNN (no XLA) on a TensorFlow CPU, and the
    backend's own choice ("auto") on JAX and torch."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return "auto"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def use_fastest_jit_compile(model):
    """Sets a loaded, compiled model's `jit_compile` to the fastest setting of
    the backend it is loaded into.

    Keras saves the value that `compile` resolved on the backend that trained
    the model: `False` for a model trained with TensorFlow on a CPU. Loaded
    into JAX as it is, `predict_on_batch` then runs op by op, without XLA
    (4-6x slower than compiled on the shipped models). TensorFlow gets
    `fastest_jit_compile()`; JAX compiles (Keras's "auto"); torch stays eager
    (Keras's "auto" there).
    """
    import keras

    if not getattr(model, "compiled", False):
        return
    backend = keras.backend.backend()
    wanted = fastest_jit_compile() if backend == "tensorflow" else backend == "jax"
    if model.run_eagerly:
        wanted = False
    if model.jit_compile != wanted:
        model.jit_compile = wanted
        # compiled step functions keep the old setting
        model.train_function = model.test_function = model.predict_function = None


def jax_on_cpu():
    """True when the backend is JAX and its default device is the CPU, where
    XLA:CPU's convolutions are the slow path (`benchmarks/conv_formulations.py`)."""
    import keras

    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


@contextlib.contextmanager
def captured_stderr():
    """Captures file descriptor 2 (where TensorFlow's C++ start-up chatter
    goes); replays it only if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_import(name):
    """Imports module `name` with its C++ start-up logging hidden."""
    if name in sys.modules:
        return sys.modules[name]
    with captured_stderr():
        return importlib.import_module(name)


BACKENDS = ("tensorflow", "jax", "torch")


def select_backend(name):
    """Sets `KERAS_BACKEND` to `name` before Keras is imported (one backend
    per process); None keeps the environment's choice."""
    import importlib.util

    from keras_pixelcnn.errors import UsageError

    if name is None:
        return
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(name) is None:
        raise UsageError(
            f"backend {name!r} is not installed (pip install 'keras-pixelcnn[{name}]')"
        )
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != name:
            raise UsageError(
                f"Keras already runs on {current!r} in this process; "
                f"set KERAS_BACKEND={name} before starting it"
            )
    os.environ["KERAS_BACKEND"] = name
