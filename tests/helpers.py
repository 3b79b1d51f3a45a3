"""Backend-specific test helpers (gradients); the library itself uses keras.ops."""

import atexit
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def input_gradient(fn, x, index):
    """d fn(x)[index] / d x for a NumPy input x, on the current backend."""
    backend = keras.backend.backend()
    x = np.asarray(x, dtype="float32")
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = fn(xt)[index]
        return tape.gradient(y, xt).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v)[index])(x))
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        fn(xt)[index].backward()
        return xt.grad.numpy()
    raise RuntimeError(backend)


def bernoulli_nats_per_pixel64(model, images, labels=None):
    """The mean NLL in nats/pixel of 0/1 `images` under a Bernoulli model's
    logits, in float64 (independent of the library's evaluation)."""
    inputs = images if labels is None else [images, labels]
    logits = np.asarray(model.predict_on_batch(inputs), "float64")
    return float(np.mean(np.logaddexp(0, logits) - images * logits))


def read_png(path):
    """The PNG at `path` decoded to uint8 RGB `(h, w, 3)`; a file that is not
    a complete PNG fails here (every row is decoded), not only its magic bytes."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG", image.format
        image.load()
        return np.asarray(image.convert("RGB"))


def assert_picture(path, min_height, min_width):
    """A complete PNG of at least that size with something drawn in it."""
    rgb = read_png(path)
    assert rgb.shape[0] >= min_height and rgb.shape[1] >= min_width, rgb.shape
    assert len(np.unique(rgb)) > 1, "a blank picture"
    return rgb


def grid_cells(png, n_rows, n_cols, size, scale=4, pad=2, top=0):
    """The images drawn in a grid PNG written by `figures.save_grid` (values
    in [0, 1], one per image pixel: the centre of its scale × scale block);
    `top`: the title's margin above the grid."""
    grey = read_png(png)[..., 0] / 255.0
    step = (size + pad) * scale
    assert grey.shape == (
        (n_rows * (size + pad) + pad) * scale + top,
        (n_cols * (size + pad) + pad) * scale,
    )
    cells = []
    for r in range(n_rows):
        for c in range(n_cols):
            y, x = top + pad * scale + r * step + scale // 2, pad * scale + c * step + scale // 2
            cells.append(grey[y : y + size * scale : scale, x : x + size * scale : scale])
    return np.stack(cells)


def run_python(code, env=None, timeout=300, unset=()):
    """Runs `code` in a fresh interpreter with the same backend (without the
    variables named in `unset`); returns the result."""
    full_env = dict(os.environ)
    full_env.setdefault("KERAS_BACKEND", keras.backend.backend())
    full_env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if env:
        full_env.update(env)
    for name in unset:
        full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_FORKS = []


def cli_forks():
    """The pytest process's warm interpreter for CLI runs (tests/cli_forks.py)."""
    if not _FORKS:
        from cli_forks import CLIForks

        env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(), TF_CPP_MIN_LOG_LEVEL="3")
        _FORKS.append(CLIForks(env))
        atexit.register(_FORKS[0].close)
    return _FORKS[0]


def run_cli(*args, env=None, timeout=300, cwd=ROOT, fresh=False):
    """`python cli.py *args` in its own process: a child forked from a warm
    interpreter that has imported Keras (the import is most of a short
    command's time), or a new interpreter with `fresh=True`, with `--backend`
    or with an environment that must act before Keras is imported."""
    args = [str(a) for a in args]
    backend = keras.backend.backend()
    same_env = all(k == "KERAS_BACKEND" and v == backend for k, v in (env or {}).items())
    if not fresh and same_env and "--backend" not in args:
        return cli_forks().run(args, cwd=cwd, timeout=timeout)
    full_env = dict(os.environ)
    full_env.setdefault("KERAS_BACKEND", backend)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
