import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX (0.5 on) draws with a "partitionable" threefry whose XLA:CPU program
# takes seconds to compile for each new shape; every weight shape's
# initializer compiles one, so building a tiny PixelCNN++ took 20 s instead of
# 3 and test_colour.py + test_gated_pixelcnn.py 230 s instead of 190. The
# older threefry draws other values from the same seed; no test checks which
# values a seed gives, only that it gives the same ones (here and in the
# subprocesses the tests start, which inherit this).
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")
# On JAX, XLA:CPU compiles every sampler, train step and evaluation the tests
# run, and most are run once on a few tiny images: LLVM's optimization of
# the generated code costs more than it saves there (the JAX tests of the
# cached colour samplers: 61 -> 51 s; shipped logits, fit and distribution:
# 101 -> 93 s). The programs and their results are the same; the
# convolutions and products run in XLA's precompiled kernels either way.
# Benchmarks and users keep the default.
if os.environ.get("KERAS_BACKEND") == "jax" and "xla_backend_optimization_level" not in (
    os.environ.get("XLA_FLAGS", "")
):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()
# Where the sampler is compiled (TensorFlow, JAX), its loops are unrolled
# over one row and one pixel (KERAS_PIXELCNN_UNROLL, keras_pixelcnn/runtime.py):
# every setting draws the same images (test_pixelcnn_pp.py checks the
# default, 4 x 2, and 2 x 2 against the reference sampler, and the shipped
# PixelCNN++ samples with the default), and a PixelCNN++ sampler's program is
# half the default's: its first call on TensorFlow takes 10 s instead of
# 17.5 s for the tests' 8 x 8 model. Torch runs the loops eagerly, where
# 1 x 1 executes more ops per pixel. The subprocesses the tests start (the
# CLI, the notebook) inherit it.
if os.environ.get("KERAS_BACKEND", "tensorflow") != "torch":
    os.environ.setdefault("KERAS_PIXELCNN_UNROLL", "1x1")

ROOT = Path(__file__).resolve().parents[1]
MNIST_NPZ = (ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()
sys.path.insert(0, str(ROOT))

# Tests run with the runtime users get: the package sets its options (oneDNN
# for TensorFlow, see keras_pixelcnn/runtime.py) before Keras is imported.
import keras_pixelcnn  # noqa: E402,F401


def pytest_collection_modifyitems(config, items):
    """Tests marked `backend_independent` run no Keras backend code: the
    TensorFlow pass of `run_backends.py` runs them, the others skip them."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason="backend-independent: runs in the TensorFlow pass")
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


needs_mnist = pytest.mark.skipif(
    not MNIST_NPZ.exists(), reason=f"real MNIST not found at {MNIST_NPZ}"
)


@pytest.fixture(scope="session")
def mnist_npz():
    if not MNIST_NPZ.exists():
        pytest.skip(f"real MNIST not found at {MNIST_NPZ}")
    return str(MNIST_NPZ)


def make_fake_mnist(n_train=64, n_test=32, seed=0):
    """Digit-like uint8 data in the Keras mnist.npz layout (strokes, not noise)."""
    rng = np.random.default_rng(seed)

    def images(n):
        x = np.zeros((n, 28, 28), dtype=np.uint8)
        for k in range(n):
            r0, c0 = rng.integers(4, 10, size=2)
            r1, c1 = rng.integers(18, 24, size=2)
            x[k, r0:r1, c0 : c0 + 3] = 255  # a vertical bar
            x[k, r0 : r0 + 3, c0:c1] = 200  # a horizontal bar
        return x

    return {
        "x_train": images(n_train),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": images(n_test),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


@pytest.fixture
def fake_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **make_fake_mnist())
    return str(path)


@pytest.fixture
def tiny_model():
    from keras_pixelcnn import build_pixelcnn

    def make(shape=(8, 8, 1), filters=8, blocks=1, seed=0):
        import keras

        keras.utils.set_random_seed(seed)
        return build_pixelcnn(
            input_shape=shape,
            filters=filters,
            num_residual_blocks=blocks,
            input_kernel_size=5,
        )

    return make
