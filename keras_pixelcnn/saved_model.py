"""Sampling from an exported SavedModel with TensorFlow alone (no Keras).

`keras_pixelcnn.export` writes SavedModels whose `sample` signature runs the
fast cached sampler; this module is what serves them: it imports TensorFlow
and NumPy, never Keras, so a serving machine needs neither Keras nor the
model's Python code. The noise is `sampling.draw_noise`'s, so a seed gives
the same images as the `.keras` model it was exported from.
"""

import os

from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.runtime import quiet_import
from keras_pixelcnn.sampling import draw_noise, expand_labels


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
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise PixelCNNError(f"could not load SavedModel {path}: {reason}") from None
        spec = self._fn.structured_input_signature[1]
        # (h, w, uniforms per pixel): 1 for binary models, 2 for the logistic mixture
        self.noise_shape = tuple(spec["noise"].shape[1:])
        self.conditional = "labels" in spec

    def sample(self, num_images, seed=0, labels=None):
        """`num_images` images (per label, for conditional models) as a
        float32 array `(n, h, w, 1)`: 0/1, or 0..255 for 256-level models."""
        if self.conditional and labels is None:
            raise UsageError(
                "this model is class-conditional; pass --label (a digit, a list like 0,1,2, or all)"
            )
        if not self.conditional and labels is not None:
            raise UsageError("this model is unconditional; it takes no --label")
        per_image = expand_labels(labels, num_images)
        total = num_images * (len(labels) if labels is not None else 1)
        kwargs = {"noise": self._tf.constant(draw_noise(total, self.noise_shape, seed))}
        if self.conditional:
            kwargs["labels"] = self._tf.constant(per_image, self._tf.int32)
        return self._fn(**kwargs)["images"].numpy()
