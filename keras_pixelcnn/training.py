"""Training with `model.fit`: data, callbacks, resume, and the final report.

A run directory holds everything a run writes:

    config.json        the configuration and the command line
    log.csv            per-epoch losses (CSVLogger, appended on resume)
    samples/           epoch_001.png, ... sample grids from fixed noise
    backup/            BackupAndRestore state: run `train` again to resume
    best.keras         the best model so far by validation loss
    model.keras        the final model (the best by validation loss)
    loss_curve.png     train and validation loss per epoch
    metrics.json       exact test NLL on the full 10,000-image test split
"""

import dataclasses
import math
import os
import sys
import time

import numpy as np
import keras

from keras_pixelcnn import data as data_lib
from keras_pixelcnn.callbacks import EpochReport, SampleGrid
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.evaluation import evaluate_nll
from keras_pixelcnn.io import check_writable_dir, save_json, save_model
from keras_pixelcnn.plots import read_history, save_loss_curve

MODEL_FAMILIES = ("pixelcnn", "gated")


@dataclasses.dataclass
class TrainConfig:
    """Plain-data training configuration; the defaults are the reference's."""

    run_dir: str = "runs/pixelcnn"
    data: str | None = None  # a Keras mnist.npz; None loads with tfds
    model: str = "pixelcnn"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    filters: int = 64
    num_residual_blocks: int = 4  # pixelcnn
    num_layers: int = 8  # gated
    conditional: bool = False  # gated: class-conditional on the digit label
    seed: int = 0
    num_samples: int = 16  # images per epoch grid
    sampler: str = "fast"
    limit: int | None = None  # train on the first N training images only
    validation_size: int = data_lib.VALIDATION_SIZE

    def validate(self):
        for name in ("epochs", "batch_size", "filters", "num_samples", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise PixelCNNError(f"{name.replace('_', '-')} must be a positive integer, got {value}")
        if self.num_residual_blocks < 0:
            raise PixelCNNError(f"num-residual-blocks must be >= 0, got {self.num_residual_blocks}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise PixelCNNError(f"learning-rate must be a positive number, got {self.learning_rate}")
        if self.limit is not None and self.limit < 1:
            raise PixelCNNError(f"limit must be a positive integer, got {self.limit}")
        if self.model not in MODEL_FAMILIES:
            raise PixelCNNError(
                f"unknown model {self.model!r}; choose one of {', '.join(MODEL_FAMILIES)}"
            )
        if self.conditional and self.model != "gated":
            raise PixelCNNError("class conditioning needs the gated model (--model gated)")


def build_model(config, image_shape=data_lib.IMAGE_SHAPE):
    from keras_pixelcnn.models import build_gated_pixelcnn, build_pixelcnn

    if config.model == "gated":
        return build_gated_pixelcnn(
            input_shape=image_shape,
            filters=config.filters,
            num_layers=config.num_layers,
            num_classes=data_lib.NUM_CLASSES if config.conditional else None,
        )
    return build_pixelcnn(
        input_shape=image_shape,
        filters=config.filters,
        num_residual_blocks=config.num_residual_blocks,
    )


def compile_model(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        # XLA made training slower on CPU for the TF backend (measured);
        # JAX always compiles.
        jit_compile=False if keras.backend.backend() == "tensorflow" else "auto",
    )


def _best_val_loss(csv_path):
    if not os.path.exists(csv_path):
        return None
    try:
        history = read_history(csv_path)
    except (OSError, ValueError, KeyError):
        return None
    values = [v for v in history.get("val_loss", []) if math.isfinite(v)]
    return min(values) if values else None


def train(config, mnist=None, verbose=1, command=None, print_fn=None):
    """Trains a model as `config` says; returns the final metrics dict.

    Args:
        config: a `TrainConfig`.
        mnist: an optional `data.MNIST` (tests pass small synthetic data);
            by default it is loaded from `config.data` or tfds.
        verbose: the `fit` verbosity (1: progress bar).
        command: the command line to record in config.json / metrics.json.
    """
    print_fn = print_fn or (lambda line: print(line, flush=True))
    config.validate()
    check_writable_dir(config.run_dir)
    if mnist is None:
        mnist = data_lib.load_mnist(config.data, config.validation_size)
    train_split = mnist.train if config.limit is None else mnist.train.take(config.limit)
    if len(mnist.validation) == 0:
        raise PixelCNNError("the validation split is empty")
    image_shape = tuple(train_split.images.shape[1:])
    num_pixels = int(np.prod(image_shape))

    run = config.run_dir
    os.makedirs(run, exist_ok=True)
    record = {"config": dataclasses.asdict(config), "command": command}
    save_json(record, os.path.join(run, "config.json"))

    keras.utils.set_random_seed(config.seed)
    model = build_model(config, image_shape)
    compile_model(model, config.learning_rate)

    csv_path = os.path.join(run, "log.csv")
    best_path = os.path.join(run, "best.keras")
    callbacks = [
        keras.callbacks.BackupAndRestore(
            os.path.join(run, "backup"), save_freq="epoch", delete_checkpoint=False
        ),
        keras.callbacks.TerminateOnNaN(raise_error=True),
        keras.callbacks.CSVLogger(csv_path, append=True),
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor="val_loss",
            save_best_only=True,
            initial_value_threshold=_best_val_loss(csv_path),
        ),
        SampleGrid(
            os.path.join(run, "samples"), config.num_samples, config.seed, config.sampler
        ),
        EpochReport(len(train_split), num_pixels, print_fn=print_fn),
    ]
    def inputs(split):
        return [split.images, split.labels] if config.conditional else split.images

    start = time.perf_counter()
    model.fit(
        inputs(train_split),
        train_split.images,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(inputs(mnist.validation), mnist.validation.images),
        callbacks=callbacks,
        shuffle=True,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start

    if os.path.exists(best_path):
        model = keras.saving.load_model(best_path)
    save_model(model, os.path.join(run, "model.keras"))
    history = read_history(csv_path)
    save_loss_curve(history, os.path.join(run, "loss_curve.png"))

    print_fn(f"evaluating the test NLL on {len(mnist.test)} test images ...")
    test = evaluate_nll(model, mnist.test.images, mnist.test.labels)
    # A cheap reproducibility anchor: the NLL of the first 1,000 test images.
    first = mnist.test.take(1000)
    test_first_1000 = evaluate_nll(model, first.images, first.labels)["nats_per_image"]
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None
    metrics = {
        "model": config.model,
        "conditional": config.conditional,
        "parameters": int(model.count_params()),
        "test_nll": test,
        "test_nll_first_1000_nats_per_image": test_first_1000,
        "epochs": len(history.get("epoch", [])),
        "best_epoch": best_epoch,
        "final_val_nats_per_pixel": history["val_loss"][-1] if history.get("val_loss") else None,
        "train_images": len(train_split),
        "validation_images": len(mnist.validation),
        "binarization": "uint8 pixel > 127.5",
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "fit_seconds_this_invocation": round(seconds, 1),
        "command": command,
    }
    save_json(metrics, os.path.join(run, "metrics.json"))
    print_fn(
        f"test NLL: {test['nats_per_pixel']:.4f} nats/pixel · "
        f"{test['nats_per_image']:.2f} ± {test['nats_per_image_se']:.2f} nats/image · "
        f"{test['bits_per_dim']:.4f} bits/dim"
    )
    return metrics
