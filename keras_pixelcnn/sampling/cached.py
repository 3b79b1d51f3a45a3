"""Fast cached sampling (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models"), derived from the model's own graph.

The reference sampler runs the whole network once per pixel. The cached
sampler computes every tensor of the functional graph only where the next
pixel needs it, from cached values of the tensors below, so a whole image
costs about one forward pass instead of `height × width`:

- `plan.py` reads the graph (through `graph.py`) and gives every tensor its
  dependence (labels only, rows above, or the current row up to the current
  pixel) and its scale, and refuses non-causal or unknown layers;
- `loop.py` computes the plan row by row and pixel by pixel, each tensor
  where it is first complete, from ring caches of the rows still read
  (single-scale models are the case of one scale);
- this module runs the loop in compiled calls over a batch (split over the
  CPU cores), with progress.

The weights are the model's own, read at every call, and no part of the
architecture is written twice: a new model built from supported layers gets
a fast sampler for free. Given the same noise (and labels) the images are
identical to the reference sampler's.
"""

import time

import numpy as np
from keras import ops

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.models.contract import check_labels, likelihood
from keras_pixelcnn.runtime import jax_on_cpu
from keras_pixelcnn.sampling.batches import Sampler
from keras_pixelcnn.sampling.compile import compile_model_function
from keras_pixelcnn.sampling.loop import SamplingLoop
from keras_pixelcnn.sampling.plan import Plan


