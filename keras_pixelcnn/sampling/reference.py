"""The reference sampler: the definition of sampling from a PixelCNN.

The reference sampler follows the definition: start from zeros; for each
pixel p in raster order run the network on the partial image, take the
output distribution's parameters at pixel p (a Bernoulli logit, or a
mixture's parameters) and draw the pixel from them with `noise[p]`
(`likelihoods.py`). All the randomness is the uniform `noise` array, drawn up front from the seed, so the
same seed gives the same images and two samplers given the same noise must
give identical images.
"""

import numpy as np
from keras import ops

from keras_pixelcnn.models.contract import check_labels, image_shape, likelihood
from keras_pixelcnn.sampling.batches import Sampler
from keras_pixelcnn.sampling.compile import compile_model_function


def _reference_fill(model, x, noise, labels, start, stop):
    """Samples the pixels [start, stop) of x (raster order) with the full network.

    A likelihood with `sequential_channels` takes one pass per channel (the
    parameters of channel k are read after channels < k are written);
    otherwise one pass gives all the channels of the pixel."""
    batch = ops.shape(x)[0]
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    lik = likelihood(model)
    passes = c if lik.sequential_channels else 1
    flat_noise = ops.reshape(noise, (batch, h * w, lik.noise_channels))
    positions = ops.arange(h * w * c, dtype="int32")

    def body(t, x):
        p, k = t // passes, t % passes
        params = model(x if labels is None else [x, labels], training=False)
        # float32, as the cached sampler: under mixed precision the outputs are bfloat16
        flat_params = ops.reshape(ops.cast(params, "float32"), (batch, h * w, lik.num_params))
        pixel_params = ops.take(flat_params, p, axis=1)  # (batch, num_params)
        u = ops.take(flat_noise, p, axis=1)  # (batch, noise_channels)
        value = ops.cast(lik.sample(pixel_params, u), x.dtype)  # (batch, c)
        flat_x = ops.reshape(x, (batch, h * w * c))
        here = ops.equal(positions // c, p)
        if passes > 1:
            here = ops.logical_and(here, ops.equal(positions % c, k))
        flat_x = ops.where(here[None, :], ops.tile(value, (1, h * w)), flat_x)
        return ops.reshape(flat_x, (batch, h, w, c))

    return ops.fori_loop(start * passes, stop * passes, body, x)


class ReferenceSampler(Sampler):
    """Samples by running the whole network once per pixel (h × w times per image).

    Args:
        model: a PixelCNN-family `keras.Model` (`models/contract.py`).

    Example:

    >>> sampler = ReferenceSampler(model)
    >>> images = sampler.sample(draw_noise(16, (28, 28, 1), seed=0))
    """

    def __init__(self, model):
        self.model = model
        self._fill = compile_model_function(model, lambda *args: _reference_fill(model, *args))

    def sample_tensor(self, noise, labels=None):
        """Traceable sampling of a whole batch (any batch size) from backend
        tensors; returns the images as a tensor (SavedModel export)."""
        batch = ops.shape(noise)[0]
        h, w, c = image_shape(self.model)
        x = ops.zeros((batch, h, w, c), "float32")
        return _reference_fill(self.model, x, noise, labels, 0, h * w)

    def _sample_batch(self, noise, labels, initial, start, progress):
        """One batch of `Sampler.sample`; `progress` is called after every row."""
        noise = np.asarray(noise, dtype="float32")
        batch, h, w, _ = noise.shape
        labels = check_labels(self.model, labels, batch)
        x = (
            np.zeros((batch, *image_shape(self.model)), "float32")
            if initial is None
            else np.array(initial, dtype="float32")
        )
        total = h * w
        x = ops.convert_to_tensor(x)
        noise_t = ops.convert_to_tensor(noise)
        labels_t = None if labels is None else ops.convert_to_tensor(labels)
        row = w
        p = start
        while p < total:
            stop = min((p // row + 1) * row, total)
            x = self._fill(
                x,
                noise_t,
                labels_t,
                ops.convert_to_tensor(p, "int32"),
                ops.convert_to_tensor(stop, "int32"),
            )
            p = stop
            if progress is not None:
                progress(p, total)
        return ops.convert_to_numpy(x)
