"""Training callbacks: per-epoch sample grids, a throughput report, an
atomic best-model checkpoint, Polyak averaging, a NaN guard and a deferred
Ctrl-C."""

import math
import os
import signal
import threading
import time

import keras
import numpy as np

from keras_pixelcnn.atomic import atomic_path
from keras_pixelcnn.data import NUM_CLASSES
from keras_pixelcnn.figures import image_grid, save_grid
from keras_pixelcnn.keras_file import save_model
from keras_pixelcnn.models.contract import is_conditional, noise_shape
from keras_pixelcnn.sampling import draw_noise, expand_labels, make_sampler


class SampleGrid(keras.callbacks.Callback):
    """Samples a grid from fixed noise after every epoch and saves it as PNG.

    The noise (and, for conditional models, the labels: one row per class) is
    drawn once from `seed`, so the grids of successive epochs compare.

    Args:
        directory: str, where `epoch_001.png`, `epoch_002.png`, ... go.
        num_images: int, the number of images per grid (per class if the
            model is conditional).
        seed: int, the seed of the fixed noise.
        sampler: str, the sampler name (see `keras_pixelcnn.sampling`).
    """

    def __init__(self, directory, num_images=16, seed=0, sampler="fast"):
        super().__init__()
        self.directory = directory
        self.num_images = num_images
        self.seed = seed
        self.sampler_name = sampler
        self._sampler = None
        self.last_grid = None  # the last epoch's grid as a 2D array (for TensorBoard)

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        self._sampler = make_sampler(self.model, self.sampler_name)
        if is_conditional(self.model):
            n = NUM_CLASSES * self.num_images
            self._labels = expand_labels(range(NUM_CLASSES), self.num_images)
            self._ncols = self.num_images
            self._row_labels = list(range(NUM_CLASSES))
        else:
            self._row_labels = None
            n = self.num_images
            self._labels = None
            self._ncols = int(math.ceil(math.sqrt(n)))
        self._noise = draw_noise(n, noise_shape(self.model), self.seed)

    def on_epoch_end(self, epoch, logs=None):
        images = self._sampler.sample(self._noise, labels=self._labels)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")
        save_grid(
            images, path, ncols=self._ncols, title=f"epoch {epoch + 1}", row_labels=self._row_labels
        )
        self.last_grid = image_grid(images, ncols=self._ncols)
        with atomic_path(path[: -len(".png")] + ".npz") as tmp:  # for `show run`
            with open(tmp, "wb") as f:
                np.savez_compressed(f, images=images.astype("uint8"), ncols=self._ncols)


