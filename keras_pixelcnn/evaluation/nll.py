"""Exact negative log-likelihood of binary images under a PixelCNN.

For Bernoulli pixels with logit l, -log p(x) = softplus(l) - x * l, computed
from the logits (never from clipped probabilities). Summed over the pixels it
is the exact NLL of an image in nats, since the model's raster-order
factorization makes the per-pixel conditionals exact.
"""

import math

import numpy as np

from keras_pixelcnn.models.contract import check_labels, is_conditional, num_classes


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


def marginal_nll(model, images, num_classes, batch_size=500):
    """Per-image NLL with the label marginalized under a uniform prior:
    -log (1/K) sum_c p(x | c), a log-mean-exp over the K classes (nats)."""
    per_class = np.stack(
        [
            per_image_nll(model, images, np.full((len(images),), c, "int32"), batch_size)
            for c in range(num_classes)
        ],
        axis=1,
    )
    neg = -per_class
    top = neg.max(axis=1, keepdims=True)
    log_mean = top[:, 0] + np.log(np.mean(np.exp(neg - top), axis=1))
    return -log_mean


def evaluate_model(model, images, labels=None, batch_size=500, marginal=True):
    """The full NLL report of `model` on `images`: `{"nll": summary}` and, for
    conditional models, `"nll_label_marginalized"` (uniform prior over the
    classes) too. Summaries come from `summarize_nll`."""
    num_pixels = int(np.prod(images.shape[1:]))
    report = {"conditional": is_conditional(model)}
    if not is_conditional(model):
        report["nll"] = summarize_nll(per_image_nll(model, images, None, batch_size), num_pixels)
        return report
    report["nll"] = summarize_nll(per_image_nll(model, images, labels, batch_size), num_pixels)
    if marginal:
        k = num_classes(model)
        report["nll_label_marginalized"] = summarize_nll(
            marginal_nll(model, images, k, batch_size), num_pixels
        )
        report["num_classes"] = k
    return report
