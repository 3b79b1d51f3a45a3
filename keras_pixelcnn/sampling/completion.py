"""Image completion: hide the bottom of a digit and sample the rest.

The known pixels (every raster position before `rows * width`) are copied
into the canvas and never resampled; the sampler (fast or reference, the
same as `generate`) draws the remaining pixels conditioned on them.
"""

import numpy as np

from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.models.contract import image_shape, is_conditional, noise_shape
from keras_pixelcnn.sampling import draw_noise, make_sampler


def occlude(images, rows, fill=0.0):
    """Copies `images` with every row from `rows` on set to `fill`."""
    out = np.array(images, dtype="float32")
    out[:, rows:] = fill
    return out


def complete(
    model, images, rows, num_completions=4, labels=None, seed=0, sampler="fast", progress=None
):
    """Samples `num_completions` completions of each image from row `rows` on.

    Args:
        model: a PixelCNN-family model.
        images: images `(n, h, w, c)` in data units; rows `[0, rows)` are kept.
        rows: int in `[1, h - 1]`, the first hidden row.
        num_completions: int, completions per image.
        labels: the images' labels, for conditional models.
        seed: the sampling noise seed.
        sampler: "fast" or "reference", or a sampler object.

    Returns:
        float32 array `(n, num_completions, h, w, c)`.
    """
    images = np.asarray(images, "float32")
    h, w, c = image_shape(model)
    if images.shape[1:] != (h, w, c):
        raise PixelCNNError(
            f"images of shape {images.shape[1:]} do not match the model's input shape {(h, w, c)}"
        )
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or not 1 <= rows <= h - 1:
        raise UsageError(f"rows must be an integer in [1, {h - 1}], got {rows!r}")
    if num_completions < 1:
        raise UsageError(f"num_completions must be positive, got {num_completions}")
    n = len(images)
    initial = np.repeat(images, num_completions, axis=0)
    per_image = None if labels is None else np.repeat(np.asarray(labels), num_completions)
    noise = draw_noise(n * num_completions, noise_shape(model), seed)
    s = make_sampler(model, sampler) if isinstance(sampler, str) else sampler
    out = s.sample(noise, labels=per_image, initial=initial, start=int(rows) * w, progress=progress)
    return out.reshape((n, num_completions, h, w, c))


def complete_test_digits(
    model,
    test,
    offset,
    num,
    rows,
    num_completions=4,
    seed=0,
    sampler="fast",
    progress=None,
    fill=None,
):
    """Completes the test digits `offset .. offset + num - 1` of the split
    `test` (with their labels, for conditional models).

    Returns `(originals, occluded, completions, row_titles)`: what
    `figures.save_completion_figure` draws; hidden pixels are `fill` (default:
    mid-grey, 0.5 for binary models, 127.5 for 256-level ones).
    """
    if fill is None:
        from keras_pixelcnn.models.contract import levels

        fill = 0.5 * (levels(model) - 1)
    if offset + num > len(test):
        raise UsageError(f"--offset {offset} + --num {num} exceeds the {len(test)} test digits")
    images = test.images[offset : offset + num]
    labels = test.labels[offset : offset + num] if is_conditional(model) else None
    done = complete(
        model,
        images,
        rows,
        num_completions,
        labels=labels,
        seed=seed,
        sampler=sampler,
        progress=progress,
    )
    titles = [
        f"#{offset + k}" + (f" ({labels[k]})" if labels is not None else "") for k in range(num)
    ]
    return images, occlude(images, rows, fill), done, titles
