"""Training with `model.fit`: data, callbacks, resume, and the final report.

A run directory holds everything a run writes:

    config.json        the configuration and the command line
    log.csv            per-epoch losses (CSVLogger, appended on resume)
    samples/           epoch_001.png, ... sample grids from fixed noise
    backup/            the last backup (see resume.py): run `train` again to resume
    best.keras         the best model so far by validation loss
    model.keras        the final model (the best by validation loss)
    loss_curve.png     train and validation loss per epoch
    metrics.json       exact test NLL on the full 10,000-image test split
"""

import dataclasses
import json
import math
import os
import sys
import time

import numpy as np
import keras

from keras_pixelcnn import data as data_lib
from keras_pixelcnn.callbacks import (
    BestCheckpoint,
    Diverged,
    EpochProgress,
    EpochReport,
    NaNGuard,
    SampleGrid,
)
from keras_pixelcnn.distribution import check_distribute, distribution_scope, prepare_model
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.evaluation import evaluate_nll
from keras_pixelcnn.io import atomic_path, check_writable_dir, save_json, save_model
from keras_pixelcnn.plots import read_history, save_loss_curve
from keras_pixelcnn.resume import TrainingState, describe, epoch_data, load_state, restore
from keras_pixelcnn.runtime import fastest_jit_compile

MODEL_FAMILIES = ("pixelcnn", "gated")
PRECISIONS = ("float32", "mixed_bfloat16")
# Configuration fields that change the model or its data stream: a run
# directory can only be resumed with the same values.
RUN_IDENTITY = ("model", "filters", "num_residual_blocks", "num_layers", "conditional",
                "batch_size", "learning_rate", "seed", "limit", "validation_size", "init_from")


