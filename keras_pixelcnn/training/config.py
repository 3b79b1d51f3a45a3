"""The training configuration as plain data, and its one validator.

`TrainConfig.validate()` is the only place that checks a configuration: the
CLI builds a `TrainConfig` from its options and lets it judge, so an API
user and a command-line user get the same answer for the same values.
"""

import dataclasses
import math

from keras_pixelcnn.data import BINARIZATIONS, LEVELS, LIKELIHOODS, VALIDATION_SIZE
from keras_pixelcnn.errors import UsageError
from keras_pixelcnn.sampling import SAMPLERS
from keras_pixelcnn.training.distribution import check_distribute

MODEL_FAMILIES = ("pixelcnn", "gated", "pixelcnn_pp")
PRECISIONS = ("float32", "mixed_bfloat16")
# Configuration fields that change the model or its data stream: a run
# directory can only be resumed with the same values.
RUN_IDENTITY = (
    "model",
    "filters",
    "num_residual_blocks",
    "num_layers",
    "conditional",
    "batch_size",
    "learning_rate",
    "lr_decay",
    "ema",
    "seed",
    "limit",
    "validation_size",
    "init_from",
    "binarize",
    "dropout",
    "levels",
    "likelihood",
    "mixtures",
    "image_size",
    "channels",
)
# field → the command-line option that sets it (error messages name the option)
OPTION = {"num_residual_blocks": "blocks", "num_layers": "layers", "num_samples": "samples"}


def option(field):
    return "--" + OPTION.get(field, field).replace("_", "-")


@dataclasses.dataclass
class TrainConfig:
    """Plain-data training configuration; the defaults are the reference's."""

    run_dir: str = "runs/pixelcnn"
    data: str | None = None  # an .npz, a folder of images, binarized_mnist; None: tfds MNIST
    model: str = "pixelcnn"
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_decay: float = 1.0  # the rate at step n: learning_rate * lr_decay**n
    ema: float | None = None  # Polyak averaging: the momentum of the weights' moving average
    filters: int = 64
    num_residual_blocks: int = 4  # pixelcnn; pixelcnn_pp: gated ResNet blocks per scale
    num_layers: int = 8  # gated
    conditional: bool = False  # gated, pixelcnn_pp: class-conditional on the digit label
    seed: int = 0
    num_samples: int = 16  # images per epoch grid (0: no grids)
    sampler: str = "fast"
    limit: int | None = None  # train on the first N training images only
    validation_size: int = VALIDATION_SIZE
    backup_every: int | None = None  # also back up every N steps (default: per epoch)
    deterministic: bool = False  # deterministic ops: a resumed run equals an uninterrupted one
    distribute: str = "none"  # none, mirrored, multi-worker (TF) or data-parallel (JAX)
    precision: str = "float32"  # or "mixed_bfloat16": bf16 compute, float32 weights
    init_from: str | None = None  # start from a trained .keras model's weights (fine-tuning)
    binarize: str = "threshold"  # or "dynamic": a fresh stochastic binarization per epoch
    levels: int = 2  # or 256: 8-bit grayscale digits
    likelihood: str | None = None  # None: bernoulli for 2 levels, logistic-mixture for 256
    mixtures: int = 10  # logistic-mixture components
    dropout: float = 0.5  # pixelcnn_pp: dropout inside every gated ResNet block
    image_size: int | None = None  # the crops of a folder of images (default 32)
    channels: int | None = None  # a folder's files converted to 1 or 3 channels (None: as they are)

    def resolved_likelihood(self, channels=1):
        """The likelihood name, with the default of `levels` (and, at 2
        levels, of the channels: bernoulli for one, categorical for colour)
        filled in."""
        if self.likelihood is not None:
            return self.likelihood
        if self.levels == 2 and channels == 1:
            return "bernoulli"
        if self.levels == 2 and self.model != "pixelcnn_pp":
            return "categorical"  # PixelCNN++'s network needs the mixture to order channels
        return "logistic-mixture"

    def validate(self):
        """Raises `UsageError` (exit code 2) naming the first bad value."""
        for name, minimum in (
            ("epochs", 1),
            ("batch_size", 1),
            ("filters", 1),
            ("num_samples", 0),
            ("num_layers", 1),
            ("validation_size", 1),
            ("num_residual_blocks", 0),
            ("limit", 1),
            ("backup_every", 1),
            ("mixtures", 1),
            ("image_size", 1),
        ):
            value = getattr(self, name)
            if value is None and name in ("limit", "backup_every", "image_size"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
                raise UsageError(f"{option(name)} must be {kind}, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed}")
        if not (
            isinstance(self.learning_rate, (int, float))
            and math.isfinite(self.learning_rate)
            and self.learning_rate > 0
        ):
            raise UsageError(f"--learning-rate must be a positive number, got {self.learning_rate}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 < self.lr_decay <= 1):
            raise UsageError(f"--lr-decay must be in (0, 1], got {self.lr_decay}")
        if self.ema is not None:
            if isinstance(self.ema, bool) or not (
                isinstance(self.ema, (int, float)) and 0 < self.ema < 1
            ):
                raise UsageError(f"--ema must be in (0, 1), got {self.ema}")
            if self.distribute != "none":
                raise UsageError(
                    f"--ema is not supported with --distribute {self.distribute} (yet); "
                    "train without one of them"
                )
        for name, choices in (
            ("model", MODEL_FAMILIES),
            ("precision", PRECISIONS),
            ("sampler", SAMPLERS),
            ("binarize", BINARIZATIONS),
        ):
            if getattr(self, name) not in choices:
                raise UsageError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(choices)}"
                )
        if self.likelihood is not None and self.likelihood not in LIKELIHOODS:
            raise UsageError(
                f"unknown likelihood {self.likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
            )
        if self.levels not in LEVELS:
            raise UsageError(f"--levels must be 2 or 256, got {self.levels}")
        needed = {2: "bernoulli", 256: "logistic-mixture"}[self.levels]
        if self.resolved_likelihood() != needed:
            raise UsageError(
                f"--likelihood {self.likelihood} does not model {self.levels}-level pixels; "
                f"use {needed}"
            )
        if self.levels == 256 and self.binarize != "threshold":
            raise UsageError("--binarize applies to --levels 2 only")
        if self.conditional and self.model == "pixelcnn":
            raise UsageError("--conditional needs --model gated or pixelcnn_pp")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.channels not in (None, 1, 3):
            raise UsageError(f"--channels must be 1 or 3, got {self.channels}")
        check_distribute(self.distribute)
