"""Every picture the project draws, each one PNG written atomically: sample
grids, loss curves, generation progress, real data, image completion and
training progress. NumPy and matplotlib only (no Keras), so the Keras-free
SavedModel sampler draws its grids here too.

Pixels that do not exist yet (not generated, or hidden) are drawn mid-grey,
so black and white always mean real 0 and 1 pixels.
"""

import csv
import glob
import math
import os
import re

import numpy as np

from keras_pixelcnn.atomic import atomic_path

UNKNOWN = 0.5  # grey: a pixel not generated / hidden yet
BORDER = 0.25
# A grid shows at most this many images, and a labelled row at most
# MAX_GRID_COLUMNS of its label's: more cells make a picture nobody can read
# (and a PNG of hundreds of megabytes); the .npy output holds them all.
MAX_GRID_IMAGES = 1024
MAX_GRID_COLUMNS = 32


def grid_selection(per_group, groups=1):
    """Which of `groups × per_group` images (group by group) a grid shows,
    and its number of columns: `(indices, ncols)`. One group: the first
    `MAX_GRID_IMAGES` in a square grid (ncols None); several (a row per
    label): the first `MAX_GRID_COLUMNS` of each group, one row each."""
    if groups == 1:
        return np.arange(min(per_group, MAX_GRID_IMAGES)), None
    ncols = min(per_group, MAX_GRID_COLUMNS)
    return (np.arange(groups)[:, None] * per_group + np.arange(ncols)).ravel(), ncols


def _figure(**kwargs):
    """A matplotlib Figure drawn off-screen (Agg), without pyplot: the
    process's own backend (a notebook's inline one, say) is left alone."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)


def image_grid(images, ncols=None, pad=2, pad_value=0.5):
    """Tiles (n, h, w[, c]) images into one array with borders, in [0, 1]:
    `(H, W)` for grey images (c = 1), `(H, W, 3)` for RGB.

    Images are 0/1 (binary models) or in [0, 1]; 256-level images (values
    0..255: any value above 1) are divided by 255."""
    images = np.asarray(images, dtype="float32")
    if images.size and images.max() > 1.0:
        images = images / 255.0
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n, h, w = images.shape[:3]
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    shape = (nrows * (h + pad) + pad, ncols * (w + pad) + pad, *images.shape[3:])
    grid = np.full(shape, pad_value, dtype="float32")
    for k in range(n):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = images[k]
    return grid


def _show(ax, image):
    """A grey `(H, W)` or RGB `(H, W, 3)` image in [0, 1], pixels as squares."""
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")


def save_grid(images, path, ncols=None, scale=4, title=None, row_labels=None):
    """Saves images as a PNG grid, each pixel scaled up `scale`× (no blur).

    `row_labels` (one per row, e.g. the digit a conditional row was drawn
    with) are written left of the rows; `title` above the grid.
    """

    images = np.asarray(images, dtype="float32")
    grid = image_grid(images, ncols=ncols)
    if title is None and row_labels is None:
        # 8-bit RGB straight to Pillow: matplotlib's colour mapping would make
        # float64 RGBA copies (32 bytes a pixel: 470 MB for a 1,024-image grid)
        from PIL import Image

        pixels = np.round(np.clip(grid, 0.0, 1.0) * 255).astype("uint8")
        big = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
        rgb = big if big.ndim == 3 else np.stack([big] * 3, axis=-1)
        with atomic_path(path) as tmp:
            Image.fromarray(rgb, mode="RGB").save(tmp, format="PNG")
        return
    h, w = grid.shape[:2]
    dpi, left, top = 100, (28 if row_labels is not None else 0), (35 if title else 0)
    width, height = w * scale + left, h * scale + top
    fig = _figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes([left / width, 0, w * scale / width, h * scale / height])
    _show(ax, grid)
    ax.set_xticks([])
    if row_labels is None:
        ax.set_axis_off()
    else:
        size, pad = images.shape[1], 2  # image_grid's padding
        ax.set_yticks([pad + r * (size + pad) + size / 2 - 0.5 for r in range(len(row_labels))])
        ax.set_yticklabels([str(label) for label in row_labels], fontsize=10)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10, y=0.995, va="top")
    _save(fig, path)


def read_history(csv_path):
    """Reads a Keras CSVLogger file into {column: [floats]}."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {})}


def read_stages(run_dir):
    """The invocations of a run that started after its beginning, from its
    config.json: `[(epoch, step, command), ...]` (epoch = epochs completed
    before it), or []."""
    import json

    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            stages = json.load(f).get("stages", [])
        return [(int(s["epoch"]), int(s.get("step") or 0), s.get("command")) for s in stages]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _plot_losses(ax, history, stages=()):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no fractional epochs
    epochs = [int(e) + 1 for e in history["epoch"]]
    ax.plot(epochs, history["loss"], "o-", label="train")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], "s-", label="validation")
    marked = False
    for epoch, step, _ in stages:
        if 0 < epoch or step:  # where a resumed invocation took over
            ax.axvline(
                epoch + 0.5,
                color="grey",
                linestyle="--",
                linewidth=1,
                label=None if marked else "resumed",
            )
            marked = True
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats/pixel)")
    ax.grid(alpha=0.3)
    ax.legend()


def save_loss_curve(history, path, title="PixelCNN training", stages=()):
    """Plots train/validation loss (nats/pixel) per epoch to a PNG; `stages`
    (`read_stages`) marks where a resumed invocation took over."""
    fig = _figure(figsize=(6, 4), dpi=110)
    ax = fig.subplots()
    _plot_losses(ax, history, stages)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def partial_images(images, step):
    """The images as they are after `step` raster-order sampling steps: the
    first `step` pixels kept and the rest grey. Sampling never revisits a
    pixel, so this is exactly the sampler's state at that step."""
    images = np.asarray(images, "float32")
    n = len(images)
    flat = images.reshape(n, -1).copy()
    top = 255.0 if images.size and images.max() > 1.0 else 1.0  # 256-level images: 0..255
    flat[:, step:] = UNKNOWN * top
    return flat.reshape(images.shape)


