import numpy as np
import pytest
from helpers import assert_picture

from keras_pixelcnn.figures import (
    UNKNOWN,
    epoch_grids,
    partial_images,
    progress_steps,
    save_completion_figure,
    save_data_grid,
    save_grid,
    save_progress_strip,
    save_run_figure,
)

pytestmark = pytest.mark.backend_independent  # see conftest.py


def test_partial_images_are_the_sampler_state():
    x = (np.random.default_rng(0).random((2, 28, 28, 1)) > 0.5).astype("float32")
    assert progress_steps(784) == [0, 98, 196, 294, 392, 490, 588, 686, 784]
    p = partial_images(x, 98)
    np.testing.assert_array_equal(p.reshape(2, -1)[:, :98], x.reshape(2, -1)[:, :98])
    assert np.all(p.reshape(2, -1)[:, 98:] == UNKNOWN)
    np.testing.assert_array_equal(partial_images(x, 784), x)


def test_figures_are_pngs(tmp_path):
    x = (np.random.default_rng(0).random((3, 28, 28, 1)) > 0.5).astype("float32")
    save_progress_strip(x, tmp_path / "p.png")
    save_data_grid(x[..., 0] * 255, x, tmp_path / "d.png", ncols=3)
    save_completion_figure(x, x, np.stack([x, x], axis=1), ["a", "b", "c"], tmp_path / "c.png")
    for name in "pdc":  # complete PNGs, larger than the images, with something drawn
        assert_picture(tmp_path / f"{name}.png", 28 * 2, 28 * 3)


def test_run_figure_picks_first_and_last_epochs(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    x = np.zeros((4, 8, 8, 1))
    for epoch in range(1, 10):
        save_grid(x, run / "samples" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}")
    (run / "log.csv").write_text(
        "epoch,loss,val_loss\n" + "".join(f"{e},{1 / (e + 1)},{1 / (e + 1.5)}\n" for e in range(9))
    )
    assert [e for e, _ in epoch_grids(run)] == list(range(1, 10))
    shown = save_run_figure(str(run), tmp_path / "r.png", max_panels=4)
    assert shown[0] == 1 and shown[-1] == 9 and len(shown) == 4
    assert_picture(tmp_path / "r.png", 8 * 2, 8 * 4)


def test_grid_rows_carry_their_labels(tmp_path):
    """Class grids name the digit of each row, in a margin left of the images."""
    import matplotlib.image

    from keras_pixelcnn.figures import save_grid

    x = np.zeros((6, 28, 28, 1), "float32")  # black images: any ink in the margin is a label
    save_grid(x, tmp_path / "plain.png", ncols=3)
    save_grid(x, tmp_path / "labelled.png", ncols=3, row_labels=[4, 7])
    plain = matplotlib.image.imread(tmp_path / "plain.png")
    labelled = matplotlib.image.imread(tmp_path / "labelled.png")
    assert labelled.shape[0] == plain.shape[0] and labelled.shape[1] == plain.shape[1] + 28
    margin = labelled[:, :28, :3].mean(axis=2)
    rows_with_ink = np.nonzero((margin < 0.5).any(axis=1))[0]
    half = labelled.shape[0] / 2
    assert (rows_with_ink < half).any() and (rows_with_ink > half).any()  # one label per row


def test_run_figure_draws_the_grids_from_their_arrays(tmp_path):
    """With samples/epoch_NNN.npz (SampleGrid writes it) the panels are drawn
    from the images, without the small title baked into the PNG."""
    import matplotlib.image

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    black = np.zeros((4, 8, 8, 1))
    for epoch in (1, 2):
        save_grid(black, run / "samples" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}")
    save_run_figure(str(run), tmp_path / "from_png.png")
    for epoch in (1, 2):  # the arrays say white: the figure must follow them
        np.savez(
            run / "samples" / f"epoch_{epoch:03d}.npz",
            images=np.ones((4, 8, 8, 1), "uint8"),
            ncols=2,
        )
    save_run_figure(str(run), tmp_path / "from_arrays.png")
    from_png = matplotlib.image.imread(tmp_path / "from_png.png")[..., :3].mean()
    from_arrays = matplotlib.image.imread(tmp_path / "from_arrays.png")[..., :3].mean()
    assert from_arrays > from_png + 0.05  # white images drawn, not the black PNGs


def test_loss_curve_marks_where_a_resumed_invocation_took_over():
    from keras_pixelcnn.figures import _figure, _plot_losses

    history = {"epoch": [0, 1, 2, 3], "loss": [0.3, 0.2, 0.15, 0.1], "val_loss": [0.3] * 4}
    ax = _figure().subplots()
    _plot_losses(ax, history, stages=[(0, 0, "first"), (2, 0, "resumed"), (3, 40, "again")])
    marks = [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    # bug: the first invocation marked, or a mark on an epoch instead of between two
    assert marks == [2.5, 3.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train",
        "validation",
        "resumed",
    ]


def test_unknown_pixels_are_grey_for_256_level_images_too():
    from keras_pixelcnn.figures import image_grid, partial_images

    gray = np.full((2, 4, 4, 1), 200.0, "float32")
    shown = image_grid(partial_images(gray, 5), pad=0)
    # bug: the 0.5 marker divided by 255 with the pixels (black, not grey)
    assert np.allclose(shown[shown != shown.max()], 0.5)
    assert np.allclose(shown.max(), 200 / 255)
    binary = np.ones((2, 4, 4, 1), "float32")
    assert np.allclose(np.unique(image_grid(partial_images(binary, 5), pad=0)), [0.5, 1.0])