class CachedSampler(Sampler):
    """Samples pixel by pixel with per-layer caches: about one forward pass
    of compute per image instead of `height × width`.

    Works for every model built from this package's layers (PixelCNN, Gated
    PixelCNN, PixelCNN++, conditional or not). Written in `keras.ops` inside
    `ops.fori_loop`, compiled with `jax.jit` / `tf.function`.

    Args:
        model: a functional PixelCNN-family `keras.Model` with one image
            channel.

    Example:

    >>> sampler = CachedSampler(model)
    >>> images = sampler.sample(draw_noise(64, noise_shape(model), seed=0))
    """

    # Seconds between two `progress` calls. Each compiled call carries a
    # fixed cost (about 2 ms on TensorFlow, a third of a 28-pixel row of the
    # PixelCNN at batch 32), so without a progress display the whole image
    # is one call, and with one as many rows go into a call as fit in this
    # interval (measured on the previous call; the first call is one row).
    progress_interval = 0.25

    def __init__(self, model):
        self.model = model
        self.likelihood = likelihood(model)
        self.plan = Plan(model)
        self.height, self.width = self.plan.height, self.plan.width
        self.input_transform = self.plan.input_transform
        self.loop = SamplingLoop(self.plan, self.likelihood)
        self._fill = compile_model_function(model, self.loop.fill_rows, jit_compile=True)

    @property
    def rows_per_step(self):
        """Rows per iteration of the compiled row loop: a call starts and
        stops at a multiple of it."""
        return self.loop.rows_per_step

    def _zeros(self, tensor_id, batch):
        return np.zeros(self.loop.shape(tensor_id, batch), "float32")

    def sample_tensor(self, noise, labels=None):
        """Traceable sampling of a whole batch (any batch size): `noise` and
        `labels` are backend tensors; returns the images as a tensor. Used
        for SavedModel export (`tf.function` with a `None` batch)."""
        batch = ops.shape(noise)[0]
        h, w = self.height, self.width
        top, left, right = self.loop.pads[self.plan.image_id]
        c = self.plan.image_channels
        inner = ops.zeros((batch, h, w, c), "float32")
        if self.plan.border:
            inner = ops.concatenate([inner, ops.ones_like(inner[..., :1])], axis=-1)
        canvas = ops.pad(inner, [[0, 0], [top, 0], [left, right], [0, 0]])
        buffers = tuple(
            ops.zeros(self.loop.shape(t, batch), "float32") for t in self.loop.buffers()
        )
        canvas, _ = self.loop.fill_rows(
            canvas, buffers, noise, ops.zeros((batch, h, w, c), "float32"), labels, 0, 0, h
        )
        return self._to_data(self._image(canvas))

    def _to_data(self, images):
        """The canvas's values in data units (undoes the input `Rescaling`)."""
        if self.input_transform is None:
            return images
        scale, offset = self.input_transform.scale, self.input_transform.offset
        return ops.round((images - offset) / scale)

    def _sample_batch(self, noise, labels, initial, start, progress):
        """One batch of `Sampler.sample`; `progress` is called as rows are done
        (every `progress_interval` seconds or so, after a whole row).

        On TensorFlow and JAX the batch is split over the CPU cores, one
        thread each: the per-pixel steps are too small for one compiled call
        to use more than one core (measured: 1.4x at batch 64, 1.7x at 256 on
        2 cores). Images are independent, so the result is the same.
        """
        noise = np.asarray(noise, dtype="float32")
        batch, h, w, c = noise.shape
        expected = (self.height, self.width, self.likelihood.noise_channels)
        if (h, w, c) != expected:
            raise PixelCNNError(
                f"noise shape {noise.shape[1:]} does not match the shape {expected} "
                f"the model's images and likelihood need"
            )
        labels = check_labels(self.model, labels, batch)
        initial = (
            np.zeros((batch, h, w, self.plan.image_channels), "float32")
            if initial is None
            else np.asarray(initial, "float32")
        )
        chunks = np.array_split(np.arange(batch), sampling_threads(batch))
        if len(chunks) == 1:
            return self._sample_chunk(noise, labels, initial, start, progress)
        import concurrent.futures

        def work(k):
            idx = chunks[k]
            return self._sample_chunk(
                noise[idx],
                None if labels is None else labels[idx],
                initial[idx],
                start,
                progress if k == 0 else None,  # the chunks advance row by row together
            )

        with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
            return np.concatenate(list(pool.map(work, range(len(chunks)))))

    def _sample_chunk(self, noise, labels, initial, start, progress):
        batch, h, w, _ = noise.shape
        known = initial
        if self.input_transform is not None:
            known = ops.convert_to_numpy(self.input_transform(initial)).astype("float32")
        canvas = self._canvas(known, batch)
        caches = tuple(ops.convert_to_tensor(self._zeros(t, batch)) for t in self.loop.buffers())
        canvas = ops.convert_to_tensor(canvas)
        args = (
            ops.convert_to_tensor(noise),
            ops.convert_to_tensor(initial),
            None if labels is None else ops.convert_to_tensor(labels),
            ops.convert_to_tensor(start, "int32"),
        )
        step = self.rows_per_step
        row, rows_per_call = 0, h if progress is None else step
        while row < h:
            stop = min(h, row + rows_per_call)
            begin = time.perf_counter()
            canvas, caches = self._fill(
                canvas,
                caches,
                *args,
                ops.convert_to_tensor(row, "int32"),
                ops.convert_to_tensor(stop, "int32"),
            )
            if progress is not None:
                ops.convert_to_numpy(canvas)  # waits for it (JAX dispatches asynchronously)
                seconds_per_row = (time.perf_counter() - begin) / (stop - row)
                rows = int(self.progress_interval / seconds_per_row)
                rows_per_call = max(step, rows // step * step)
                progress(stop * w, h * w)
            row = stop
        return ops.convert_to_numpy(self._to_data(self._image(canvas)))

    def _canvas(self, known, batch):
        """The padded canvas (NumPy) holding the known pixels (as the network
        reads them) and, with a border channel, ones inside the image."""
        canvas = self._zeros(self.plan.image_id, batch)
        top, left, _ = self.loop.pads[self.plan.image_id]
        inside = (slice(None), slice(top, top + self.height), slice(left, left + self.width))
        c = self.plan.image_channels
        canvas[(*inside, slice(0, c))] = known
        if self.plan.border:
            canvas[(*inside, c)] = 1.0
        return canvas

    def _image(self, canvas):
        """The image part of a canvas (its padding cut off)."""
        top, left, _ = self.loop.pads[self.plan.image_id]
        c = self.plan.image_channels
        return canvas[:, top : top + self.height, left : left + self.width, :c]


MIN_IMAGES_PER_THREAD = 8


def sampling_threads(batch):
    """How many threads `CachedSampler.sample` splits a batch over: one per
    usable CPU core, at least `MIN_IMAGES_PER_THREAD` images each, on
    TensorFlow and JAX (whose compiled calls release the GIL); 1 on torch
    and on machines with a GPU."""
    import os

    import keras

    if keras.backend.backend() not in ("tensorflow", "jax"):
        return 1
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            return 1
    elif not jax_on_cpu():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, batch // MIN_IMAGES_PER_THREAD))
