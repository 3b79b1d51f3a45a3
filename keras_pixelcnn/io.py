"""Atomic file output: write to a temporary name beside the target, then rename."""

import contextlib
import json
import os
import tempfile

from keras_pixelcnn.errors import PixelCNNError, UsageError


def check_output_directory(path):
    """Raises `PixelCNNError` unless the directory that will hold `path`
    exists and is writable."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(parent):
        raise PixelCNNError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PixelCNNError(f"output directory {parent} is not writable")
    return parent


def check_writable_file(path, overwrite=True):
    """Raises `PixelCNNError` unless `path` can be created (before any work)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise PixelCNNError(f"output path {path} is a directory")
    check_output_directory(path)
    if not overwrite and os.path.exists(path):
        raise UsageError(f"{path} already exists (pass --overwrite to replace it)")


def check_writable_dir(path):
    """Raises `PixelCNNError` unless directory `path` exists or can be made."""
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise PixelCNNError(f"{probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PixelCNNError(f"directory {probe} is not writable")


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yields a temporary path beside `path`; renames it to `path` on success.

    On an exception the temporary file is removed and `path` is untouched.
    `suffix` defaults to the extension of `path` (Keras needs `.keras`).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f".tmp{suffix}", dir=directory
    )
    os.close(fd)
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def save_json(obj, path):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")


def save_npy(array, path):
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def save_model(model, path):
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
