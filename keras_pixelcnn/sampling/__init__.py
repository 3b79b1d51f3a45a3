"""Sampling from PixelCNN-family models, pixel by pixel in raster order.

    images = sample(model, num_images=16, seed=0)          # the face
    sampler = make_sampler(model, "fast")                   # or "reference"
    images = sampler.sample(draw_noise(16, (28, 28, 1), 0))

All the randomness is a uniform noise array drawn up front from the seed
(`draw_noise`), so the same seed gives the same images on every backend, and
two samplers given the same noise give identical images.

- `reference.py`: the definition, one full forward pass per pixel.
- `cached.py`: the fast cached sampler, about one forward pass per image,
  for every model of the package: `plan.py` (when each tensor is known,
  read from the graph by `graph.py`) and `loop.py` (computes it, at every
  scale; `channel_groups.py`: one channel group per pass for a per-channel
  colour `Categorical`).
- `batches.py`: the samplers' base, any number of images in bounded batches.
- `completion.py`: image completion with either sampler.
- `compile.py`: compiling a function of a model on the current backend.

This module imports Keras only when a sampler is asked for, so `draw_noise`
serves the Keras-free SavedModel path too.
"""

import numpy as np

SAMPLERS = ("fast", "reference")


def draw_noise(num_images, shape, seed):
    """Uniform [0, 1) noise of shape `(num_images, *shape)` from a NumPy seed.

    NumPy (not the backend's RNG) makes the noise, and so the samples, the
    same on every backend for a given seed.
    """
    rng = np.random.default_rng(seed)
    return rng.random((num_images, *shape), dtype=np.float32)


def draw_labels(num_images, num_classes, seed):
    """Labels drawn uniformly from `seed` for a class-conditional model, so
    that its samples follow p(x) = sum_c p(c) p(x | c) with a uniform p(c).
    A stream of its own: the noise of the same seed is unchanged."""
    rng = np.random.default_rng([int(seed), 0x1AB])
    return rng.integers(0, num_classes, size=num_images).astype("int32")


def expand_labels(labels, per_label):
    """`per_label` images of each label, label by label: ([3, 7], 2) → [3, 3, 7, 7].
    None stays None (unconditional models)."""
    if labels is None:
        return None
    return np.repeat(np.asarray(labels, dtype="int32"), per_label)


# The samplers made for a model, kept on the model: a sampler compiles its
# loop once per batch shape (tf.function / jax.jit), and a new sampler per
# `sample` call compiled it again every time (TensorFlow warned of
# "excessive retracing"). Samplers read the model's weights at every call,
# so one made before a weight update samples the updated model.
_CACHE = "_keras_pixelcnn_samplers"


def make_sampler(model, name="fast"):
    """Returns the sampler called `name` ("fast" or "reference") for `model`
    (one per model and name, made on first use)."""
    cache = model.__dict__.get(_CACHE)
    if cache is None:
        cache = {}
        object.__setattr__(model, _CACHE, cache)  # not a tracked Keras attribute
    if name not in cache:
        cache[name] = _new_sampler(model, name)
    return cache[name]


def _new_sampler(model, name):
    from keras_pixelcnn.errors import PixelCNNError

    if name == "reference":
        from keras_pixelcnn.sampling.reference import ReferenceSampler

        return ReferenceSampler(model)
    if name == "fast":
        from keras_pixelcnn.sampling.cached import CachedSampler

        return CachedSampler(model)
    raise PixelCNNError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def sample(model, num_images=16, seed=0, labels=None, sampler="fast", progress=None):
    """Draws `num_images` images from `model` with the given seed.

    Returns a float32 NumPy array `(num_images, h, w, c)`: 0/1 pixels, or
    0..255 for 256-level models. The noise is drawn and the images sampled
    batch by batch (`batches.sample_into`), so memory beyond the returned
    array does not grow with `num_images`.
    """
    from keras_pixelcnn.models.contract import check_labels, image_shape, noise_shape
    from keras_pixelcnn.sampling.batches import sample_into

    labels = check_labels(model, labels, num_images)
    out = np.empty((num_images, *image_shape(model)), "float32")
    s = make_sampler(model, sampler) if isinstance(sampler, str) else sampler
    return sample_into(s.sample, out, noise_shape(model), seed, labels, progress, s.max_batch)


def __getattr__(name):
    if name == "ReferenceSampler":
        from keras_pixelcnn.sampling.reference import ReferenceSampler

        return ReferenceSampler
    if name == "CachedSampler":
        from keras_pixelcnn.sampling.cached import CachedSampler

        return CachedSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
