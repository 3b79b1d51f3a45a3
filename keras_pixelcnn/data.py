"""The training data: a tensorflow-datasets image dataset by name (MNIST by
default), a local `.npz` of uint8 `x_train`/`x_test` of any `(n, h, w[, c])`
shape (Keras's `mnist.npz` layout), or a folder of image files
(`image_folder.py`), binarized or at its 256 levels. `MNIST` holds the three
splits of any of them (it is named after the first dataset it held).

The binarizations (`MNIST.binarization`):

- ``"threshold"`` (default for 2 levels): `pixel > 127.5` on uint8 data,
  float32 images in {0, 1} of shape `(n, h, w, c)`.
- ``"dynamic"``: the stochastic binarization of the literature, each pixel 1
  with probability value / 255. The train and test splits keep the
  intensities in [0, 1] (`intensities`); training draws a fresh binarization
  every epoch with `binarize_dynamic(train, seed, epoch)`, the evaluation
  averages the exact NLL over seeded draws of the test images. The
  validation split is drawn once, with a fixed seed, so that validation
  losses compare across epochs and runs.
- ``"none"``: `levels=256`, the uint8 values 0..255 as float32, for
  256-level models (PixelCNN++'s discretized logistic mixture).
- ``"static"``: Larochelle's fixed binarized MNIST (tfds `binarized_mnist`,
  50k/10k/10k, no labels), loaded with `--data binarized_mnist`.

The last `VALIDATION_SIZE` (5,000) images of the training set are the
validation split (a folder splits whole files by a seeded rule instead); the
whole test split is kept for the reported test NLL.
"""

import contextlib
import dataclasses
import logging
import os
import zipfile

import numpy as np

from keras_pixelcnn import image_folder
from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.errors import reason as error_reason

VALIDATION_SIZE = 5000
BINARIZATIONS = ("threshold", "dynamic")
LEVELS = (2, 256)
# The per-pixel likelihoods (keras_pixelcnn.likelihoods), named here, free of
# Keras, for the command line: bernoulli for 2 levels, logistic-mixture for 256.
LIKELIHOODS = ("bernoulli", "logistic-mixture")
BINARIZED_MNIST = "binarized_mnist"  # the --data name of tfds's static binarized MNIST
# Random streams of the dynamic binarization: a draw is a pure function of
# (seed, index, stream), and the three uses never share one.
TRAIN_STREAM, VALIDATION_STREAM, TEST_STREAM = 0xB17, 0xB18, 0xB19
VALIDATION_DRAW_SEED = 0  # the validation split's one draw, the same in every run
DESCRIPTIONS = {
    "threshold": "uint8 pixel > 127.5",
    "dynamic": "stochastic: pixel ~ Bernoulli(value / 255), a fresh draw per training epoch "
    "(a function of seed and epoch); validation drawn once with a fixed seed",
    "none": "256 levels: the uint8 values 0..255",
    "static": "Larochelle's fixed binarized MNIST (tfds binarized_mnist, 50k/10k/10k)",
}
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
DEFAULT_IMAGE_SIZE = 32  # the crops of a folder of images
# How a folder's files are split (data.load_folder): fixed, so that training
# and a later `evaluate` hold out the same files.
FOLDER_SPLIT = {
    "seed": 0,
    "rule": "whole files: the sorted paths permuted by numpy.random.default_rng(0); the first "
    "max(2, n // 10) are the test files, the next max(1, n // 10) the validation files, the "
    "rest train. Validation and test images: the non-overlapping grid tiles of their files; "
    "training images: random crops drawn afresh every epoch from (seed, epoch)",
}


