"""A folder of the user's image files as a dataset of fixed-size crops.

- **Files.** Every image file (`IMAGE_SUFFIXES`) directly in the folder, or,
  when the folder holds only subfolders, in each subfolder: one class per
  subfolder, labels in the sorted order of their names (the convention of
  `keras.utils.image_dataset_from_directory`).
- **Split.** Whole files go to train, validation or test, never parts of a
  file, by a seeded rule (`split_files`): the sorted paths permuted by
  `numpy.random.default_rng(seed)`, then `test` files, `validation` files and
  the rest for training. The run records the rule and the file names.
- **Crops.** Training images are random `size × size` crops, drawn afresh
  every epoch as a pure function of `(seed, epoch)` (`random_crops`), as many
  per epoch as the training files hold grid tiles; validation and test
  images are the non-overlapping grid tiles of their files (`grid_crops`),
  the same in every run.

Pixel values stay in data units: uint8 0..255 as float32, `(n, size, size,
channels)`, 3 channels for RGB files, 1 for grey ones (mixed folders are
refused unless `channels` says what to convert to).
"""

import dataclasses
import os

import numpy as np

from keras_pixelcnn.errors import PixelCNNError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
CROP_STREAM = 0xC209  # the random stream of the training crops


@dataclasses.dataclass
class ImageFolder:
    """The decoded files of a folder: `images[k]` is uint8 `(h, w, c)`."""

    root: str
    paths: list
    images: list
    labels: np.ndarray  # int32, one per file (0 when the folder has no classes)
    classes: list  # subfolder names, [] without classes

    @property
    def channels(self):
        return self.images[0].shape[-1]

    def subset(self, index):
        return ImageFolder(
            self.root,
            [self.paths[k] for k in index],
            [self.images[k] for k in index],
            self.labels[index],
            self.classes,
        )

    def names(self):
        """The files relative to the folder."""
        return [os.path.relpath(p, self.root) for p in self.paths]


def _is_image(name):
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def list_files(root):
    """`(paths, labels, classes)` of the image files under `root` (see the
    module docstring). Raises `PixelCNNError` for an empty folder."""
    root = os.fspath(root)
    entries = sorted(os.listdir(root))
    files = [e for e in entries if os.path.isfile(os.path.join(root, e)) and _is_image(e)]
    folders = [e for e in entries if os.path.isdir(os.path.join(root, e)) and not e.startswith(".")]
    if files or not folders:
        paths, labels, classes = [os.path.join(root, f) for f in files], [0] * len(files), []
    else:
        paths, labels, classes = [], [], folders
        for label, folder in enumerate(folders):
            inside = sorted(os.listdir(os.path.join(root, folder)))
            found = [os.path.join(root, folder, f) for f in inside if _is_image(f)]
            paths += found
            labels += [label] * len(found)
    if not paths:
        raise PixelCNNError(
            f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES)}), neither directly "
            "nor in class subfolders"
        )
    return paths, np.asarray(labels, "int32"), classes


def read_image(path, channels=None):
    """A file as uint8 `(h, w, c)`: its own channels (1 for grey, 3 for
    colour; an alpha channel dropped), or converted to `channels` (1 or 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = {1: "L", 3: "RGB"}.get(channels)
            if mode is None:
                mode = "L" if image.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
            array = np.asarray(image.convert(mode), "uint8")
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise PixelCNNError(f"{path} is not a readable image ({type(e).__name__})") from None
    return array[..., None] if array.ndim == 2 else array


def load_folder(root, channels=None, min_size=1):
    """Reads every image file of `root`; checks that the files agree on their
    channels (unless `channels` converts them) and are at least `min_size`
    pixels high and wide."""
    paths, labels, classes = list_files(root)
    images = [read_image(p, channels) for p in paths]
    kinds = {image.shape[-1] for image in images}
    if len(kinds) > 1:
        grey = next(p for p, im in zip(paths, images) if im.shape[-1] == 1)
        colour = next(p for p, im in zip(paths, images) if im.shape[-1] == 3)
        raise PixelCNNError(
            f"{root} mixes grey ({os.path.basename(grey)}) and colour "
            f"({os.path.basename(colour)}) files; pass --channels 1 or --channels 3"
        )
    for path, image in zip(paths, images):
        if min(image.shape[:2]) < min_size:
            raise PixelCNNError(
                f"{path} is {image.shape[1]}×{image.shape[0]} pixels, smaller than the "
                f"{min_size}×{min_size} crops"
            )
    return ImageFolder(os.fspath(root), paths, images, labels, classes)


def split_files(num_files, seed, test, validation):
    """`(train, validation, test)` index arrays of whole files: the sorted
    files permuted by `default_rng(seed)`; the first `test` are the test
    files, the next `validation` the validation files, the rest train."""
    if num_files < test + validation + 1:
        raise PixelCNNError(
            f"the folder has {num_files} image files; it needs at least {test + validation + 1} "
            f"({test} for test, {validation} for validation and one to train on)"
        )
    order = np.random.default_rng(seed).permutation(num_files)
    return order[test + validation :], order[test : test + validation], order[:test]


def grid_crops(folder, size):
    """The non-overlapping `size × size` tiles of every file, row by row
    from the top-left corner (a remainder at the right and bottom edge is
    left out): `(images float32 (n, size, size, c), labels int32 (n,))`."""
    crops, labels = [], []
    for image, label in zip(folder.images, folder.labels):
        h, w = image.shape[0] // size, image.shape[1] // size
        tiles = image[: h * size, : w * size].reshape(h, size, w, size, -1).swapaxes(1, 2)
        crops.append(tiles.reshape(h * w, size, size, -1))
        labels.append(np.full(h * w, label, "int32"))
    return np.concatenate(crops).astype("float32"), np.concatenate(labels)


def _tiles(folder, size):
    """The number of grid tiles of each file."""
    return np.array([(im.shape[0] // size) * (im.shape[1] // size) for im in folder.images])


def random_crops(folder, size, seed, epoch, count=None):
    """`count` (default: as many as the files hold grid tiles) random
    `size × size` crops, files drawn in proportion to their tile counts:
    a pure function of `(seed, epoch)`."""
    rng = np.random.default_rng([int(seed), int(epoch), CROP_STREAM])
    tiles = _tiles(folder, size)
    count = int(tiles.sum()) if count is None else count
    which = rng.choice(len(tiles), size=count, p=tiles / tiles.sum())
    c = folder.channels
    crops = np.empty((count, size, size, c), "float32")
    for n, k in enumerate(which):
        image = folder.images[k]
        y = rng.integers(0, image.shape[0] - size + 1)
        x = rng.integers(0, image.shape[1] - size + 1)
        crops[n] = image[y : y + size, x : x + size]
    return crops, folder.labels[which].astype("int32")
