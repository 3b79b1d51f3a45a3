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
- XLA:CPU (jaxlib 0.10) hands every convolution to YNNPACK, which is 2-4x
  slower on these models' small masked convolutions than XLA's own (Eigen)
  convolution: forward 6.4 against 3.6 ms, kernel gradient 33 against 8 ms,
  for the PixelCNN's masked 3×3 convolution at 32 channels and batch 64.
  `fast_xla_cpu_convolutions()` keeps convolutions out of YNNPACK (the XLA
  flag `--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`);
  products and element-wise fusions stay with YNNPACK.
- `KERAS_PIXELCNN_UNROLL` sets how far the cached sampler's loops are
  unrolled (`sampler_unrolling()`): a compile-time against speed trade, the
  images are the same.
"""

import contextlib
import importlib
import json
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
    if enabled is False and _configured_backend() == "tensorflow":
        import warnings

        warnings.warn(
            "TensorFlow was imported before keras_pixelcnn, and its oneDNN kernels are off "
            "on this CPU (training runs about 1.4x slower): import keras_pixelcnn before "
            f"keras or tensorflow, or set {ONEDNN_VARIABLE}=1 before starting Python.",
            RuntimeWarning,
            stacklevel=3,
        )
    return bool(enabled)


XLA_FLAGS_VARIABLE = "XLA_FLAGS"
YNN_FLAG = "xla_cpu_experimental_ynn_fusion_type"
NO_YNN_CONVOLUTIONS = f"--{YNN_FLAG}=-individual_convolution"
# jaxlib releases whose XLA knows the flag (an unknown flag aborts the process)
YNN_FLAG_RELEASES = ((0, 10),)


def fast_xla_cpu_convolutions():
    """Keeps XLA:CPU's convolutions out of YNNPACK for JAX on a CPU, unless the
    user set the flag: appends `NO_YNN_CONVOLUTIONS` to `XLA_FLAGS`. Only for
    the jaxlib releases in `YNN_FLAG_RELEASES`. Must run before JAX creates
    its CPU client (the first computation); GPU compilation ignores it.

    Returns:
        True when the flag is (now) set, False otherwise.
    """
    flags = os.environ.get(XLA_FLAGS_VARIABLE, "")
    if YNN_FLAG in flags:  # the user chose, or already set
        return NO_YNN_CONVOLUTIONS in flags.split()
    if _configured_backend() != "jax":  # TensorFlow's own XLA reads XLA_FLAGS too
        return False
    try:
        from importlib.metadata import PackageNotFoundError, version

        release = tuple(int(part) for part in version("jaxlib").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    if release not in YNN_FLAG_RELEASES:
        return False
    os.environ[XLA_FLAGS_VARIABLE] = f"{flags} {NO_YNN_CONVOLUTIONS}".strip()
    return True


UNROLL_VARIABLE = "KERAS_PIXELCNN_UNROLL"


def sampler_unrolling():
    """The rows × pixels one iteration of the cached sampler's row and pixel
    loops samples, from `KERAS_PIXELCNN_UNROLL` ("ROWSxPIXELS", powers of
    two), or None where it is not set (the sampler's default, 4 × 2).
    Every setting draws the same images; fewer phases make a smaller
    program, which compiles sooner and samples a multi-scale model slower
    (benchmarks/README.md, "The unrolling of the loops"). Single-scale
    models always sample one pixel per iteration."""
    from keras_pixelcnn.errors import UsageError

    text = os.environ.get(UNROLL_VARIABLE, "").strip()
    if not text:
        return None
    values = [int(p) if p.strip().isdigit() else 0 for p in text.lower().split("x")]
    if len(values) != 2 or any(v < 1 or v & (v - 1) for v in values):
        raise UsageError(
            f"{UNROLL_VARIABLE} must be ROWSxPIXELS, two powers of two such as 4x2; got {text!r}"
        )
    return values[0], values[1]


def _configured_backend():
    """The Keras backend of this process, without importing Keras: Keras's
    own order (`KERAS_BACKEND`, then `keras.json`, then TensorFlow)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def onednn_in_use():
    """Whether the imported TensorFlow runs oneDNN kernels (None: unknown)."""
    try:
        from tensorflow.python.util import _pywrap_util_port as port

        return bool(port.IsMklEnabled())
    except Exception:  # a private API: absent in some builds
        return None


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


def save_jit_compile_auto(model):
    """Makes `model.save` record `jit_compile="auto"` instead of the value
    `compile` resolved on this backend (`False` for TensorFlow on a CPU),
    so that a plain `keras.saving.load_model` on any backend resolves it
    again: oneDNN on a TensorFlow CPU, XLA on a TensorFlow GPU and on JAX,
    eager on torch (Keras's `_resolve_auto_jit_compile`, the same choices as
    `fastest_jit_compile`).

    Keras keeps the compile arguments in the private `_compile_config`
    (a `SerializableDict` whose `config` dict `get_compile_config` saves);
    tests/test_keras_file.py fails with a clear message if a Keras release
    moves it.
    """
    compile_config = getattr(model, "_compile_config", None)
    if compile_config is None:  # never compiled: nothing is saved
        return
    config = getattr(compile_config, "config", None)
    if not isinstance(config, dict) or "jit_compile" not in config:
        raise RuntimeError(
            "this Keras keeps its compile settings differently (no "
            "model._compile_config.config['jit_compile']); keras_pixelcnn.runtime."
            "save_jit_compile_auto needs updating"
        )
    config["jit_compile"] = "auto"


def jax_on_cpu():
    """True when the backend is JAX and its default device is the CPU, where
    XLA:CPU's convolutions are the slow path (`benchmarks/conv_formulations.py`)."""
    import keras

    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


@contextlib.contextmanager
def discarded_initial_weights():
    """For building layers whose weights are then overwritten (loading a
    file): on JAX, their initializers draw with the older threefry
    (`jax.threefry_partitionable(False)`), whose XLA:CPU program compiles
    about 5x faster for each new weight shape (loading the shipped
    PixelCNN++ on JAX: 10.7 and 9.9 s
    against 6.4 and 5.6 s, alternated). The drawn values are discarded, so
    nothing a user sees changes; the setting is restored after."""
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    with jax.threefry_partitionable(False):
        yield


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