@dataclasses.dataclass
class Split:
    images: np.ndarray  # float32 (n, h, w, c): {0, 1}, intensities or 0..255
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
    binarization: str = "threshold"  # train/test hold intensities when "dynamic"
    labeled: bool = True  # binarized_mnist has no labels
    levels: int = 2  # 256: images hold the values 0..255
    num_classes: int | None = NUM_CLASSES  # the labels' range (None: unlabeled)
    photos: object = None  # a folder's training files (`image_folder.ImageFolder`), else None
    files: dict | None = None  # a folder's split: the rule and the files of each part

    def __post_init__(self):
        if self.levels == 256:
            self.binarization = "none"


def intensities(images):
    """uint8 images (n, h, w) or (n, h, w, 1) → float32 (n, h, w, 1) in [0, 1]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return images.astype("float32") / np.float32(255.0)


def binarize_dynamic(images, seed, draw, stream=TRAIN_STREAM):
    """One stochastic binarization of `images` (intensities in [0, 1]): each
    pixel is 1 with probability equal to its intensity.

    A pure function of `(seed, draw, stream)`: the training epoch `e` of a run
    with seed `s` sees `binarize_dynamic(train, s, e)`, in every run and after
    every resume.
    """
    rng = np.random.default_rng([int(seed), int(draw), int(stream)])
    uniforms = rng.random(images.shape, dtype=np.float32)
    return (uniforms < images).astype("float32")


def binarize(images):
    """uint8 images (n, h, w) or (n, h, w, c) → float32 (n, h, w, c) in {0, 1}:
    every channel thresholded at 127.5."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return (images > 127.5).astype("float32")


def load_npz(path):
    """Loads and validates an `.npz` in Keras's `mnist.npz` format: uint8
    images `x_train`, `x_test` of one shape `(n, h, w)` or `(n, h, w, c)`,
    optional integer labels `y_train`, `y_test`; returns the 4 arrays (a
    missing label array as None)."""
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
            missing = {"x_train", "x_test"} - set(f.files)
            if missing:
                raise PixelCNNError(
                    f"{path} lacks the keys {', '.join(sorted(missing))} (x_train and x_test, "
                    "optionally y_train and y_test, as in Keras's mnist.npz)"
                )
            keys = ("x_train", "y_train", "x_test", "y_test")
            arrays = {k: f[k] for k in keys if k in f.files}
    except PixelCNNError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise PixelCNNError(f"{path} is not a readable .npz file ({type(e).__name__})") from None
    shapes = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays.get(f"y_{split}")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise PixelCNNError(
                f"x_{split} has shape {x.shape}, expected (n, h, w) or (n, h, w, c) images "
                "with c = 1 or 3"
            )
        if x.dtype != np.uint8:
            raise PixelCNNError(f"x_{split} has dtype {x.dtype}, expected uint8")
        if y is not None and (y.ndim != 1 or len(y) != len(x)):
            raise PixelCNNError(f"y_{split} has shape {y.shape}, expected ({len(x)},) labels")
        if y is not None and (y.dtype.kind not in "iu" or (len(y) and y.min() < 0)):
            raise PixelCNNError(f"y_{split} must hold integer labels >= 0")
        if len(x) == 0:
            raise PixelCNNError(f"x_{split} is empty")
        shapes[split] = x.shape[1:] if x.ndim == 4 else (*x.shape[1:], 1)
    if shapes["train"] != shapes["test"]:
        raise PixelCNNError(
            f"x_train has shape {arrays['x_train'].shape} but x_test "
            f"{arrays['x_test'].shape}: the images must have one shape"
        )
    return tuple(arrays.get(k) for k in ("x_train", "y_train", "x_test", "y_test"))


# Where tensorflow-datasets downloads MNIST from (tfds's mnist.py `_MNIST_URL`).
TFDS_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
PROBE_TIMEOUT = 5.0  # seconds


# Where tensorflow-datasets finds prepared datasets (any other dataset is probed here).
TFDS_GCS_URL = "https://storage.googleapis.com/tfds-data/"

# tfds's binarized_mnist.py `_URL`.
BINARIZED_MNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"