def progress_steps(num_pixels, num_steps=8):
    """0, P/8, 2P/8, ..., P: the steps shown in the progress strip."""
    return [int(round(k * num_pixels / num_steps)) for k in range(num_steps + 1)]


def _panel_figure(panels, titles, row_titles=None, scale=3.0, title=None):
    """A row of image panels (2D arrays) with a caption above each."""
    heights = [p.shape[0] for p in panels]
    widths = [p.shape[1] for p in panels]
    dpi = 100
    fig_w = (sum(widths) * scale + 12 * len(panels) + (60 if row_titles else 10)) / dpi
    fig_h = (max(heights) * scale + (70 if title else 40)) / dpi
    fig = _figure(figsize=(fig_w, fig_h), dpi=dpi)
    left = (60 if row_titles else 5) / (fig_w * dpi)
    usable = 1 - left - 5 / (fig_w * dpi)
    total = sum(widths) + 4 * (len(panels) - 1)
    x = left
    bottom = 5 / (fig_h * dpi)
    for k, (panel, caption) in enumerate(zip(panels, titles)):
        w = usable * panel.shape[1] / total
        h = panel.shape[0] * scale / (fig_h * dpi)
        ax = fig.add_axes([x, bottom, w, h])
        _show(ax, panel)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(caption, fontsize=9)
        if k == 0 and row_titles:
            rows = len(row_titles)
            step = panel.shape[0] / rows
            ax.set_yticks([step * (r + 0.5) for r in range(rows)])
            ax.set_yticklabels(row_titles, fontsize=8)
        x += w + usable * 4 / total
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 8 / (fig_h * dpi), va="top")
    return fig


def save_progress_strip(images, path, num_steps=8, title=None):
    """Rows of images, columns the generation steps 0, P/8, ..., P."""
    images = np.asarray(images, "float32")
    num_pixels = int(np.prod(images.shape[1:]))
    steps = progress_steps(num_pixels, num_steps)
    columns = [image_grid(partial_images(images, s), ncols=1, pad_value=BORDER) for s in steps]
    fig = _panel_figure(columns, [f"step {s}" for s in steps], title=title)
    _save(fig, path)
    return steps


def save_data_grid(raw, binary, path, ncols=10):
    """Images as they are (grey or colour, uint8) next to their binarized form."""
    raw = np.asarray(raw, "float32")
    if raw.max() > 1:
        raw = raw / 255.0
    panels = [
        image_grid(raw, ncols=ncols, pad_value=BORDER),
        image_grid(binary, ncols=ncols, pad_value=BORDER),
    ]
    fig = _panel_figure(panels, ["data (uint8)", "binarized (each channel > 127.5)"])
    _save(fig, path)


def save_completion_figure(originals, occluded, completions, row_titles, path, title=None):
    """Per digit: the original, the occluded input (hidden part grey) and
    its K completions, as three side-by-side panels."""
    n, k = completions.shape[:2]
    panels = [
        image_grid(originals, ncols=1, pad_value=BORDER),
        image_grid(occluded, ncols=1, pad_value=BORDER),
        image_grid(
            completions.reshape((n * k,) + completions.shape[2:]), ncols=k, pad_value=BORDER
        ),
    ]
    fig = _panel_figure(
        panels, ["original", "occluded", f"{k} completions"], row_titles=row_titles, title=title
    )
    _save(fig, path)


def epoch_grids(run_dir):
    """[(epoch, path)] of a run's per-epoch sample grids, in epoch order."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "samples", "epoch_*.png")):
        match = re.fullmatch(r"epoch_(\d+)\.png", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_run_figure(run_dir, path, max_panels=6):
    """One picture of a run: its sample grids at up to `max_panels` epochs
    (first and last included, evenly spaced) above its loss curve."""
    import matplotlib.image

    grids = epoch_grids(run_dir)
    if len(grids) > max_panels:
        picks = np.unique(np.round(np.linspace(0, len(grids) - 1, max_panels)).astype(int))
        grids = [grids[i] for i in picks]
    log = os.path.join(run_dir, "log.csv")
    history = read_history(log) if os.path.exists(log) else {}
    ncols = max(len(grids), 1)
    fig = _figure(figsize=(max(3.2 * ncols, 6), 4.0 + (3.0 if history else 0)), dpi=100)
    rows = 2 if history else 1
    spec = fig.add_gridspec(rows, ncols, height_ratios=[4.0, 3.0][:rows])
    for k, (epoch, grid_path) in enumerate(grids):
        ax = fig.add_subplot(spec[0, k])
        arrays = os.path.splitext(grid_path)[0] + ".npz"  # the grid's images (SampleGrid)
        if os.path.exists(arrays):  # drawn afresh: no second, tiny "epoch N" inside
            with np.load(arrays) as f:
                grid = image_grid(f["images"], ncols=int(f["ncols"]))
            _show(ax, grid)
        else:
            ax.imshow(matplotlib.image.imread(grid_path), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"epoch {epoch}", fontsize=11)
    if history.get("epoch"):
        _plot_losses(fig.add_subplot(spec[1, :]), history, read_stages(run_dir))
    fig.suptitle(f"training progress: {os.path.basename(os.path.normpath(run_dir))}", fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return [e for e, _ in grids]