class TrainingInterrupted(PixelCNNError):
    """Ctrl-C during training: the backup is kept (exit code 130)."""

    exit_code = 130


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
    backup_every: int | None = None  # also back up every N steps (default: per epoch)
    deterministic: bool = False  # deterministic ops: a resumed run equals an uninterrupted one
    distribute: str = "none"  # none, mirrored, multi-worker (TF) or data-parallel (JAX)
    precision: str = "float32"  # or "mixed_bfloat16": bf16 compute, float32 weights
    init_from: str | None = None  # start from a trained .keras model's weights (fine-tuning)

    def validate(self):
        for name in ("epochs", "batch_size", "filters", "num_samples", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise PixelCNNError(f"{name.replace('_', '-')} must be a positive integer, got {value}")
        if self.num_residual_blocks < 0:
            raise PixelCNNError(f"num-residual-blocks must be >= 0, got {self.num_residual_blocks}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise PixelCNNError(f"learning-rate must be a positive number, got {self.learning_rate}")
        if self.backup_every is not None and (
            not isinstance(self.backup_every, int) or self.backup_every < 1
        ):
            raise PixelCNNError(f"backup-every must be a positive integer, got {self.backup_every}")
        if self.limit is not None and self.limit < 1:
            raise PixelCNNError(f"limit must be a positive integer, got {self.limit}")
        if self.model not in MODEL_FAMILIES:
            raise PixelCNNError(
                f"unknown model {self.model!r}; choose one of {', '.join(MODEL_FAMILIES)}"
            )
        check_distribute(self.distribute)
        if self.precision not in PRECISIONS:
            raise PixelCNNError(
                f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"
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
        # The fastest setting measured per backend (see runtime.py).
        jit_compile=fastest_jit_compile(),
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


def _prepare_run_dir(config, overwrite):
    """Checks that `config.run_dir` is new, or a run with the same identity
    (resume), or clears it with `overwrite`."""
    import shutil

    run = config.run_dir
    record = os.path.join(run, "config.json")
    if not os.path.isdir(run) or not os.listdir(run):
        return
    if not os.path.exists(record):
        raise PixelCNNError(f"{run} exists and is not a keras-pixelcnn run directory (no config.json)")
    if overwrite:
        shutil.rmtree(run)
        return
    try:
        with open(record) as f:
            old = json.load(f)["config"]
    except (OSError, ValueError, KeyError):
        return
    new = dataclasses.asdict(config)
    for key in RUN_IDENTITY:
        if key in old and old[key] != new[key]:
            raise PixelCNNError(
                f"{run} holds a run with {key.replace('_', '-')}={old[key]}, not {new[key]}; "
                "resume it with the same options, or pass --overwrite or another --run-dir"
            )


def _truncate_log(csv_path, epochs):
    """Keeps the header and the rows of the first `epochs` epochs (a killed
    run may have logged an epoch it did not back up)."""
    if not os.path.exists(csv_path):
        return
    with open(csv_path) as f:
        lines = f.read().splitlines()
    if not lines:
        return
    kept = [lines[0]]
    for line in lines[1:]:
        try:
            if int(float(line.split(",")[0])) < epochs:
                kept.append(line)
        except ValueError:
            pass  # a torn last line
    if kept != lines:
        with atomic_path(csv_path) as tmp:
            with open(tmp, "w") as f:
                f.write("\n".join(kept) + "\n")


def warm_start(model, source, name="the source model"):
    """Copies the weights of the trained model `source` into `model`, whose
    architecture must be the same (fine-tuning; the optimizer starts fresh)."""
    ours = [tuple(w.shape) for w in model.weights]
    theirs = [tuple(w.shape) for w in source.weights]
    if ours != theirs:
        raise PixelCNNError(
            f"{name} does not match the model to train ({source.count_params():,} parameters "
            f"in {len(theirs)} weights, not {model.count_params():,} in {len(ours)}); pass the "
            "--model, --filters, --blocks, --layers and --conditional it was trained with"
        )
    model.set_weights(source.get_weights())


def _set_deterministic(enabled):
    if enabled and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def train(config, mnist=None, verbose=1, command=None, print_fn=None, overwrite=False):
    """Trains a model as `config` says; returns the final metrics dict.

    Running it again with the same configuration resumes from the last
    backup (`RUN_DIR/backup/`) and, once all epochs are done, only rewrites
    the final outputs.

    Args:
        config: a `TrainConfig`.
        mnist: an optional `data.MNIST` (tests pass small synthetic data);
            by default it is loaded from `config.data` or tfds.
        verbose: the `fit` verbosity (1: progress bar).
        command: the command line to record in config.json / metrics.json.
        print_fn: where progress lines go (default: print).
        overwrite: start over in an existing run directory.
    """
    print_fn = print_fn or (lambda line: print(line, flush=True))
    config.validate()
    check_writable_dir(config.run_dir)
    _prepare_run_dir(config, overwrite)
    if mnist is None:
        mnist = data_lib.load_mnist(config.data, config.validation_size)
    train_split = mnist.train if config.limit is None else mnist.train.take(config.limit)
    if len(mnist.validation) == 0:
        raise PixelCNNError("the validation split is empty")
    image_shape = tuple(train_split.images.shape[1:])
    num_pixels = int(np.prod(image_shape))

    run = config.run_dir
    backup_dir = os.path.join(run, "backup")
    state = load_state(backup_dir)
    source = None
    if config.init_from and state is None:
        from keras_pixelcnn.saving import load_model

        source = load_model(config.init_from)  # checked before anything is written

    with distribution_scope(config.distribute) as replicas:
        if replicas > 1:
            print_fn(f"training on {replicas} replicas ({config.distribute}); "
                     f"global batch {config.batch_size}")
        _set_deterministic(config.deterministic)
        keras.utils.set_random_seed(config.seed)
        previous_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(config.precision)
        try:
            model = prepare_model(build_model(config, image_shape), config.distribute)
        finally:
            keras.config.set_dtype_policy(previous_policy)
        compile_model(model, config.learning_rate)

        first_epoch, first_step = 0, 0
        if state is not None:
            restore(model, state)
            first_epoch, first_step = int(state["epoch"]), int(state["step"] or 0)
            print_fn(f"resuming from the backup {describe(first_epoch, first_step)} ({backup_dir})")
        elif source is not None:
            warm_start(model, source, config.init_from)
            print_fn(f"starting from the weights of {config.init_from}")
        os.makedirs(run, exist_ok=True)
        record = {"config": dataclasses.asdict(config), "command": command}
        save_json(record, os.path.join(run, "config.json"))
        csv_path = os.path.join(run, "log.csv")
        best_path = os.path.join(run, "best.keras")
        _truncate_log(csv_path, first_epoch)

        labels = train_split.labels if config.conditional else None
        batches_per_epoch = math.ceil(len(train_split) / config.batch_size)
        backup = TrainingState(backup_dir, batches_per_epoch, config.backup_every,
                               first_epoch, first_step)
        callbacks = [
            EpochProgress(config.epochs, verbose),
            NaNGuard(),  # first: nothing after it may save NaN weights
            keras.callbacks.CSVLogger(csv_path, append=True),
            BestCheckpoint(best_path, best=_best_val_loss(csv_path)),
            SampleGrid(
                os.path.join(run, "samples"), config.num_samples, config.seed, config.sampler
            ),
            EpochReport(len(train_split), num_pixels, print_fn=print_fn),
            backup,  # last: the commit point of an epoch
        ]
        validation = (
            [mnist.validation.images, mnist.validation.labels] if config.conditional
            else mnist.validation.images,
            mnist.validation.images,
        )

        start = time.perf_counter()
        try:
            # One `fit` per epoch, on that epoch's images in their fixed order.
            for epoch in range(first_epoch, config.epochs):
                skip = first_step if epoch == first_epoch else 0
                x, y = epoch_data(train_split.images, labels, config.batch_size, config.seed,
                                  epoch, skip)
                model.fit(x, y, batch_size=config.batch_size, epochs=epoch + 1,
                          initial_epoch=epoch, validation_data=validation,
                          validation_batch_size=256, callbacks=callbacks, shuffle=False,
                          verbose=verbose)
        except KeyboardInterrupt:
            where = backup.last or (state and (state["epoch"], state["step"]))
            kept = (f"the backup {describe(*where)} is kept in {backup_dir}"
                    if where else "no backup had been written yet")
            raise TrainingInterrupted(
                f"interrupted: {kept}; run the same command again to resume"
            ) from None
        except Diverged as e:
            where = backup.last or (state and (state["epoch"], state["step"]))
            kept = (f"the last good backup ({describe(*where)}) is kept in {backup_dir}"
                    if where else "no good backup exists yet")
            best = f" and the best model in {best_path}" if os.path.exists(best_path) else ""
            raise PixelCNNError(
                f"training diverged: {e}; {kept}{best}. Lower --learning-rate and start a new "
                "run (--overwrite or another --run-dir)"
            ) from None
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
        "init_from": config.init_from,
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
