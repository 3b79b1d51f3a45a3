"""What a PixelCNN-family model is, and the questions everything else asks it.

A PixelCNN-family model is a functional `keras.Model` that maps images
`(batch, h, w, c)` (and, when class-conditional, integer labels `(batch,)`)
to the parameters of each pixel's output distribution, `(batch, h, w, k)`:
one Bernoulli logit (k = 1) or a likelihood's parameters (`likelihoods.py`). The samplers, the evaluation,
the callbacks, completion and export all ask their questions here, so this
module sits below all of them and imports none of them.
"""

import numpy as np

from keras_pixelcnn.errors import PixelCNNError, UsageError


def is_conditional(model):
    """True when `model` takes a label input beside the image."""
    return len(model.inputs) == 2


def image_shape(model):
    """The `(h, w, c)` shape of the images `model` reads."""
    return tuple(model.inputs[0].shape[1:])


def likelihood(model):
    """The per-pixel likelihood of `model`'s output: the one its
    `OutputDistribution` layer names, else `Bernoulli()` (one logit per pixel)."""
    from keras_pixelcnn.layers.output_distribution import OutputDistribution
    from keras_pixelcnn.likelihoods import Bernoulli

    for layer in reversed(model.layers):
        if isinstance(layer, OutputDistribution):
            return layer.likelihood
    return Bernoulli()


def levels(model):
    """The number of pixel values the model reads and samples: 2 or 256."""
    return likelihood(model).levels


def noise_shape(model):
    """The shape of the uniform noise one image's sampling needs."""
    h, w, _ = image_shape(model)
    return (h, w, likelihood(model).noise_channels)


def num_classes(model):
    """The number of classes a conditional model accepts: the input size of
    its label embedding (None if unconditional)."""
    import keras

    if not is_conditional(model):
        return None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return None


def check_labels(model, labels, num_images):
    """Validates `labels` for `model`; returns an int32 array or None.

    A scalar label is repeated `num_images` times.
    """
    if not is_conditional(model):
        if labels is not None:
            raise UsageError("this model is unconditional; it takes no labels")
        return None
    if labels is None:
        raise UsageError("this model is class-conditional; pass labels")
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full((num_images,), labels)
    if labels.shape != (num_images,):
        raise UsageError(f"expected {num_images} labels, got shape {labels.shape}")
    n = num_classes(model)
    if labels.dtype.kind not in "iu" or labels.min() < 0 or (n and labels.max() >= n):
        raise UsageError(f"labels must be integers in [0, {n})")
    return labels.astype("int32")


def check_pixel_model(model, path="model"):
    """Raises `PixelCNNError` unless `model` is a PixelCNN-family model:
    an image input (and optionally a label input), per-pixel outputs and a
    causal layer."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) not in (1, 2) or len(inputs[0].shape) != 4:
        raise PixelCNNError(
            f"{path} is not a PixelCNN-family model (expected an image input "
            "(batch, h, w, c) and optionally a label input)"
        )
    from keras_pixelcnn.layers.causal_conv import CausalConv2D, CausalConv2DTranspose

    causal = (CausalConv2D, CausalConv2DTranspose)
    if not any(isinstance(layer, causal) for layer in getattr(model, "layers", [])):
        raise PixelCNNError(
            f"{path} is not a PixelCNN-family model: it has no causal (masked or shifted) "
            "convolution, so its outputs may see the pixels they predict"
        )
    out_shape = tuple(model.outputs[0].shape[1:]) if len(model.outputs) == 1 else None
    h, w, _ = inputs[0].shape[1:]
    expected = (h, w, likelihood(model).num_params)
    if out_shape != expected:
        raise PixelCNNError(
            f"{path} is not a PixelCNN-family model: its output shape {out_shape} "
            f"is not {expected} ({likelihood(model)!r} parameters per pixel)"
        )


def check_image_shape(input_shape):
    """Raises `ValueError` unless `input_shape` is `(height, width, channels)`
    of positive ints."""
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    ):
        raise ValueError(
            "Invalid value for argument `input_shape`. Expected (height, width, channels)"
            f" with positive ints. Received: input_shape={input_shape!r}"
        )


def check_likelihood_channels(input_shape, likelihood):
    """Raises `ValueError` unless `likelihood` models pixels of the image's
    channel count."""
    channels = input_shape[-1]
    if likelihood.channels != channels:
        raise ValueError(
            f"{likelihood!r} models {likelihood.channels}-channel pixels but "
            f"input_shape={tuple(input_shape)!r} has {channels}: pass a likelihood with "
            f"channels={channels} (Categorical(levels, channels={channels}) or "
            f"DiscretizedLogisticMixture(channels={channels}))"
        )


def check_num_classes(num_classes):
    """Raises `ValueError` unless `num_classes` is None (unconditional) or an int >= 2."""
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(
            "Invalid value for argument `num_classes`. Expected None or an int >= 2. "
            f"Received: num_classes={num_classes!r}"
        )


def check_int_arg(name, value, minimum=1):
    """Raises `ValueError` (Keras style) unless `value` is an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected an int >= {minimum}. "
            f"Received: {name}={value!r}"
        )


def receptive_field(model, position=None, label=0, seed=0, num_images=3, past_only=False):
    """The input pixels the output at `position` (default: the image centre)
    depends on, measured: one forward pass over `num_images` random binary
    images, each unchanged and with each pixel in turn raised by 1; a pixel
    counts when it changes the output for any of them. `past_only` raises
    only the pixels before `position` in raster order (about half the
    images: what `train` prints; the tests prove the rest is never seen).

    Returns a boolean array `(h, w)`. It shows the blind spot of a PixelCNN;
    a unit dead for all these images can hide a pixel, never add one.
    """
    h, w, c = image_shape(model)
    i, j = position if position is not None else (h // 2, w // 2)
    n = i * w + j if past_only else h * w
    rng = np.random.default_rng(seed)
    top = levels(model) - 1  # 1, or 255
    step = 1.0 if top == 1 else 64.0
    batches = []
    for _ in range(num_images):
        x = (rng.random((h, w, c)) > 0.5).astype("float32") * (top - step if top > 1 else 1)
        batch = np.repeat(x[None], n + 1, axis=0)
        batch[np.arange(n), np.arange(n) // w, np.arange(n) % w, 0] += step  # the last: as is
        batches.append(batch)
    batch = np.concatenate(batches)
    inputs = [batch, np.full((len(batch),), label, "int32")] if is_conditional(model) else batch
    out = np.asarray(model.predict_on_batch(inputs), "float64")[:, i, j, :]
    out = out.reshape(num_images, n + 1, -1)
    seen = np.zeros(h * w, bool)
    seen[:n] = (out[:, :n] != out[:, n:]).any(axis=(0, 2))
    return seen.reshape(h, w)
