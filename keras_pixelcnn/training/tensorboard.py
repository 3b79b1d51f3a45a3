"""TensorBoard logs of a training run, in `RUN_DIR/tensorboard/`.

`keras.callbacks.TensorBoard` writes the per-epoch losses (nats/pixel) and the
learning rate; `TensorBoardExtras` adds what it does not know: the losses in
bits/dim, the training throughput in images/s and the epoch's sample grid as
an image (the same noise every epoch, so the pictures show learning). Every
summary's step is the epoch index, so a resumed run continues the same curves.

    tensorboard --logdir runs/
"""

import math
import os

import keras
import numpy as np

TRAIN, VALIDATION = "train", "validation"


def tensorboard_callbacks(log_dir, sample_grid, epoch_report):
    """Keras's TensorBoard callback and the extras, to be called in this order."""
    return [
        keras.callbacks.TensorBoard(log_dir, histogram_freq=0, write_graph=False),
        TensorBoardExtras(log_dir, sample_grid, epoch_report),
    ]


class TensorBoardExtras(keras.callbacks.Callback):
    """Logs bits/dim, images/s and the sample grid of each epoch.

    Bits/dim is the loss over ln 2, written here rather than as a compiled
    metric: a metric adds columns to `log.csv`, and a run started before it
    would then resume appending rows under its old header.

    Args:
        log_dir: str, the TensorBoard directory (`train/` and `validation/`
            below it, as Keras's TensorBoard callback writes them).
        sample_grid: the run's `SampleGrid` callback (its `last_grid`), or
            None when the run draws no grids.
        epoch_report: the run's `EpochReport` callback (its throughput).
    """

    def __init__(self, log_dir, sample_grid, epoch_report):
        super().__init__()
        self.log_dir = log_dir
        self.sample_grid = sample_grid
        self.epoch_report = epoch_report
        self._writers = {}

    def _writer(self, name):
        import tensorflow as tf

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(os.path.join(self.log_dir, name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        logs = logs or {}
        with self._writer(TRAIN).as_default(step=epoch):
            if "loss" in logs:
                tf.summary.scalar("epoch_bits_per_dim", logs["loss"] / math.log(2))
            tf.summary.scalar("epoch_images_per_second", self.epoch_report.images_per_second)
            grid = self.sample_grid.last_grid if self.sample_grid else None
            if grid is not None:
                grid = np.asarray(grid, "float32")
                tf.summary.image("samples", grid[None, ..., None] if grid.ndim == 2 else grid[None])
        if "val_loss" in logs:
            with self._writer(VALIDATION).as_default(step=epoch):
                tf.summary.scalar("epoch_bits_per_dim", logs["val_loss"] / math.log(2))
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
