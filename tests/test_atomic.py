"""Atomic outputs: temporary files of killed processes are cleaned up, and
`--overwrite` replaces only files of the type a command writes."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_pixelcnn.atomic import check_writable_file, save_json, save_npy
from keras_pixelcnn.errors import PixelCNNError

pytestmark = pytest.mark.backend_independent


def _killed_writer_temp(tmp_path, name):
    """The temporary file a process killed in the middle of writing
    `tmp_path/name` leaves behind (a real process, SIGKILLed)."""
    code = (
        "import sys, time\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from keras_pixelcnn.atomic import atomic_path\n"
        "with atomic_path(sys.argv[2]) as tmp:\n"
        "    open(tmp, 'wb').write(b'half')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", code, root, str(tmp_path / name)], stdout=subprocess.PIPE, text=True
    )
    tmp = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    return tmp


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    """Bug: a process killed while writing left `.name.XXXX.tmp.ext` behind
    for good. The next write of the same target removes it, and leaves a
    live process's temporary file (here: this process's pid) alone."""
    stale = _killed_writer_temp(tmp_path, "out.npy")
    assert os.path.exists(stale) and os.path.basename(stale).startswith(".out.npy.")
    live = tmp_path / f".out.npy.{os.getpid()}-abcdefgh.tmp.npy"
    live.write_bytes(b"being written")
    old_version = tmp_path / ".out.npy.k2j4_x9q.tmp.npy"  # 0.1.0's names had no pid
    old_version.write_bytes(b"")
    other_target = tmp_path / ".other.npy.1-abcdefgh.tmp.npy"
    other_target.write_bytes(b"")
    save_npy(np.arange(3), tmp_path / "out.npy")
    assert not os.path.exists(stale)
    assert not old_version.exists()
    assert live.exists() and other_target.exists()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.arange(3))


@pytest.mark.parametrize(
    "name, good, kind",
    [
        ("a.png", b"\x89PNG\r\n\x1a\n....", "a PNG image"),
        ("a.npy", b"\x93NUMPY\x01\x00", "a NumPy .npy file"),
        ("a.json", b'{"bits_per_dim": 0.1}', "a JSON file"),
    ],
)
def test_overwrite_replaces_only_a_file_of_the_type_written(tmp_path, name, good, kind):
    path = tmp_path / name
    path.write_bytes(good)
    check_writable_file(path, overwrite=True)  # a file of its type: replaceable
    path.write_bytes(b"my notes, not an output\n")
    with pytest.raises(PixelCNNError, match=f"exists and is not {kind}"):
        check_writable_file(path, overwrite=True)
    path.write_bytes(b"")
    check_writable_file(path, overwrite=True)  # empty: nothing to lose


def test_a_json_output_is_replaced(tmp_path):
    path = tmp_path / "r.json"
    save_json({"a": 1}, path)
    check_writable_file(path, overwrite=True)
    save_json({"a": 2}, path)
    assert path.read_text() == '{\n  "a": 2\n}\n'