class EpochReport(keras.callbacks.Callback):
    """Prints one line per epoch: losses in nats/pixel, nats/image and
    bits/dim, the epoch time and the training throughput in images/s (the
    training steps only, without validation and sample grids). The trainer
    sets `num_train_images` to the images of each `fit`: fewer than the
    training split in an epoch resumed part-way."""

    def __init__(self, num_train_images, num_pixels, print_fn=None):
        super().__init__()
        self.num_train_images = num_train_images
        self.num_pixels = num_pixels
        self.print_fn = print_fn or (lambda line: print(line, flush=True))
        self.images_per_second = float("nan")  # of the last epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._train_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._start
        train_seconds = max(self._train_end - self._start, 1e-9)
        self.images_per_second = self.num_train_images / train_seconds
        loss = logs.get("loss", float("nan"))
        parts = [
            f"epoch {epoch + 1}: train {loss:.4f} nats/pixel"
            f" ({loss * self.num_pixels:.1f} nats/image, {loss / math.log(2):.4f} bits/dim)"
        ]
        if "val_loss" in logs:
            v = logs["val_loss"]
            parts.append(f"val {v:.4f} nats/pixel ({v * self.num_pixels:.1f} nats/image)")
        parts.append(
            f"{seconds:.0f} s (training {train_seconds:.0f} s on"
            f" {self.num_train_images:,} images, {self.images_per_second:.0f} images/s)"
        )
        self.print_fn(" · ".join(parts))


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` (atomically) whenever `monitor` improves.

    Not `keras.callbacks.ModelCheckpoint(save_best_only=True)`: it writes the
    file in place, so a process killed while saving leaves a truncated
    `best.keras`, and it keeps the backend's `jit_compile` instead of "auto".

    Args:
        path: str, a `.keras` file.
        monitor: str, the logged quantity to minimize.
        best: float or None, the value to beat (restored on resume).
    """

    def __init__(self, path, monitor="val_loss", best=None):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = math.inf if best is None else best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value) and value < self.best:
            self.best = float(value)
            save_model(self.model, self.path)


class PolyakAveraging:
    """Polyak averaging on top of Keras's optimizer EMA (`Adam(use_ema=True)`).

    Keras keeps the moving average of the weights in the optimizer and, at
    the end of every `fit`, overwrites the weights with it
    (`finalize_variable_values`). Training runs one `fit` per epoch, so each
    epoch would restart from the average. Two callbacks, placed around the
    ones that must see the average, keep the raw weights for training:

    - `swap_in` puts the average in for validation and at the end of an epoch
      (the best checkpoint and the sample grid, placed after it, see it);
    - `swap_out`, placed before the backup, puts the raw weights back (the
      backup holds the raw weights and, as optimizer variables, the
      averages: a resumed run is exact), and again after `fit`'s
      finalization.

    `keras.callbacks.SwapEMAWeights` swaps the two sets for validation, but
    leaves `fit`'s finalization to overwrite the raw weights.
    """

    def __init__(self):
        self._raw = None  # the raw weights while the average is in the model
        self._final = None  # the raw weights at the end of the last epoch
        self.swap_in = _SwapIn(self)
        self.swap_out = _SwapOut(self)

    def put_average(self, model):
        if self._raw is None:
            self._raw = _copies(model.trainable_variables)
            model.optimizer.finalize_variable_values(model.trainable_variables)
            for variable in model.trainable_variables:
                # JAX: `finalize` lets a weight share the average's buffer, which
                # the next compiled step (validation) donates and so deletes
                variable.assign(keras.ops.copy(variable.value))

    def put_raw(self, model, values=None):
        values = values if values is not None else self._raw
        if values is not None:
            for variable, value in zip(model.trainable_variables, values):
                variable.assign(value)
        self._raw = None


def _copies(variables):
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]


class _SwapIn(keras.callbacks.Callback):
    def __init__(self, averaging):
        super().__init__()
        self.averaging = averaging

    def on_test_begin(self, logs=None):
        self.averaging.put_average(self.model)

    def on_test_end(self, logs=None):
        self.averaging.put_raw(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.averaging.put_average(self.model)


class _SwapOut(keras.callbacks.Callback):
    def __init__(self, averaging):
        super().__init__()
        self.averaging = averaging

    def on_epoch_end(self, epoch, logs=None):
        self.averaging._final = self.averaging._raw
        self.averaging.put_raw(self.model)

    def on_train_end(self, logs=None):  # after `fit` put the average in
        if self.averaging._final is not None:
            self.averaging.put_raw(self.model, self.averaging._final)
            self.averaging._final = None


class Diverged(Exception):
    """Raised by `NaNGuard`; `train` turns it into a one-line error."""

    def __init__(self, epoch, step):
        super().__init__(f"loss became NaN or infinite at epoch {epoch + 1}, step {step + 1}")
        self.epoch, self.step = epoch, step


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, before any later
    callback (the backup, the best checkpoint) can save the bad weights.

    Not `keras.callbacks.TerminateOnNaN`: its graceful stop still runs the
    epoch-end callbacks, and `raise_error=True` raises a `RuntimeError`
    without the epoch and step that the error line and its advice name."""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise Diverged(getattr(self, "_epoch", 0), batch)


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, numbered against the run's total epochs (each
    `fit` call trains one epoch, so Keras alone would print "Epoch 3/3")."""

    def __init__(self, total_epochs, verbose=1):
        super().__init__()
        self.total_epochs = total_epochs
        self._verbose = verbose

    def set_params(self, params):
        params = dict(params, verbose=self._verbose)
        super().set_params(params)
        self.epochs = self.total_epochs


class DeferredInterrupt(keras.callbacks.Callback):
    """Turns Ctrl-C during `fit` into a `KeyboardInterrupt` raised at a known
    point: the end of the current training or validation batch, or of the
    epoch (after the epoch's backup, when this callback comes last).

    Python runs a SIGINT handler in the main thread wherever it happens to
    be, and a `KeyboardInterrupt` raised deep inside a backend's or a
    library's code can be swallowed there; one raised from this callback
    always reaches `train`, which keeps the last backup and says so. A second
    Ctrl-C interrupts at once. Use it as a context manager around `fit`: the
    handler is installed only in the main thread, only over Python's default
    one, and the previous handler is always restored.

    Args:
        print_fn: callable or None, told once that the run will stop.
    """

    def __init__(self, print_fn=None):
        super().__init__()
        self.print_fn = print_fn
        self.requested = False
        self._previous = None

    def __enter__(self):
        self.requested = False
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.print_fn is not None:
            self.print_fn("interrupting at the end of this step (Ctrl-C again to stop at once)")

    def _check(self):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_test_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()
