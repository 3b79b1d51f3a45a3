"""Any number of images in batches of bounded size.

A sampler's working memory (its caches, or the reference sampler's
activations) grows with the batch: about 1.2 MB an image for the Gated
PixelCNN. `Sampler.sample` therefore hands its compiled code at most
`max_batch` images at a time, and `sample_into` also draws the noise batch
by batch (the same stream as `draw_noise`), so that sampling N images needs
memory for the outputs and one batch, whatever N is.
"""

import itertools

import numpy as np

MAX_BATCH = 256


class Sampler:
    """Base of the samplers: `sample` in batches of at most `max_batch`.

    Subclasses implement `_sample_batch(noise, labels, initial, start,
    progress)` for one batch; images are independent, so the batches give
    the images one call would.
    """

    max_batch = MAX_BATCH

    def sample(self, noise, labels=None, initial=None, start=0, progress=None):
        """Returns float32 images `(batch, h, w, c)` as a NumPy array: 0/1, or
        0..255 for 256-level models.

        Args:
            noise: float32 array `(batch, h, w, k)` of uniform [0, 1) noise
                (k uniforms per pixel, see `contract.noise_shape`).
            labels: int array `(batch,)` for conditional models.
            initial: optional images whose pixels before `start` are kept
                (image completion); the rest is sampled.
            start: int, the first raster position to sample.
            progress: optional callable `progress(done, total)` (pixels of
                all the images), called as rows are done.
        """
        from keras_pixelcnn.models.contract import check_labels

        noise = np.asarray(noise, dtype="float32")
        n = len(noise)
        labels = check_labels(self.model, labels, n)
        if n <= self.max_batch:
            return self._sample_batch(noise, labels, initial, start, progress)
        out = None
        for b, count in batches(n, self.max_batch):
            part = slice(b, b + count)
            images = self._sample_batch(
                noise[part],
                None if labels is None else np.asarray(labels)[part],
                None if initial is None else np.asarray(initial)[part],
                start,
                _offset(progress, b, count, n),
            )
            if out is None:
                out = np.empty((n, *images.shape[1:]), images.dtype)
            out[part] = images
        return out


def batches(n, most):
    """`(first, count)` of each batch of `n` images: as few batches as allow
    at most `most` images each, of equal sizes (to one image), so that the
    compiled sampler meets one or two batch shapes, not a short last one."""
    k = -(-n // most)  # ceil
    sizes = [n // k + (i < n % k) for i in range(k)]
    return list(zip(itertools.accumulate(sizes, initial=0), sizes))


def _offset(progress, first, count, total):
    """`progress` of one batch (images first .. first + count - 1) as
    progress over all `total` images."""
    if progress is None:
        return None

    def report(done, pixels):
        progress(first * pixels + done * count, total * pixels)

    return report


def sample_into(sample, out, shape, seed, labels=None, progress=None, batch=MAX_BATCH):
    """Samples `len(out)` images into `out` (a NumPy array or memmap; values
    are cast to its dtype), drawing the noise `batch` images at a time from
    `seed`: the images `sample(draw_noise(len(out), shape, seed), labels)`
    gives, with memory for one batch of noise.

    Args:
        sample: callable `sample(noise, labels, progress=...)` returning
            images (a `Sampler`'s `sample`, or `SavedModelSampler.sample_noise`).
        out: array `(n, h, w, c)` to fill.
        shape: the noise shape of one image (`contract.noise_shape`).
        seed: int, the noise seed.
        labels: int array `(n,)` for conditional models, checked by the caller.
        progress: optional `progress(done, total)` over all the images.
        batch: int, images per call of `sample`.
    Returns:
        `out`.
    """
    rng = np.random.default_rng(seed)  # draw_noise's stream, batch by batch
    n = len(out)
    for b, count in batches(n, batch):
        noise = rng.random((count, *shape), dtype=np.float32)
        out[b : b + count] = sample(
            noise,
            None if labels is None else labels[b : b + count],
            progress=_offset(progress, b, count, n),
        )
    return out
