"""TensorBoard logs of `train`, read back from the event files: the scalar
and image tags, one summary per epoch, and a resumed run that continues the
curves without a duplicated or missing epoch."""

import glob
import math
import os

import pytest

from keras_pixelcnn import TrainConfig, load_mnist, train


def _events(log_dir):
    """{(subdir, tag): [(step, value or image shape)]} from every event file,
    by step as TensorBoard plots them. Each `fit` (one per epoch) writes its own
    files, and their names need not sort in the order they were written: two
    created in the same second sort by a process-wide counter, as text."""
    import tensorflow as tf

    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "*", "events.out.tfevents.*"))):
        sub = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "images":
                    width, height = (int(x) for x in value.tensor.string_val[:2])
                    item = (height, width)
                else:
                    item = (
                        float(tf.make_ndarray(value.tensor))
                        if value.HasField("tensor")
                        else value.simple_value
                    )
                found.setdefault((sub, value.tag), []).append((event.step, item))
    return {key: sorted(items, key=lambda item: item[0]) for key, items in found.items()}


def _config(run_dir, epochs):
    return TrainConfig(
        run_dir=str(run_dir),
        epochs=epochs,
        batch_size=16,
        filters=8,
        num_residual_blocks=1,
        num_samples=4,
        seed=0,
    )


@pytest.fixture
def mnist(fake_npz):
    return load_mnist(fake_npz, validation_size=16)


def test_scalars_and_sample_grids_per_epoch(mnist, tmp_path):
    quiet = dict(mnist=mnist, verbose=0, print_fn=lambda _: None)
    train(_config(tmp_path / "run", 2), **quiet)
    events = _events(tmp_path / "run" / "tensorboard")
    for key in [
        ("train", "epoch_loss"),
        ("validation", "epoch_loss"),
        ("train", "epoch_learning_rate"),
        ("train", "epoch_bits_per_dim"),
        ("validation", "epoch_bits_per_dim"),
        ("train", "epoch_images_per_second"),
        ("train", "samples"),
    ]:
        assert key in events, (key, sorted(events))
        assert [step for step, _ in events[key]] == [0, 1], (key, events[key])
    with open(tmp_path / "run" / "log.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    header = rows[0]
    losses = [float(r[header.index("loss")]) for r in rows[1:]]
    val = [float(r[header.index("val_loss")]) for r in rows[1:]]
    for epoch in (0, 1):
        assert events[("train", "epoch_loss")][epoch][1] == pytest.approx(losses[epoch], rel=1e-5)
        assert events[("validation", "epoch_loss")][epoch][1] == pytest.approx(val[epoch], rel=1e-5)
        assert events[("train", "epoch_bits_per_dim")][epoch][1] == pytest.approx(
            losses[epoch] / math.log(2), rel=1e-5
        )
        assert events[("validation", "epoch_bits_per_dim")][epoch][1] == pytest.approx(
            val[epoch] / math.log(2), rel=1e-5
        )
        assert events[("train", "epoch_learning_rate")][epoch][1] == pytest.approx(1e-3)
        assert events[("train", "epoch_images_per_second")][epoch][1] > 0
    # a 2x2 grid of 28x28 images with 2-pixel borders (figures.image_grid)
    assert {shape for _, shape in events[("train", "samples")]} == {(2 + 2 * 30, 2 + 2 * 30)}


def test_resumed_run_continues_the_curves(mnist, tmp_path):
    quiet = dict(mnist=mnist, verbose=0, print_fn=lambda _: None)
    train(_config(tmp_path / "run", 1), **quiet)
    train(_config(tmp_path / "run", 3), **quiet)  # resumes at epoch 2
    events = _events(tmp_path / "run" / "tensorboard")
    for key in [
        ("train", "epoch_loss"),
        ("validation", "epoch_loss"),
        ("train", "epoch_bits_per_dim"),
        ("train", "samples"),
    ]:
        assert [step for step, _ in events[key]] == [0, 1, 2], (key, events[key])
    with open(tmp_path / "run" / "log.csv") as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    losses = [float(r[rows[0].index("loss")]) for r in rows[1:]]
    assert [v for _, v in events[("train", "epoch_loss")]] == pytest.approx(losses, rel=1e-5)