def _offline_error(reason, name="MNIST"):
    if name == BINARIZED_MNIST:
        advice = "it needs the network once; offline, --data mnist.npz --binarize dynamic"
    elif name == "MNIST":
        advice = "pass --data PATH to a local mnist.npz"
    else:
        advice = "pass --data PATH to a local .npz or a folder of images"
    return PixelCNNError(f"could not load {name} with tensorflow-datasets ({reason}); {advice}")


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


def _tfds_splits(name, splits, url, data_dir=None, shown="MNIST"):
    """The `splits` of tensorflow-datasets' `name`, each as a dict of whole
    NumPy arrays (feature name: array).

    A copy tfds already prepared is used as it is. Otherwise `url`'s host is
    probed first, so that offline this fails within seconds (tfds itself
    retries for minutes) with a message that says what to do instead.
    """
    try:
        import tensorflow_datasets as tfds

        def load(download):
            return tfds.load(name, split=splits, data_dir=data_dir, download=download)

        try:
            with _quiet_absl():  # tfds warns about the copy it looks for
                loaded = load(download=False)  # a prepared copy
        except Exception:  # not prepared: download it, if the host answers
            reason = probe_download_host(url)
            if reason:
                raise _offline_error(reason, shown) from None
            loaded = load(download=True)
        # whole splits as one batch each; not `tfds.load(batch_size=-1)`, which
        # aborts the process on tfds's mock data (tfds 4.9), the copy tests use
        return [next(iter(tfds.as_numpy(split.batch(1 << 20)))) for split in loaded]
    except PixelCNNError:
        raise
    except Exception as e:  # a failed download or preparation
        raise _offline_error(error_reason(e, 160), shown) from None


def load_tfds(data_dir=None):
    """Loads MNIST with tensorflow-datasets (downloads on first use; offline,
    one line that names `--data PATH`)."""
    train, test = _tfds_splits("mnist", ["train", "test"], TFDS_MNIST_URL, data_dir)
    return train["image"][..., 0], train["label"], test["image"][..., 0], test["label"]


def is_tfds_name(data):
    """True when `--data` names a tensorflow-datasets dataset (`cifar10`,
    `fashion_mnist`, `svhn_cropped`, …) rather than a local file."""
    text = os.fspath(data)
    return (
        not os.path.exists(text)
        and not text.lower().endswith(".npz")
        and text[:1].isalpha()
        and text.count("/") <= 1
        and all(c.isalnum() or c in "_/.:-" for c in text)
    )


def load_tfds_images(name, data_dir=None):
    """The train and test splits of any tensorflow-datasets image dataset
    with an `image` feature (and an optional `label`), as `load_npz`'s four
    arrays (downloaded on first use; offline, one line that names
    `--data PATH`)."""
    train, test = _tfds_splits(name, ["train", "test"], TFDS_GCS_URL, data_dir, shown=name)
    for split in (train, test):
        if "image" not in split:
            raise PixelCNNError(f"tensorflow-datasets' {name} has no `image` feature")
    labels = [split.get("label") for split in (train, test)]
    if any(y is not None and y.ndim != 1 for y in labels):
        labels = [None, None]
    return train["image"], labels[0], test["image"], labels[1]


def load_raw(path=None):
    """`(x_train, y_train, x_test, y_test)` uint8/int arrays from an `.npz` at
    `path`, from tensorflow-datasets' dataset called `path`, or its MNIST when
    `path` is None."""
    if not path or os.fspath(path) == "mnist":
        return load_tfds()
    if is_tfds_name(path):
        return load_tfds_images(os.fspath(path))
    return load_npz(path)


def check_binarization(binarization):
    if binarization not in BINARIZATIONS:
        raise UsageError(
            f"unknown binarization {binarization!r}; choose one of {', '.join(BINARIZATIONS)}"
        )


