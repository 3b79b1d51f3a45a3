"""Atomic file output: write to a temporary name beside the target, then rename.

A temporary name carries the writing process's id
(`.{name}.{pid}-{random}.tmp{suffix}`), so the next write of the same target
removes what a killed process left behind (`remove_stale_temps`) and never
the temporary file of a process that is still writing.
"""

import contextlib
import glob
import json
import os
import re
import shutil
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


# What a file this package writes begins with, by extension: `--overwrite`
# replaces only a file of the type the option writes.
_SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".npy": b"\x93NUMPY", ".keras": b"PK\x03\x04"}
_KINDS = {".png": "a PNG image", ".npy": "a NumPy .npy file", ".keras": "a .keras model"}


def is_replaceable_file(path):
    """True if the existing file `path` is of the type its extension names
    (PNG, .npy, .keras, JSON), or empty, or of an extension not checked."""
    suffix = os.path.splitext(path)[1].lower()
    if os.path.getsize(path) == 0:
        return True
    with open(path, "rb") as f:
        if suffix in _SIGNATURES:
            return f.read(len(_SIGNATURES[suffix])) == _SIGNATURES[suffix]
        if suffix == ".json":
            try:
                json.loads(f.read().decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is one
                return False
    return True


def check_writable_file(path, overwrite=True):
    """Raises `PixelCNNError` unless `path` can be created (before any work);
    an existing file is replaced only with `overwrite`, and only if it is of
    the type its extension names (`is_replaceable_file`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise PixelCNNError(f"output path {path} is a directory")
    check_output_directory(path)
    if os.path.exists(path):
        if not overwrite:
            raise UsageError(f"{path} already exists (pass --overwrite to replace it)")
        if not is_replaceable_file(path):
            suffix = os.path.splitext(path)[1].lower()
            kind = _KINDS.get(suffix, "a JSON file")
            raise PixelCNNError(
                f"{path} exists and is not {kind}; --overwrite replaces only a file "
                "of the type it writes, so it is left as it is"
            )


# `.{pid}-{random}.tmp…`; or `.{random}.tmp…` (8 characters, no process id),
# the names earlier versions gave, whose leftovers are all stale by now.
_TEMP = re.compile(r"\.(?:(\d+)-[a-z0-9_]+|[a-z0-9_]{8})\.(?:old\.)?tmp")


def temp_prefix(path):
    """The start of this process's temporary names for `path`."""
    return f".{os.path.basename(path)}.{os.getpid()}-"


def remove_stale_temps(path):
    """Removes the temporary files and directories that processes which no
    longer run left beside `path` (killed before they could clean up)."""
    directory = os.path.dirname(os.path.abspath(path))
    stem = f".{os.path.basename(path)}."
    for candidate in glob.glob(os.path.join(glob.escape(directory), glob.escape(stem) + "*tmp*")):
        match = _TEMP.match(os.path.basename(candidate)[len(stem) - 1 :])
        if match is None or (match.group(1) and _alive(int(match.group(1)))):
            continue
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(candidate)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=f".tmp{suffix}", dir=directory)
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
