"""MNIST from tensorflow-datasets or a local Keras-format `mnist.npz`, binarized.

Binarization is `pixel > 127.5` on uint8 data, giving float32 images in {0, 1}
of shape `(n, 28, 28, 1)`. The last `VALIDATION_SIZE` (5,000) images of the
official training set are the validation split; the full 10,000-image test
split is kept for the reported test NLL.
"""

import contextlib
import dataclasses
import logging
import os
import zipfile

import numpy as np

from keras_pixelcnn.errors import PixelCNNError

VALIDATION_SIZE = 5000
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


@dataclasses.dataclass
class Split:
    images: np.ndarray  # float32 (n, 28, 28, 1) in {0, 1}
    labels: np.ndarray  # int32 (n,)

    def __len__(self):
        return len(self.images)

    def take(self, n):
        return Split(self.images[:n], self.labels[:n])


@dataclasses.dataclass
class MNIST:
    train: Split
    validation: Split
    test: Split


def binarize(images):
    """uint8 images (n, h, w) or (n, h, w, 1) → float32 (n, h, w, 1) in {0, 1}."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return (images > 127.5).astype("float32")


def load_npz(path):
    """Loads and validates a Keras-format `mnist.npz`; returns the 4 raw arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PixelCNNError(f"data file {path} does not exist")
    if os.path.isdir(path):
        raise PixelCNNError(f"data path {path} is a directory, expected an mnist.npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise PixelCNNError(f"{path} is not an .npz archive (a single .npy array?)")
        with loaded as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise PixelCNNError(
                    f"{path} lacks the keys {', '.join(sorted(missing))} of a Keras mnist.npz"
                )
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except PixelCNNError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise PixelCNNError(f"{path} is not a readable .npz file ({type(e).__name__})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise PixelCNNError(f"x_{split} has shape {x.shape}, expected (n, 28, 28)")
        if x.dtype != np.uint8:
            raise PixelCNNError(f"x_{split} has dtype {x.dtype}, expected uint8")
        if y.ndim != 1 or len(y) != len(x):
            raise PixelCNNError(f"y_{split} has shape {y.shape}, expected ({len(x)},) labels")
        if y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES)):
            raise PixelCNNError(f"y_{split} must hold integer labels 0-9")
        if len(x) == 0:
            raise PixelCNNError(f"x_{split} is empty")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


# Where tensorflow-datasets downloads MNIST from (tfds's mnist.py `_MNIST_URL`).
TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
PROBE_TIMEOUT = 5.0  # seconds


def _offline_error(reason):
    return PixelCNNError(
        f"could not load MNIST with tensorflow-datasets ({reason}); "
        "pass --data PATH to a local mnist.npz"
    )


def probe_download_host(url=None, timeout=PROBE_TIMEOUT):
    """None if `url`'s host (default: tfds's MNIST host) answers within
    `timeout` seconds, else why not.

    tensorflow-datasets retries a failed download for minutes; this answers
    in seconds. Any HTTP answer counts as reachable; proxies from the
    environment are used, as tfds uses them.
    """
    import urllib.error
    import urllib.request

    url = url or TFDS_MNIST_URL
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # the host answered
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return f"{url} is unreachable: {reason}"
    return None


@contextlib.contextmanager
def _quiet_absl():
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_tfds(data_dir=None):
    """Loads MNIST with tensorflow-datasets (downloads on first use).

    A copy tfds already prepared is used as it is. Otherwise the download
    host is probed first, so that offline this fails within seconds (tfds
    itself retries for minutes) with a message that names `--data PATH`.
    """
    try:
        import tensorflow_datasets as tfds

        def load(download):
            return tfds.load(
                "mnist",
                split=["train", "test"],
                as_supervised=True,
                data_dir=data_dir,
                download=download,
            )

        try:
            with _quiet_absl():  # tfds warns about the copy it looks for
                train, test = load(download=False)  # a prepared copy
        except Exception:  # not prepared: download it, if the host answers
            reason = probe_download_host()
            if reason:
                raise _offline_error(reason) from None
            train, test = load(download=True)
        (x_train, y_train), (x_test, y_test) = (
            next(iter(tfds.as_numpy(ds.batch(100_000)))) for ds in (train, test)
        )
    except PixelCNNError:
        raise
    except Exception as e:  # a failed download or preparation
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise _offline_error(reason) from None
    return x_train[..., 0], y_train, x_test[..., 0], y_test


def load_raw(path=None):
    """`(x_train, y_train, x_test, y_test)` uint8/int arrays from a Keras
    `mnist.npz` at `path`, or from tensorflow-datasets when `path` is None."""
    return load_npz(path) if path else load_tfds()


def load_mnist(path=None, validation_size=VALIDATION_SIZE):
    """Returns binarized MNIST as train / validation / test `Split`s.

    Args:
        path: str or None, a Keras-format `mnist.npz`; None uses tfds.
        validation_size: int, the number of training images held out (the
            last ones of the official training set).
    """
    x_train, y_train, x_test, y_test = load_raw(path)
    if not 0 <= validation_size < len(x_train):
        raise PixelCNNError(
            f"validation size {validation_size} must be below the {len(x_train)} training images"
        )
    images, labels = binarize(x_train), y_train.astype("int32")
    cut = len(images) - validation_size
    return MNIST(
        train=Split(images[:cut], labels[:cut]),
        validation=Split(images[cut:], labels[cut:]),
        test=Split(binarize(x_test), y_test.astype("int32")),
    )


def load_test_split(path, image_shape, limit=None):
    """The binarized test split (first `limit` images), checked against a
    model's `image_shape`; the training split rides along (sample quality
    uses real training digits as its reference)."""
    mnist = load_mnist(path, validation_size=0)
    if tuple(mnist.test.images.shape[1:]) != tuple(image_shape):
        raise PixelCNNError(
            f"the model's input shape {tuple(image_shape)} does not match the data's image "
            f"shape {tuple(mnist.test.images.shape[1:])}"
        )
    if limit is not None:
        mnist.test = mnist.test.take(limit)
    return mnist
