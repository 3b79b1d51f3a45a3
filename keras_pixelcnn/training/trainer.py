"""Training with `model.fit`: data, callbacks, resume, and the final report.

A run directory holds everything a run writes:

    config.json        the configuration and the command line
    log.csv            per-epoch losses (CSVLogger, appended on resume)
    samples/           epoch_001.png, ... sample grids from fixed noise
    tensorboard/       TensorBoard logs (`tensorboard --logdir runs/`)
    backup/            the last backup (see resume.py): run `train` again to resume
    best.keras         the best model so far by validation loss
    model.keras        the final model (the best by validation loss)
    loss_curve.png     train and validation loss per epoch
    metrics.json       exact test NLL on the full 10,000-image test split
"""

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np

from keras_pixelcnn import data as data_lib
from keras_pixelcnn.atomic import atomic_path, check_writable_dir, save_json
from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.evaluation.nll import (
    TEST_DRAWS,
    evaluate_dynamic,
    per_image_nll,
    summarize_nll,
)
from keras_pixelcnn.figures import read_history, read_stages, save_loss_curve
from keras_pixelcnn.keras_file import save_model
from keras_pixelcnn.models.contract import is_conditional, receptive_field
from keras_pixelcnn.runtime import fastest_jit_compile
from keras_pixelcnn.training.callbacks import (
    BestCheckpoint,
    DeferredInterrupt,
    Diverged,
    EpochProgress,
    EpochReport,
    NaNGuard,
    PolyakAveraging,
    SampleGrid,
)
from keras_pixelcnn.training.config import RUN_IDENTITY
from keras_pixelcnn.training.distribution import distribution_scope, prepare_model
from keras_pixelcnn.training.input_pipeline import fit_inputs, validation_inputs
from keras_pixelcnn.training.resume import TrainingState, describe, epoch_data, load_state, restore
from keras_pixelcnn.training.tensorboard import tensorboard_callbacks


class TrainingInterrupted(PixelCNNError):
    """Ctrl-C during training: the backup is kept (exit code 130)."""

    exit_code = 130


def build_model(config, image_shape=data_lib.IMAGE_SHAPE, num_classes=data_lib.NUM_CLASSES):
    """The model of `config` for images of `image_shape`: its likelihood
    models their channels at `config.levels`."""
    from keras_pixelcnn.likelihoods import get_likelihood
    from keras_pixelcnn.models import build_gated_pixelcnn, build_pixelcnn, build_pixelcnn_pp

    channels = image_shape[-1]
    likelihood = get_likelihood(
        config.resolved_likelihood(channels), config.mixtures, channels, config.levels
    )
    if config.model == "pixelcnn_pp":
        return build_pixelcnn_pp(
            input_shape=image_shape,
            filters=config.filters,
            num_resnets=config.num_residual_blocks,
            dropout=config.dropout,
            num_classes=num_classes if config.conditional else None,
            likelihood=likelihood,
        )
    if config.model == "gated":
        return build_gated_pixelcnn(
            input_shape=image_shape,
            filters=config.filters,
            num_layers=config.num_layers,
            num_classes=num_classes if config.conditional else None,
            likelihood=likelihood,
        )
    return build_pixelcnn(
        input_shape=image_shape,
        filters=config.filters,
        num_residual_blocks=config.num_residual_blocks,
        likelihood=likelihood,
    )


def training_loss(model):
    """Binary cross-entropy on logits for Bernoulli models (the numbers of
    every run before likelihoods existed), else the likelihood's NLL."""
    from keras_pixelcnn.likelihoods import Bernoulli, NegativeLogLikelihood
    from keras_pixelcnn.models.contract import likelihood

    lik = likelihood(model)
    if isinstance(lik, Bernoulli):
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return NegativeLogLikelihood(lik)


