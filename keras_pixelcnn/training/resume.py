"""Kill-safe, exactly resumable training state for `model.fit`.

`TrainingState` is a callback that backs up the model and optimizer every
epoch (and optionally every N steps) into `RUN_DIR/backup/`:

    backup/state.json              {"epoch", "step", "weights", "seed_states"}: the
                                   commit point (and the dropout layers' RNG states)
    backup/state-<k>.weights.h5    the weights + optimizer state it names

A backup is written to a temporary name and renamed; `state.json` is
replaced last, atomically, and only then is the previous weights file
removed. A process killed at any instant (SIGKILL included) leaves the
previous or the new backup, both complete.

`epoch_data` gives `fit` each epoch's images in an order that is a pure
function of `(seed, epoch)`, so a run resumed from epoch e, step s sees
exactly the batches an uninterrupted run would have seen. With deterministic ops the
resumed run's final weights are identical to the uninterrupted run's.
"""

import glob
import json
import math
import os

import keras
import numpy as np

from keras_pixelcnn.atomic import atomic_path, save_json
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.errors import reason as error_reason

STATE_FILE = "state.json"


def epoch_order(seed, epoch, num_images):
    """The order of the training images in `epoch`: a permutation drawn from
    `np.random.default_rng([seed, epoch])`, the same in every run."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_images)


def epoch_data(images, labels, batch_size, seed, epoch, skip=0):
    """`(inputs, targets)` of `epoch` in its fixed order, without the first
    `skip` batches (already trained before an interruption); fit them with
    `shuffle=False` (`input_pipeline.fit_inputs`)."""
    order = epoch_order(seed, epoch, len(images))[skip * batch_size :]
    x = images[order]
    return (x if labels is None else [x, labels[order]]), x


def describe(epoch, step):
    """A backup position in words: 'after epoch 3' or 'at epoch 4, step 120'."""
    return f"after epoch {epoch}" if not step else f"at epoch {epoch + 1}, step {step}"


def load_state(directory):
    """The last complete backup in `directory` as a dict, or None."""
    path = os.path.join(directory, STATE_FILE)
    if os.path.exists(path):
        try:
            with open(path) as f:
                state = json.load(f)
            weights = os.path.join(directory, state["weights"])
        except (OSError, ValueError, KeyError) as e:
            raise PixelCNNError(
                f"the backup {path} is unreadable ({e}); delete it to start over"
            ) from None
        if not os.path.exists(weights):
            raise PixelCNNError(f"the backup {path} names a missing file {weights}")
        return dict(state, weights_path=weights)
    return None


def _seed_states(model):
    """The state variables of the model's random layers (Dropout's
    `SeedGenerator`s), in the model's order. `save_weights` leaves them out,
    so without them a resumed run would redraw the dropout masks from the
    start."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def restore(model, state):
    """Loads a backup's weights, optimizer state and random-layer states
    into a compiled model."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(state["weights_path"])
    except Exception as e:
        reason = error_reason(e, 160)
        raise PixelCNNError(
            f"could not restore the backup {state['weights_path']} ({reason}); was the run "
            "started with another configuration? Use a new --run-dir or --overwrite"
        ) from None
    saved = state.get("seed_states")
    if saved is not None:
        variables = _seed_states(model)
        if len(saved) != len(variables):
            raise PixelCNNError(
                f"the backup {state['weights_path']} holds {len(saved)} random-layer states, "
                f"the model has {len(variables)}; use a new --run-dir or --overwrite"
            )
        for variable, value in zip(variables, saved):
            variable.assign(np.asarray(value, dtype=variable.dtype))


class TrainingState(keras.callbacks.Callback):
    """Backs up weights + optimizer state at every epoch end and, with
    `every_steps`, every that many training steps.

    Not `keras.callbacks.BackupAndRestore(save_freq=N)`: it restarts an
    interrupted epoch from its first batch (it records the batch but does
    not skip it) and keeps no random-layer states, so a resume mid-epoch,
    or with dropout, would not give the uninterrupted run's weights.

    Args:
        directory: str, the backup directory.
        batches_per_epoch: int, steps in a full epoch.
        every_steps: int or None, also back up every this many steps.
        first_epoch, first_step: where this `fit` call starts.
    """

    def __init__(self, directory, batches_per_epoch, every_steps=None, first_epoch=0, first_step=0):
        super().__init__()
        self.directory = directory
        self.batches_per_epoch = batches_per_epoch
        self.every_steps = every_steps
        self.epoch = first_epoch
        self.offset = first_step  # steps of the first epoch done before this fit
        self.last = None  # (epoch, step) of the last backup written

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.offset + batch + 1
        global_step = self.epoch * self.batches_per_epoch + step
        if (
            self.every_steps
            and global_step % self.every_steps == 0
            and step < self.batches_per_epoch
        ):
            if logs is None or math.isfinite(float(logs.get("loss", 0.0))):
                self.save(self.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0
        if logs is None or math.isfinite(float(logs.get("loss", 0.0))):
            self.save(epoch + 1, 0)

    def save(self, epoch, step):
        os.makedirs(self.directory, exist_ok=True)
        name = f"state-{epoch:04d}-{step:06d}.weights.h5"
        target = os.path.join(self.directory, name)
        with atomic_path(target, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        save_json(
            {
                "epoch": epoch,
                "step": step,
                "global_step": epoch * self.batches_per_epoch + step,
                "weights": name,
                "seed_states": [
                    np.asarray(keras.ops.convert_to_numpy(v)).tolist()
                    for v in _seed_states(self.model)
                ],
            },
            os.path.join(self.directory, STATE_FILE),
        )
        # Only now is the previous backup garbage, and so is any weights file
        # a process killed between the two renames above left behind.
        for old in glob.glob(os.path.join(self.directory, "state-*.weights.h5")):
            if os.path.basename(old) != name:
                try:
                    os.remove(old)
                except OSError:
                    pass
        self.last = (epoch, step)