def load_mnist(
    path=None,
    validation_size=VALIDATION_SIZE,
    binarization="threshold",
    levels=2,
    image_size=None,
    channels=None,
):
    """Returns binarized MNIST as train / validation / test `Split`s.

    Args:
        path: str or None, a Keras-format `mnist.npz`; None uses tfds;
            `"binarized_mnist"` loads the static binarized MNIST with tfds
            (its own validation split; `validation_size` is ignored).
        validation_size: int, the number of training images held out (the
            last ones of the official training set).
        binarization: str, `"threshold"` or `"dynamic"` (see the module
            docstring). With `"dynamic"` the train and test splits hold
            intensities in [0, 1], not binary images.
        levels: int, 2 (binarized) or 256 (the uint8 values 0..255 as
            float32; `binarization` must be left at its default).
        image_size: int or None, the crop size of a folder of images
            (`load_folder`; default `DEFAULT_IMAGE_SIZE`).
        channels: 1, 3 or None, what a folder's files are converted to
            (None: their own channels, which must then agree).

    A `path` that is a folder loads its image files (`load_folder`); an
    `.npz` may hold images of any one shape `(n, h, w[, c])` (`load_npz`).
    """
    check_binarization(binarization)
    if levels not in LEVELS:
        raise UsageError(f"--levels must be 2 or 256, got {levels}")
    if levels == 256 and binarization != "threshold":
        raise UsageError("--binarize applies to --levels 2 only")
    if path == BINARIZED_MNIST and not os.path.exists(path):
        if binarization == "dynamic":
            raise UsageError(
                "binarized_mnist is binarized already (static); drop --binarize dynamic"
            )
        if levels == 256:
            raise UsageError("binarized_mnist has 2 levels; drop --levels 256")
        return load_binarized_mnist()
    if path and os.path.isdir(path):
        size = image_size or DEFAULT_IMAGE_SIZE
        return load_folder(path, size, levels, binarization, channels)
    for name, value in (("--image-size", image_size), ("--channels", channels)):
        if value is not None:
            raise UsageError(f"{name} applies to a folder of images (--data FOLDER)")
    x_train, y_train, x_test, y_test = load_raw(path)
    labeled = y_train is not None and y_test is not None
    if not labeled:
        y_train, y_test = np.zeros(len(x_train), "int32"), np.zeros(len(x_test), "int32")
    x_train, x_test = (x if x.ndim == 4 else x[..., None] for x in (x_train, x_test))
    if not 0 <= validation_size < len(x_train):
        raise UsageError(
            f"--validation-size {validation_size} must be below the data's "
            f"{len(x_train)} training images"
        )
    labels = y_train.astype("int32")
    cut = len(x_train) - validation_size
    if levels == 256:
        images, test = x_train.astype("float32"), x_test.astype("float32")
        validation, binarization = images[cut:], "none"
    elif binarization == "dynamic":
        images, test = intensities(x_train), intensities(x_test)
        validation = binarize_dynamic(images[cut:], VALIDATION_DRAW_SEED, 0, VALIDATION_STREAM)
    else:
        images, test = binarize(x_train), binarize(x_test)
        validation = images[cut:]
    return MNIST(
        train=Split(images[:cut], labels[:cut]),
        validation=Split(validation, labels[cut:]),
        test=Split(test, y_test.astype("int32")),
        binarization=binarization,
        labeled=labeled,
        levels=levels,
        # digits: 10 classes, also when a small sample lacks some
        num_classes=max(NUM_CLASSES, int(max(y_train.max(), y_test.max())) + 1),
    )


