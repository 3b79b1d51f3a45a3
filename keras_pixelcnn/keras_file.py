"""`.keras` files: saved atomically for every backend's fast path, loaded
with clear errors for every kind of bad file."""

import os
import zipfile

from keras_pixelcnn.atomic import atomic_path
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.errors import reason as error_reason
from keras_pixelcnn.models.contract import check_pixel_model
from keras_pixelcnn.runtime import (
    discarded_initial_weights,
    save_jit_compile_auto,
    use_fastest_jit_compile,
)


def load_model(path):
    """Loads a keras-pixelcnn `.keras` model (safe mode on) or raises
    `PixelCNNError` naming what is wrong with the file.

    The model must map images `(batch, h, w, c)` (and, for conditional
    models, integer labels) to per-pixel distribution parameters. Its
    `jit_compile` is set to the fastest choice of the current backend
    (`runtime.use_fastest_jit_compile`), whatever backend saved it.
    """
    import keras

    path = os.fspath(path)
    if not os.path.exists(path):
        raise PixelCNNError(f"model file {path} does not exist")
    if os.path.isdir(path):
        raise PixelCNNError(f"model path {path} is a directory, expected a .keras file")
    if not path.endswith(".keras"):
        raise PixelCNNError(f"model file {path} must end in .keras")
    if os.path.getsize(path) == 0:
        raise PixelCNNError(f"model file {path} is empty")
    if not zipfile.is_zipfile(path):
        raise PixelCNNError(f"model file {path} is not a .keras archive (corrupt or truncated)")
    try:
        with discarded_initial_weights():  # the file's weights replace them
            model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # Keras raises many types for bad archives
        reason = error_reason(e)
        raise PixelCNNError(f"could not load model {path}: {reason}") from None
    check_pixel_model(model, path)
    use_fastest_jit_compile(model)
    return model


def save_model(model, path):
    """Saves `model` as a `.keras` file (atomically) whose compile settings
    say `jit_compile="auto"`: each backend that loads it picks its fast path."""
    save_jit_compile_auto(model)
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
