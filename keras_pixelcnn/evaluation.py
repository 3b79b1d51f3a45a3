"""Exact negative log-likelihood of binary images under a PixelCNN.

For Bernoulli pixels with logit l, -log p(x) = softplus(l) - x * l, computed
from the logits (never from clipped probabilities). Summed over the pixels it
is the exact NLL of an image in nats, since the model's raster-order
factorization makes the per-pixel conditionals exact.
"""

import math

import numpy as np

from keras_pixelcnn.sampling import check_labels, is_conditional


def bernoulli_nll(images, logits):
    """Per-image NLL in nats: sum over pixels of softplus(l) - x * l (NumPy)."""
    logits = np.asarray(logits, dtype="float64")
    images = np.asarray(images, dtype="float64")
    per_pixel = np.logaddexp(0.0, logits) - images * logits
    return per_pixel.reshape(len(per_pixel), -1).sum(axis=1)


def per_image_nll(model, images, labels=None, batch_size=500):
    """NLL in nats of each image (NumPy array of shape (n,))."""
    labels = check_labels(model, labels, len(images))
    out = []
    for s in range(0, len(images), batch_size):
        x = images[s : s + batch_size]
        inputs = x if labels is None else [x, labels[s : s + batch_size]]
        logits = model.predict_on_batch(inputs)
        out.append(bernoulli_nll(x, logits))
    return np.concatenate(out)


def summarize_nll(nll, num_pixels):
    """Mean NLL in nats/image, nats/pixel and bits/dim, with standard errors."""
    nll = np.asarray(nll, dtype="float64")
    mean = float(nll.mean())
    se = float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1 else float("nan")
    return {
        "num_images": int(len(nll)),
        "nats_per_image": mean,
        "nats_per_image_se": se,
        "nats_per_pixel": mean / num_pixels,
        "nats_per_pixel_se": se / num_pixels,
        "bits_per_dim": mean / num_pixels / math.log(2.0),
        "bits_per_dim_se": se / num_pixels / math.log(2.0),
    }


def evaluate_nll(model, images, labels=None, batch_size=500):
    """Exact NLL summary of `model` on `images` (labels for conditional models)."""
    if not is_conditional(model):
        labels = None
    nll = per_image_nll(model, images, labels, batch_size)
    return summarize_nll(nll, int(np.prod(images.shape[1:])))
