"""Sampling from a trained PixelCNN, pixel by pixel in raster order.

The reference sampler follows the definition: start from zeros; for each
pixel p in raster order run the network on the partial image, take the
logit of pixel p and set the pixel to `noise[p] < sigmoid(logit)`. All the
randomness is the uniform `noise` array, drawn up front from the seed, so the
same seed gives the same images and two samplers given the same noise must
give identical images.
"""

import numpy as np
import keras
from keras import ops

from keras_pixelcnn.compile import compile_model_function
from keras_pixelcnn.errors import PixelCNNError


def is_conditional(model):
    return len(model.inputs) == 2


def image_shape(model):
    return tuple(model.inputs[0].shape[1:])


def num_classes(model):
    """The number of classes a conditional model accepts: the input size of
    its label embedding (None if unconditional)."""
    if not is_conditional(model):
        return None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return None


def draw_noise(num_images, shape, seed):
    """Uniform [0, 1) noise of shape `(num_images, *shape)` from a NumPy seed.

    NumPy (not the backend's RNG) makes the noise, and so the samples, the
    same on every backend for a given seed.
    """
    rng = np.random.default_rng(seed)
    return rng.random((num_images, *shape), dtype=np.float32)


def check_labels(model, labels, num_images):
    """Validates `labels` for `model`; returns an int32 array or None."""
    if not is_conditional(model):
        if labels is not None:
            raise PixelCNNError("this model is unconditional; it takes no labels")
        return None
    if labels is None:
        raise PixelCNNError("this model is class-conditional; pass labels")
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full((num_images,), labels)
    if labels.shape != (num_images,):
        raise PixelCNNError(f"expected {num_images} labels, got shape {labels.shape}")
    n = num_classes(model)
    if labels.dtype.kind not in "iu" or labels.min() < 0 or (n and labels.max() >= n):
        raise PixelCNNError(f"labels must be integers in [0, {n})")
    return labels.astype("int32")


def _reference_fill(model, x, noise, labels, start, stop):
    """Samples the pixels [start, stop) of x (raster order) with the full network."""
    batch = ops.shape(x)[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    flat_noise = ops.reshape(noise, (batch, h * w * c))
    positions = ops.arange(h * w * c, dtype="int32")

    def body(p, x):
        logits = model(x if labels is None else [x, labels], training=False)
        flat_logits = ops.reshape(logits, (batch, h * w * c))
        prob = ops.sigmoid(ops.take(flat_logits, p, axis=1))
        u = ops.take(flat_noise, p, axis=1)
        value = ops.cast(ops.less(u, prob), x.dtype)
        flat_x = ops.reshape(x, (batch, h * w * c))
        flat_x = ops.where(ops.equal(positions, p)[None, :], value[:, None], flat_x)
        return ops.reshape(flat_x, (batch, h, w, c))

    return ops.fori_loop(start, stop, body, x)


class ReferenceSampler:
    """Samples by running the whole network once per pixel (784× per image).

    Args:
        model: a PixelCNN-family `keras.Model` returning per-pixel logits.

    Example:

    >>> sampler = ReferenceSampler(model)
    >>> images = sampler.sample(draw_noise(16, (28, 28, 1), seed=0))
    """

    def __init__(self, model):
        self.model = model
        self._fill = compile_model_function(
            model, lambda *args: _reference_fill(model, *args)
        )

    def sample(self, noise, labels=None, initial=None, start=0, progress=None):
        """Returns 0/1 float32 images of `noise`'s shape as a NumPy array.

        Args:
            noise: float32 array `(batch, h, w, 1)` of uniform [0, 1) noise.
            labels: int array `(batch,)` for conditional models.
            initial: optional images whose pixels before `start` are kept
                (image completion); the rest is sampled.
            start: int, the first raster position to sample.
            progress: optional callable `progress(done, total)`, called after
                every row.
        """
        noise = np.asarray(noise, dtype="float32")
        batch, h, w, c = noise.shape
        labels = check_labels(self.model, labels, batch)
        x = np.zeros_like(noise) if initial is None else np.array(initial, dtype="float32")
        total = h * w * c
        x = ops.convert_to_tensor(x)
        noise_t = ops.convert_to_tensor(noise)
        labels_t = None if labels is None else ops.convert_to_tensor(labels)
        row = w * c
        p = start
        while p < total:
            stop = min((p // row + 1) * row, total)
            x = self._fill(
                x, noise_t, labels_t, ops.convert_to_tensor(p, "int32"),
                ops.convert_to_tensor(stop, "int32"),
            )
            p = stop
            if progress is not None:
                progress(p, total)
        return ops.convert_to_numpy(x)


def sample(model, num_images=16, seed=0, labels=None, sampler="fast", progress=None):
    """Draws `num_images` images from `model` with the given seed.

    Returns a float32 NumPy array `(num_images, h, w, 1)` of 0/1 pixels.
    """
    noise = draw_noise(num_images, image_shape(model), seed)
    return make_sampler(model, sampler).sample(noise, labels=labels, progress=progress)


SAMPLERS = ("fast", "reference")


def make_sampler(model, name="fast"):
    """Returns the sampler called `name` ("fast" or "reference") for `model`."""
    if name == "reference":
        return ReferenceSampler(model)
    if name == "fast":
        from keras_pixelcnn.fast_sampling import CachedSampler

        return CachedSampler(model)
    raise PixelCNNError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