def compile_model(model, learning_rate, lr_decay=1.0, ema=None):
    """Adam at `learning_rate`, decayed by `lr_decay` per step (Keras's
    schedule of the optimizer's step count, which the backups keep); with
    `ema`, Keras's moving average of the weights at that momentum
    (`use_ema`: the averages are optimizer variables, so backups keep them)."""
    if lr_decay != 1.0:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=1, decay_rate=lr_decay
        )
    average = {"use_ema": True, "ema_momentum": float(ema)} if ema else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, **average),
        loss=training_loss(model),
        # The fastest setting measured per backend (see runtime.py).
        jit_compile=fastest_jit_compile(),
    )
    # Built now, not inside the first traced step: on TensorFlow a step that
    # creates variables is traced twice (a small PixelCNN++ run: about 11 s more,
    # benchmarks/first_trace.py).
    model.optimizer.build(model.trainable_variables)


def _prepare_run_dir(config, overwrite):
    """Checks that `config.run_dir` is new, or a run with the same identity
    (resume), or clears it with `overwrite`."""
    run = config.run_dir
    record = os.path.join(run, "config.json")
    if not os.path.isdir(run) or not os.listdir(run):
        return
    if not os.path.exists(record):
        raise PixelCNNError(
            f"{run} exists and is not a keras-pixelcnn run directory (no config.json)"
        )
    if overwrite:
        shutil.rmtree(run)
        return
    try:
        with open(record) as f:
            old = json.load(f)["config"]
        if not isinstance(old, dict):
            raise TypeError("'config' is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:120]
        raise PixelCNNError(
            f"{record} is unreadable ({reason}), so the run it describes cannot be resumed "
            "safely; pass --overwrite to start over, or another --run-dir"
        ) from None
    new = dataclasses.asdict(config)
    for key in RUN_IDENTITY:
        if key in old and old[key] != new[key]:
            raise UsageError(
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


def _stages(record, first_epoch, first_step, command):
    """The run's invocations so far, this one included: where each started
    (epochs completed, step) and its command (loss curves mark resumes)."""
    try:
        with open(record) as f:
            stages = list(json.load(f).get("stages", []))
    except (OSError, ValueError, AttributeError):
        stages = []
    here = {"epoch": first_epoch, "step": first_step, "command": command}
    if not stages or (stages[-1]["epoch"], stages[-1]["step"]) != (first_epoch, first_step):
        stages.append(here)
    return stages


@contextlib.contextmanager
def op_determinism(enabled):
    """TensorFlow's deterministic ops for the block (`--deterministic`), then
    the process's setting as it was: left on, it would also turn off XLA
    (`jit_compile`) for every model the caller compiles afterwards."""
    if not (enabled and keras.backend.backend() == "tensorflow"):
        yield
        return
    # the public API has no way back (`disable_op_determinism` is not exported)
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


def _log_history(csv_path):
    """The run's per-epoch log (all invocations) as {column: [floats]}, or {}."""
    if not os.path.exists(csv_path):
        return {}
    try:
        return read_history(csv_path)
    except (OSError, ValueError, KeyError):
        return {}


def _best_val_loss(history):
    values = [v for v in history.get("val_loss", []) if math.isfinite(v)]
    return min(values) if values else None


def _merge(earlier, later):
    """Two per-epoch histories one after the other."""
    keys = set(earlier) | set(later)
    return {k: list(earlier.get(k, [])) + list(later.get(k, [])) for k in keys}


class _Run:
    """The paths of a run directory (see the module docstring)."""

    def __init__(self, directory):
        self.dir = directory
        self.backup = os.path.join(directory, "backup")
        self.log = os.path.join(directory, "log.csv")
        self.best = os.path.join(directory, "best.keras")
        self.model = os.path.join(directory, "model.keras")
        self.config = os.path.join(directory, "config.json")
        self.metrics = os.path.join(directory, "metrics.json")
        self.loss_curve = os.path.join(directory, "loss_curve.png")
        self.samples = os.path.join(directory, "samples")
        self.tensorboard = os.path.join(directory, "tensorboard")


def load_data(config):
    """The run's train, validation and test splits, as `config` describes them."""
    return data_lib.load_mnist(
        config.data,
        config.validation_size,
        config.binarize,
        config.levels,
        config.image_size,
        config.channels,
    )


def _setup(config, mnist, overwrite):
    """Validates everything before anything is written; returns the splits,
    the backup state (or None) and the model to start from (or None)."""
    config.validate()
    check_writable_dir(config.run_dir)
    _prepare_run_dir(config, overwrite)
    if mnist is None:
        mnist = load_data(config)
    if mnist.levels != config.levels:
        raise UsageError(f"the data has {mnist.levels} levels, not --levels {config.levels}")
    if config.conditional and not mnist.labeled:
        raise UsageError(f"{config.data} has no labels; drop --conditional")
    channels = mnist.validation.images.shape[-1]
    if channels > 1 and config.likelihood == "bernoulli":
        raise UsageError(
            f"--likelihood bernoulli models one-channel images; the data has {channels} "
            "channels: drop --likelihood"
        )
    if len(mnist.validation) == 0:
        raise PixelCNNError("the validation split is empty")
    state = load_state(os.path.join(config.run_dir, "backup"))
    source = None
    if config.init_from and state is None:
        from keras_pixelcnn.keras_file import load_model

        source = load_model(config.init_from)  # checked before anything is written
    return mnist, state, source


def _build_or_restore(config, image_shape, num_classes, state, source, print_fn):
    """Builds and compiles the model; loads the backup or the warm start."""
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        try:
            built = build_model(config, image_shape, num_classes)
        except ValueError as e:  # an option the data's shape does not allow: nothing written yet
            raise UsageError(f"no {config.model} for {image_shape} images: {e}") from None
        model = prepare_model(built, config.distribute)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    compile_model(model, config.learning_rate, config.lr_decay, config.ema)
    about = f"model {model.name}: {model.count_params():,} parameters"
    if config.distribute == "none":  # one forward pass of 2 x 407 images (28 x 28), one device
        h, w = image_shape[:2]
        seen = int(receptive_field(model, num_images=2, past_only=True).sum())
        about += (
            f"; the output at pixel ({h // 2}, {w // 2}) depends on {seen} of the "
            f"{(h // 2) * w + w // 2} pixels before it (receptive field, measured)"
        )
    if state is not None:
        restore(model, state)
        where = (
            f"resuming from the backup {describe(state['epoch'], state['step'] or 0)} "
            f"({os.path.dirname(state['weights_path'])})"
        )
    elif source is not None:
        warm_start(model, source, config.init_from)
        where = f"starting from the weights of {config.init_from}"
    else:
        where = None
    # Only now, when nothing can fail any more before training: a failed run
    # prints its one error line and nothing else.
    print_fn(about)
    if where:
        print_fn(where)
    return model


def _callbacks(config, run, num_train, num_pixels, backup, interrupt, best, verbose, print_fn):
    grid = (
        SampleGrid(run.samples, config.num_samples, config.seed, config.sampler)
        if config.num_samples
        else None  # --samples 0: no grids (and no sampler to compile)
    )
    report = EpochReport(num_train, num_pixels, print_fn=print_fn)
    averaging = PolyakAveraging() if config.ema else None
    callbacks = [
        EpochProgress(config.epochs, verbose),
        NaNGuard(),  # first: nothing after it may save NaN weights
        keras.callbacks.CSVLogger(run.log, append=True),
        averaging and averaging.swap_in,  # validation, checkpoint and grid: the average
        BestCheckpoint(run.best, best=best),
        grid,
        report,
        *tensorboard_callbacks(run.tensorboard, grid, report),
        averaging and averaging.swap_out,  # training and backups: the raw weights
        backup,  # the commit point of an epoch
        interrupt,  # last: Ctrl-C lands after the step's or the epoch's backup
    ]
    return [callback for callback in callbacks if callback is not None]


def _fit_epochs(
    model, config, mnist, train_split, validation, callbacks, first_epoch, first_step, verbose
):
    """One `fit` per epoch, on that epoch's images in their fixed order.
    Returns the per-epoch logs of this invocation (the `History`s merged).

    Not one `fit` over a `keras.utils.PyDataset` that redraws the order in
    `on_epoch_end`: an epoch resumed part-way has fewer steps than the next
    ones, and `fit` keeps one step count for all epochs."""
    logs = {}
    for epoch in range(first_epoch, config.epochs):
        skip = first_step if epoch == first_epoch else 0
        split = data_lib.epoch_split(mnist, train_split, config.seed, epoch)
        labels = split.labels if config.conditional else None
        x, y = epoch_data(split.images, labels, config.batch_size, config.seed, epoch, skip)
        for callback in callbacks:  # images/s of a resumed epoch: the images it trains on
            if isinstance(callback, EpochReport):
                callback.num_train_images = len(y)
        history = model.fit(
            **fit_inputs(x, y, config.batch_size),
            epochs=epoch + 1,
            initial_epoch=epoch,
            **validation,
            callbacks=callbacks,
            shuffle=False,
            verbose=verbose,
        )
        for key, values in history.history.items():
            logs.setdefault(key, []).extend(float(v) for v in values)
        logs.setdefault("epoch", []).extend(history.epoch)
    return logs


def _where(backup, state):
    return backup.last or (state and (state["epoch"], state["step"]))


def _interrupted(backup, state, run):
    where = _where(backup, state)
    if not where:
        return TrainingInterrupted(
            "interrupted before the first backup: nothing was kept; "
            "run the same command again to start over"
        )
    return TrainingInterrupted(
        f"interrupted: the backup {describe(*where)} is kept in {run.backup}; "
        "run the same command again to resume"
    )


def _diverged(error, backup, state, run):
    where = _where(backup, state)
    kept = (
        f"the last good backup ({describe(*where)}) is kept in {run.backup}"
        if where
        else "no good backup exists yet"
    )
    best = f" and the best model in {run.best}" if os.path.exists(run.best) else ""
    return PixelCNNError(
        f"training diverged: {error}; {kept}{best}. Lower --learning-rate and start a new "
        "run (--overwrite or another --run-dir)"
    )


def _test_nll(model, mnist, progress):
    """The final test NLL and the NLL of the first 1,000 test images (a cheap
    reproducibility anchor), in one pass over the test split."""
    if mnist.binarization == "dynamic":
        test = evaluate_dynamic(
            model, mnist.test.images, mnist.test.labels, TEST_DRAWS, progress=progress
        )
        return test, float(np.mean(test.pop("per_image_nats")[:1000]))
    labels = mnist.test.labels if is_conditional(model) else None
    nll = per_image_nll(model, mnist.test.images, labels, progress=progress)
    num_pixels = int(np.prod(mnist.test.images.shape[1:]))
    return summarize_nll(nll, num_pixels), float(np.mean(nll[:1000]))


def _report(
    model, config, mnist, train_split, history, seconds, command, run, print_fn, test_nll, progress
):
    """Writes model.keras, loss_curve.png and metrics.json (the test NLL,
    unless `test_nll` is False)."""
    save_model(model, run.model)
    save_loss_curve(history, run.loss_curve, stages=read_stages(run.dir))
    dynamic = mnist.binarization == "dynamic"
    test = test_first_1000 = None
    if test_nll:
        print_fn(
            f"evaluating the test NLL on {len(mnist.test)} test images"
            + (f" x {TEST_DRAWS} stochastic binarizations" if dynamic else "")
            + " ..."
        )
    try:
        if test_nll:
            test, test_first_1000 = _test_nll(model, mnist, progress)
    except KeyboardInterrupt:
        raise TrainingInterrupted(
            f"interrupted during the final test evaluation: training is done and the model "
            f"is in {run.model}; run the same command again to write {run.metrics}"
        ) from None
    val = history.get("val_loss", [])
    metrics = {
        "model": config.model,
        "conditional": config.conditional,
        "parameters": int(model.count_params()),
        "test_nll": test,
        "test_nll_first_1000_nats_per_image": test_first_1000,
        "epochs": len(history.get("epoch", [])),
        "best_epoch": int(np.argmin(val)) + 1 if val else None,
        "final_val_nats_per_pixel": val[-1] if val else None,
        "train_images": len(train_split),
        "validation_images": len(mnist.validation),
        "binarization": data_lib.DESCRIPTIONS[mnist.binarization],
        "data_files": mnist.files,  # a folder of images: the split rule and each part's files
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "init_from": config.init_from,
        "fit_seconds_this_invocation": round(seconds, 1),
        "command": command,
    }
    save_json(metrics, run.metrics)
    if test is None:
        print_fn(f"test NLL skipped; `python cli.py evaluate --model {run.model}` computes it")
        return metrics
    print_fn(
        f"test NLL: {test['nats_per_pixel']:.4f} nats/pixel · "
        f"{test['nats_per_image']:.2f} ± {test['nats_per_image_se']:.2f} nats/image · "
        f"{test['bits_per_dim']:.4f} bits/dim"
    )
    return metrics


def train(
    config,
    mnist=None,
    verbose=1,
    command=None,
    print_fn=None,
    overwrite=False,
    test_nll=True,
    progress=None,
):
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
        test_nll: bool, end with the exact NLL of the whole test split
            (metrics.json's `test_nll`; None when skipped).
        progress: optional `progress(done, total)` of that evaluation.
    """
    print_fn = print_fn or (lambda line: print(line, flush=True))
    mnist, state, source = _setup(config, mnist, overwrite)
    train_split = mnist.train if config.limit is None else mnist.train.take(config.limit)
    image_shape = tuple(train_split.images.shape[1:])
    run = _Run(config.run_dir)
    first_epoch, first_step = (int(state["epoch"]), int(state["step"] or 0)) if state else (0, 0)
    if first_epoch >= config.epochs and not first_step and _complete(run.metrics, test_nll):
        with open(run.metrics) as f:
            metrics = json.load(f)
        print_fn(
            f"the run in {run.dir} is complete ({first_epoch} epochs; {run.metrics}); "
            "pass a larger --epochs to train further"
        )
        return metrics

    with distribution_scope(config.distribute) as replicas, op_determinism(config.deterministic):
        if replicas > 1:
            print_fn(
                f"training on {replicas} replicas ({config.distribute}); "
                f"global batch {config.batch_size}"
            )
        print_data = (
            f"{config.model}{' (conditional)' if config.conditional else ''}: "
            f"{len(train_split):,} training, {len(mnist.validation):,} validation and "
            f"{len(mnist.test):,} test images of shape {image_shape} "
            + ("(256 levels)" if mnist.levels == 256 else f"({mnist.binarization} binarization)")
            + f"; run directory {run.dir}"
        )
        model = _build_or_restore(config, image_shape, mnist.num_classes, state, source, print_fn)
        print_fn(print_data)
        os.makedirs(run.dir, exist_ok=True)
        stages = _stages(run.config, first_epoch, first_step, command)
        save_json(
            {"config": dataclasses.asdict(config), "command": command, "stages": stages},
            run.config,
        )
        _truncate_log(run.log, first_epoch)
        earlier = _log_history(run.log)  # the epochs of earlier invocations
        backup = TrainingState(
            run.backup,
            math.ceil(len(train_split) / config.batch_size),
            config.backup_every,
            first_epoch,
            first_step,
        )
        interrupt = DeferredInterrupt(lambda line: print(line, file=sys.stderr, flush=True))
        callbacks = _callbacks(
            config,
            run,
            len(train_split),
            int(np.prod(image_shape)),
            backup,
            interrupt,
            _best_val_loss(earlier),
            verbose,
            print_fn,
        )
        v = mnist.validation
        validation = validation_inputs(
            [v.images, v.labels] if config.conditional else v.images, v.images, 256
        )
        start = time.perf_counter()
        try:
            with interrupt:  # Ctrl-C raised at a known point
                logs = _fit_epochs(
                    model,
                    config,
                    mnist,
                    train_split,
                    validation,
                    callbacks,
                    first_epoch,
                    first_step,
                    verbose,
                )
        except KeyboardInterrupt:
            raise _interrupted(backup, state, run) from None
        except Diverged as e:
            raise _diverged(e, backup, state, run) from None
        seconds = time.perf_counter() - start
    if os.path.exists(run.best):
        model = keras.saving.load_model(run.best)
    # The whole run: earlier invocations' epochs from the log, this one's from `fit`.
    history = _merge(earlier, logs)
    return _report(
        model,
        config,
        mnist,
        train_split,
        history,
        seconds,
        command,
        run,
        print_fn,
        test_nll,
        progress,
    )


def _complete(metrics_path, test_nll):
    """Whether a finished run's metrics.json holds all that was asked for
    (a run finished with the test NLL skipped gets it on a rerun that asks)."""
    try:
        with open(metrics_path) as f:
            metrics = json.load(f)
    except (OSError, ValueError):
        return False
    return not test_nll or metrics.get("test_nll") is not None
