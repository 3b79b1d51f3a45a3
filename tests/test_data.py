import os

import numpy as np
import pytest
from conftest import make_fake_mnist, needs_mnist

from keras_pixelcnn.data import binarize, load_mnist, load_npz
from keras_pixelcnn.errors import PixelCNNError, UsageError

pytestmark = pytest.mark.backend_independent  # see conftest.py


def test_binarize_threshold_is_127_5():
    x = np.array([[[0, 127, 128, 255]]], dtype=np.uint8)
    b = binarize(x)
    assert b.shape == (1, 1, 4, 1) and b.dtype == np.float32
    np.testing.assert_array_equal(b[0, 0, :, 0], [0, 0, 1, 1])


def test_load_fake_npz_splits(fake_npz):
    mnist = load_mnist(fake_npz, validation_size=16)
    assert len(mnist.train) == 48 and len(mnist.validation) == 16 and len(mnist.test) == 32
    assert mnist.train.images.shape[1:] == (28, 28, 1)
    assert set(np.unique(mnist.train.images)) <= {0.0, 1.0}
    raw = np.load(fake_npz)
    np.testing.assert_array_equal(mnist.validation.images[..., 0], raw["x_train"][48:] > 127.5)


def _write(tmp_path, **overrides):
    arrays = make_fake_mnist()
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"x_test": None}, "lacks the keys x_test"),
        (
            {"x_train": np.zeros((10, 28, 27), np.uint8), "y_train": np.zeros(10, np.uint8)},
            r"x_train has shape \(10, 28, 27\) but x_test",
        ),
        (
            {"x_train": np.zeros((64, 28, 28, 2), np.uint8)},
            r"x_train has shape \(64, 28, 28, 2\), expected \(n, h, w\) or \(n, h, w, c\)",
        ),
        (
            {"x_train": np.zeros((64, 28, 28), np.float32)},
            "x_train has dtype float32, expected uint8",
        ),
        ({"y_train": np.zeros((3,), np.uint8)}, "y_train has shape"),
        ({"y_test": np.full((32,), -1, np.int64)}, "integer labels >= 0"),
    ],
)
def test_bad_npz_contents(tmp_path, overrides, message):
    with pytest.raises(PixelCNNError, match=message):
        load_npz(_write(tmp_path, **overrides))


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(PixelCNNError, match="does not exist"):
        load_npz(tmp_path / "nope.npz")
    text = tmp_path / "mnist.npz"
    text.write_text("not an archive")
    with pytest.raises(PixelCNNError, match="not a readable .npz"):
        load_npz(text)
    with pytest.raises(PixelCNNError, match="is a directory"):
        load_npz(tmp_path)
    single = tmp_path / "array.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(PixelCNNError, match="not an .npz archive"):
        load_npz(single)


def test_validation_size_must_fit(fake_npz):
    """A command-line mistake: exit code 2 (bug: 1, a bad file's code)."""
    with pytest.raises(UsageError, match="--validation-size 5000 must be below the data's 64"):
        load_mnist(fake_npz)


def test_tfds_failure_names_the_data_option(monkeypatch, tmp_path):
    """Not prepared and the host unreachable: the probe answers at once and
    tfds is never asked to download (it would retry for minutes)."""
    import tensorflow_datasets as tfds

    from keras_pixelcnn import data

    real_load, downloads = tfds.load, []

    def load(*args, download=True, **kwargs):
        downloads.append(download)
        return real_load(*args, download=download, **dict(kwargs, data_dir=str(tmp_path)))

    monkeypatch.setattr(tfds, "load", load)
    monkeypatch.setattr(data, "TFDS_MNIST_URL", "http://127.0.0.1:9/mnist/")  # nothing listens
    with pytest.raises(
        PixelCNNError, match=r"127\.0\.0\.1:9/mnist/ is unreachable.*pass --data PATH"
    ):
        load_mnist(None)
    # bug: tfds asked to download, which retries for minutes
    assert downloads == [False]  # only the look for a prepared copy


def test_probe_tells_an_answering_host_from_a_dead_one():
    import http.server
    import threading

    from keras_pixelcnn.data import probe_download_host

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/mnist/"
        assert probe_download_host(url, timeout=5) is None  # any HTTP answer counts
    finally:
        server.shutdown()
        server.server_close()
    assert "unreachable" in probe_download_host(url, timeout=5)  # the port is closed now


TFDS_DOWNLOAD = r"""
import sys, tempfile
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader
downloader.MAX_RETRIES = 0  # fail at the first refused connection, not after minutes
try:
    tfds.builder("mnist", data_dir=tempfile.mkdtemp()).download_and_prepare()
except BaseException as e:
    chain = []
    while e is not None:
        chain.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    print("\n".join(chain))
    sys.exit(1)
print("DOWNLOADED")
"""


def test_tfds_reaches_the_download_on_this_install():
    """The import bug of tensorflow-datasets 4.9 (importlib_resources): the
    download must fail only for want of the network, never on an import.
    A proxy that refuses every connection stands for 'offline' everywhere."""
    import subprocess
    import sys

    env = dict(
        os.environ,
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
        NO_PROXY="",
        no_proxy="",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = subprocess.run(
        [sys.executable, "-c", TFDS_DOWNLOAD], capture_output=True, text=True, env=env, timeout=300
    )
    out = result.stdout
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "ImportError" not in out and "ModuleNotFoundError" not in out, out
    assert "127.0.0.1" in out and ("ProxyError" in out or "ConnectionError" in out), out


def test_tfds_path_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        mnist = load_mnist(None, validation_size=4)
    assert len(mnist.train) == 8 and len(mnist.validation) == 4
    assert mnist.test.images.shape[1:] == (28, 28, 1)
    assert set(np.unique(mnist.test.images)) <= {0.0, 1.0}


@needs_mnist
def test_real_mnist_checks(mnist_npz):
    mnist = load_mnist(mnist_npz)
    assert (len(mnist.train), len(mnist.validation), len(mnist.test)) == (55000, 5000, 10000)
    assert list(mnist.test.labels[:5]) == [7, 2, 1, 0, 4]
    # about 13% of binarized MNIST pixels are on
    assert 0.10 < mnist.train.images.mean() < 0.16


def test_train_without_data_offline_is_one_line_within_seconds(tmp_path):
    """The README's default data path, offline (a proxy that refuses every
    connection), with no prepared tfds copy: one line naming --data PATH,
    exit 1, no run directory, in seconds rather than tfds's minutes of retries."""
    import subprocess
    import sys
    import time

    from helpers import ROOT

    proxy = "http://127.0.0.1:9"
    env = dict(
        os.environ,
        HTTPS_PROXY=proxy,
        HTTP_PROXY=proxy,
        https_proxy=proxy,
        http_proxy=proxy,
        NO_PROXY="",
        no_proxy="",
        TFDS_DATA_DIR=str(tmp_path / "tfds"),
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "train", "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: could not load MNIST"), lines
    assert "pass --data PATH" in lines[0] and "unreachable" in lines[0]
    assert not (tmp_path / "run").exists()
    assert seconds < 120  # tfds alone retries for about 3.5 minutes