def load_folder(path, image_size, levels=256, binarization="threshold", channels=None):
    """A folder of image files (`image_folder.py`) as train / validation /
    test crops of `image_size`: whole files split by the fixed seeded rule
    (`FOLDER_SPLIT`), validation and test the grid tiles of their files,
    training random crops drawn afresh every epoch (`epoch_split`). At
    `levels=2` every channel is thresholded at 127.5."""
    if binarization == "dynamic":
        raise UsageError("--binarize dynamic applies to MNIST; drop it for a folder of images")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise UsageError(f"--image-size must be a positive integer, got {image_size}")
    folder = image_folder.load_folder(path, channels, min_size=image_size)
    n = len(folder.paths)
    test, validation = max(2, n // 10), max(1, n // 10)
    parts = image_folder.split_files(n, FOLDER_SPLIT["seed"], test, validation)
    train, valid, held_out = (folder.subset(index) for index in parts)
    quantize = binarize if levels == 2 else (lambda x: x)
    splits = [
        Split(quantize(x), y)
        for x, y in (
            image_folder.random_crops(train, image_size, 0, 0),  # epoch_split redraws them
            image_folder.grid_crops(valid, image_size),
            image_folder.grid_crops(held_out, image_size),
        )
    ]
    return MNIST(
        *splits,
        binarization="threshold" if levels == 2 else "none",
        labeled=bool(folder.classes),
        levels=levels,
        num_classes=len(folder.classes) or None,
        photos=train,
        files={
            "rule": FOLDER_SPLIT["rule"],
            "train": train.names(),
            "validation": valid.names(),
            "test": held_out.names(),
            "classes": folder.classes,
        },
    )


def epoch_split(data, train_split, seed, epoch):
    """The training images of `epoch` (and their labels): the split itself;
    under dynamic binarization its draw for `(seed, epoch)`; for a folder of
    images random crops drawn for `(seed, epoch)` (as many as
    `train_split` holds)."""
    if data.photos is not None:
        size = train_split.images.shape[1]
        x, y = image_folder.random_crops(data.photos, size, seed, epoch, len(train_split))
        return Split(binarize(x) if data.levels == 2 else x, y)
    if data.binarization == "dynamic":
        return Split(binarize_dynamic(train_split.images, seed, epoch), train_split.labels)
    return train_split


def load_binarized_mnist(data_dir=None):
    """Larochelle's statically binarized MNIST from tensorflow-datasets
    (`binarized_mnist`: 50,000 / 10,000 / 10,000 images in {0, 1}, no labels;
    the labels are all 0 and `labeled` is False)."""
    splits = _tfds_splits(
        BINARIZED_MNIST,
        ["train", "validation", "test"],
        BINARIZED_MNIST_URL,
        data_dir,
        shown=BINARIZED_MNIST,
    )
    arrays = [split["image"].astype("float32") for split in splits]
    if any(set(np.unique(a)) - {0.0, 1.0} for a in arrays):
        raise PixelCNNError("binarized_mnist holds values other than 0 and 1")
    train, validation, test = (Split(a, np.zeros(len(a), "int32")) for a in arrays)
    return MNIST(train, validation, test, binarization="static", labeled=False)


def load_test_split(
    path, image_shape, limit=None, binarization="threshold", levels=2, conditional=False
):
    """The binarized test split (first `limit` images), checked against a
    model's `image_shape`; the training split rides along (sample quality
    uses real training digits as its reference). With `"dynamic"` the test
    split holds intensities (see `evaluation.nll.evaluate_dynamic`)."""
    if path and os.path.isdir(path):  # a folder: the test files' tiles at the model's size
        if image_shape[0] != image_shape[1]:
            raise PixelCNNError(
                f"the model reads {image_shape[0]}×{image_shape[1]} images; a folder of images "
                "gives square crops"
            )
        mnist = load_folder(path, image_shape[0], levels, binarization, image_shape[-1])
    else:
        mnist = load_mnist(path, validation_size=0, binarization=binarization, levels=levels)
    if conditional and not mnist.labeled:
        raise UsageError(f"{path} has no labels; a class-conditional model needs them")
    if tuple(mnist.test.images.shape[1:]) != tuple(image_shape):
        raise PixelCNNError(
            f"the model's input shape {tuple(image_shape)} does not match the data's image "
            f"shape {tuple(mnist.test.images.shape[1:])}"
        )
    if limit is not None:
        mnist.test = mnist.test.take(limit)
    return mnist
