"""Pictures: sample grids and loss curves, written atomically as PNG."""

import csv
import math

import numpy as np

from keras_pixelcnn.io import atomic_path


def image_grid(images, ncols=None, pad=2, pad_value=0.5):
    """Tiles (n, h, w[, 1]) images in [0, 1] into one 2D array with borders."""
    images = np.asarray(images, dtype="float32")
    if images.ndim == 4:
        images = images[..., 0]
    n, h, w = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.full(
        (nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype="float32"
    )
    for k in range(n):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = images[k]
    return grid


def save_grid(images, path, ncols=None, scale=4, title=None):
    """Saves images as a PNG grid, each pixel scaled up `scale`× (no blur)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, ncols=ncols)
    if title is None:
        with atomic_path(path) as tmp:
            big = np.kron(grid, np.ones((scale, scale), dtype="float32"))
            plt.imsave(tmp, big, cmap="gray", vmin=0.0, vmax=1.0, format="png")
        return
    h, w = grid.shape
    dpi = 100
    fig = plt.figure(figsize=(w * scale / dpi, h * scale / dpi + 0.35), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, h * scale / (h * scale + 35)])
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=10, y=0.995, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def read_history(csv_path):
    """Reads a Keras CSVLogger file into {column: [floats]}."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}


def save_loss_curve(history, path, title="PixelCNN training"):
    """Plots train/validation loss (nats/pixel) per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(e) + 1 for e in history["epoch"]]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(epochs, history["loss"], "o-", label="train")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats/pixel)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
