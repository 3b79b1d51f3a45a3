"""Sampling from an exported SavedModel with TensorFlow alone (no Keras).

`keras_pixelcnn.export` writes SavedModels whose `sample` signature runs the
fast cached sampler; this module is what serves them: it imports TensorFlow
and NumPy, never Keras, so a serving machine needs neither Keras nor the
model's Python code. The noise is `sampling.draw_noise`'s, so a seed gives
the same images as the `.keras` model it was exported from.
"""

import json
import os

import numpy as np

from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.errors import reason as error_reason
from keras_pixelcnn.runtime import quiet_import
from keras_pixelcnn.sampling import draw_labels, expand_labels
from keras_pixelcnn.sampling.batches import MAX_BATCH, sample_into

# What `export` writes beside the SavedModel: the facts about the model that
# its signatures do not carry (and the mark `export --overwrite` looks for).
METADATA = "keras_pixelcnn.json"
# A directory holding only these (and saved_model.pb) is a SavedModel.
SAVED_MODEL_ENTRIES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", METADATA}


def is_saved_model_dir(path):
    """True if `path` is a directory holding a SavedModel and nothing else
    (what `export` writes), so that replacing it loses nothing."""
    path = os.fspath(path)
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    entries = set(os.listdir(path))
    return "saved_model.pb" in entries and entries <= SAVED_MODEL_ENTRIES


def check_export_target(path, overwrite=False):
    """Raises unless a SavedModel may be written at `path`: it does not exist,
    or `overwrite` is set and it is an empty directory or a SavedModel
    directory (`is_saved_model_dir`); anything else is never replaced."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise UsageError(f"{path} already exists (pass --overwrite to replace it)")
    if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
        return
    if not is_saved_model_dir(path):
        raise PixelCNNError(
            f"{path} is not a SavedModel directory (or holds other files); "
            "--overwrite replaces only what export wrote, so it is left as it is"
        )


class SavedModelSampler:
    """The `sample` signature of an exported SavedModel.

    Args:
        path: str or Path, the SavedModel directory.

    Example:

    >>> sampler = SavedModelSampler("export/pixelcnn")
    >>> images = sampler.sample(16, seed=0)
    """

    def __init__(self, path):
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise PixelCNNError(
                f"SavedModel directory {path} does not exist"
                if not os.path.exists(path)
                else f"{path} is not a SavedModel directory"
            )
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise PixelCNNError(f"{path} is not a SavedModel (no saved_model.pb)")
        tf = self._tf = quiet_import("tensorflow")
        try:
            self._fn = tf.saved_model.load(path).signatures["sample"]
        except Exception as e:  # corrupt protobuf, missing variables, no signature
            reason = error_reason(e, 160)
            raise PixelCNNError(f"could not load SavedModel {path}: {reason}") from None
        spec = self._fn.structured_input_signature[1]
        # (h, w, uniforms per pixel): 1 for binary models, 2 for the logistic mixture
        self.noise_shape = tuple(spec["noise"].shape[1:])
        self.conditional = "labels" in spec
        self.image_shape = tuple(self._fn.structured_outputs["images"].shape[1:])  # (h, w, c)
        self.metadata = {}
        if os.path.exists(os.path.join(path, METADATA)):
            with open(os.path.join(path, METADATA)) as f:
                self.metadata = json.load(f)
        self.num_classes = self.metadata.get("num_classes")
        self.max_batch = MAX_BATCH

    def labels_for(self, num_images, seed=0, labels=None):
        """The label of every image: `labels` (digits), `num_images` of each;
        or, for a conditional model given none, drawn from `seed` as the
        `.keras` path draws them (`sampling.draw_labels`). None for an
        unconditional model."""
        if not self.conditional:
            if labels is not None:
                raise UsageError("this model is unconditional; it takes no --label")
            return None
        if labels is not None:
            return expand_labels(labels, num_images)
        if not self.num_classes:
            raise UsageError(
                f"this SavedModel is class-conditional and has no {METADATA} (exported by "
                "an earlier version) to draw labels from; pass --label (a digit, a list "
                "like 0,1,2, or all)"
            )
        return draw_labels(num_images, self.num_classes, seed)

    def sample_noise(self, noise, labels=None, progress=None):
        """The images of one batch of `noise` `(n, h, w, k)` (and labels)."""
        kwargs = {"noise": self._tf.constant(noise)}
        if self.conditional:
            kwargs["labels"] = self._tf.constant(labels, self._tf.int32)
        images = self._fn(**kwargs)["images"].numpy()
        if progress is not None:
            pixels = self.noise_shape[0] * self.noise_shape[1]
            progress(pixels, pixels)
        return images

    def sample(self, num_images, seed=0, labels=None, out=None, progress=None):
        """`num_images` images (per label, for conditional models) as a
        float32 array `(n, h, w, c)`: 0/1, or 0..255 for 256-level models;
        or into `out` (any dtype), sampled `max_batch` at a time."""
        per_image = self.labels_for(num_images, seed, labels)
        total = num_images * (len(labels) if labels is not None else 1)
        if out is None:
            out = np.empty((total, *self.image_shape), "float32")
        return sample_into(
            self.sample_noise, out, self.noise_shape, seed, per_image, progress, self.max_batch
        )
