"""The keras-pixelcnn command line: train PixelCNNs and generate digits.

    keras-pixelcnn generate                 # 16 digits from the shipped model
    keras-pixelcnn train --data mnist.npz   # train the reference PixelCNN

(also `python -m keras_pixelcnn ...` and, in a checkout, `python cli.py ...`).

This module parses, calls the package and prints; nothing is computed here.
Keras and TensorFlow are imported inside the commands, so `--help` is
instant. Every user error is one line on stderr and a non-zero exit: 2 for a
bad argument, 1 for a bad file or a failed job.
"""

import enum
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from keras_pixelcnn import shipped
from keras_pixelcnn.data import BINARIZATIONS, LIKELIHOODS, is_tfds_name
from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.runtime import BACKENDS
from keras_pixelcnn.sampling import SAMPLERS
from keras_pixelcnn.training.config import MODEL_FAMILIES, PRECISIONS
from keras_pixelcnn.training.distribution import DISTRIBUTE_MODES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TF's C++ start-up logging

DEFAULT_MODEL = shipped.shipped_model(shipped.DEFAULT)
MAX_LABEL = 9

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="PixelCNN-family autoregressive image models (Keras 3).",
)
show_app = typer.Typer(
    no_args_is_help=True, help="Pictures: generation progress, the data, a training run."
)
app.add_typer(show_app, name="show")


def _choices(name, values):
    """A str Enum of `values`, for typer's choice checking and --help."""
    return enum.Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


Backend = _choices("Backend", BACKENDS)
Sampler = _choices("Sampler", SAMPLERS)
Family = _choices("Family", MODEL_FAMILIES)
Precision = _choices("Precision", PRECISIONS)
Distribute = _choices("Distribute", DISTRIBUTE_MODES)
Binarize = _choices("Binarize", BINARIZATIONS)
Likelihood = _choices("Likelihood", LIKELIHOODS)


# Options shared by several commands.
MODEL = typer.Option(
    DEFAULT_MODEL,
    "--model",
    show_default="the best shipped model",
    help=f"A .keras model; {shipped.PIXELCNN} is the reference PixelCNN.",
)
IMAGE_SIZE = typer.Option(
    None,
    "--image-size",
    min=1,
    show_default="32",
    help="A folder of images: the size of the square crops (random ones for training, "
    "the grid tiles of the validation and test files).",
)
CHANNELS = typer.Option(
    None,
    "--channels",
    show_default="the files' own",
    help="A folder of images: convert every file to 1 (grey) or 3 (RGB) channels.",
)
DATA = typer.Option(
    None,
    "--data",
    help="A local .npz in Keras's mnist.npz format (x_train, x_test of any one shape "
    "(n, h, w[, c]), optional y_*), a folder of image files (one subfolder per class, "
    "optional), or a tensorflow-datasets image dataset by name (cifar10, fashion_mnist, "
    "svhn_cropped, ...; binarized_mnist: the static binarized MNIST); default: MNIST from "
    "tensorflow-datasets.",
)
BINARIZE = typer.Option(
    Binarize.threshold,
    "--binarize",
    help="threshold (pixel > 127.5) or dynamic (pixel ~ Bernoulli(value/255), "
    "redrawn every epoch).",
)
SEED = typer.Option(0, "--seed", min=0, help="Seed of the sampling noise.")
OVERWRITE = typer.Option(False, "--overwrite", metavar="", help="Replace existing outputs.")
SAMPLER = typer.Option(
    Sampler.fast, "--sampler", help="fast (cached, ~1 forward pass per image) or reference."
)
BACKEND = typer.Option(
    None,
    "--backend",
    help="Keras backend (default: KERAS_BACKEND). torch samples eagerly, about 2x slower "
    "than TensorFlow for 8 images.",
)


def _png(path, name="out"):
    if path.suffix.lower() != ".png":
        raise UsageError(f"--{name} must end in .png, got {path}")
    return path


def _start(backend, default=None):
    """Selects the backend (before Keras loads) and imports Keras, which
    registers the package's layers, with the backend's start-up chatter hidden."""
    from keras_pixelcnn.runtime import quiet_import, sampler_unrolling, select_backend

    sampler_unrolling()  # a bad KERAS_PIXELCNN_UNROLL is refused before anything loads
    name = backend.value if backend else os.environ.get("KERAS_BACKEND") or default
    select_backend(name)
    if "keras" in sys.modules or not sys.stderr.isatty():
        quiet_import("keras")
        return
    # A spinner while the backend loads (seconds); transient: it leaves
    # nothing behind, so an error that follows is still the only line.
    from rich.console import Console

    with Console(stderr=True).status(f"loading Keras ({name or 'tensorflow'}) ..."):
        quiet_import("keras")


def _parse_labels(text):
    """'7' → [7]; '0,1,2' → [0, 1, 2]; 'all' → [0, ..., 9]; None → None."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return list(range(MAX_LABEL + 1))
    try:
        labels = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--label must be a digit, a comma-separated list of digits, or 'all', got {text!r}"
        ) from None
    for c in labels:
        if not 0 <= c <= MAX_LABEL:
            raise UsageError(f"--label {c} is out of range; labels are 0-{MAX_LABEL}")
    return labels


class _Progress:
    """`progress(done, total)` callbacks drawn by rich on stderr when it is
    a terminal; off a terminal (a log file, a pipe) they draw nothing."""

    def __new__(cls, label):
        if not sys.stderr.isatty():
            return None  # the callees take None for "no progress"
        return super().__new__(cls)

    def __init__(self, label):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

        self._bar = Progress(
            "{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._label = label
        self._task = None

    def __call__(self, done, total):
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=total)
        self._bar.update(self._task, completed=done)
        if done >= total:
            self._bar.stop()


def _status(text):
    """A transient spinner on a terminal (nothing off one) for a step
    that reports no progress of its own."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)


def _load(path):
    from keras_pixelcnn.keras_file import load_model

    return load_model(path)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


@app.command()
def generate(
    ctx: typer.Context,
    model: Path = MODEL,
    saved_model: Optional[Path] = typer.Option(
        None, "--saved-model", help="Sample from an exported SavedModel with TensorFlow alone."
    ),
    num: int = typer.Option(
        16,
        "--num",
        min=1,
        max=10000,
        help="Images (per label). Sampled 256 at a time; the grid shows at most "
        "1,024 (32 per label row), --npy holds them all.",
    ),
    seed: int = SEED,
    out: Path = typer.Option(Path("samples.png"), "--out", help="PNG grid to write."),
    npy: Optional[Path] = typer.Option(None, "--npy", help="Also write the raw 0/1 array (.npy)."),
    sampler: Sampler = SAMPLER,
    label: Optional[str] = typer.Option(
        None, "--label", help="Conditional models: a digit (7), a list (0,1,2) or 'all'."
    ),
    overwrite: bool = OVERWRITE,
    backend: Optional[Backend] = BACKEND,
):
    """Sample new images from a trained model and save them as a PNG grid."""
    from keras_pixelcnn.atomic import check_writable_file

    labels = _parse_labels(label)
    _png(out)
    if npy is not None and npy.suffix != ".npy":
        raise UsageError(f"--npy must end in .npy, got {npy}")
    targets = [out] + ([npy] if npy else [])
    for target in targets:
        check_writable_file(target, overwrite=overwrite)
    groups = len(labels) if labels and len(labels) > 1 else 1
    total = num * (len(labels) if labels else 1)
    if saved_model is not None:
        from keras_pixelcnn.serving import SavedModelSampler

        if "model" in _given(ctx):
            raise UsageError("pass --model or --saved-model, not both")
        sm = SavedModelSampler(saved_model)
        per_image = sm.labels_for(num, seed, labels)
        shape, sample_batch, image = sm.noise_shape, sm.sample_noise, sm.image_shape
        how, about = "from the SavedModel", f"SavedModel {saved_model}"
    else:
        _start(backend)
        from keras_pixelcnn.models.contract import (
            check_labels,
            image_shape,
            is_conditional,
            noise_shape,
            num_classes,
        )
        from keras_pixelcnn.sampling import draw_labels, expand_labels, make_sampler

        m = _load(model)
        if labels is None and is_conditional(m):
            per_image = draw_labels(total, num_classes(m), seed)  # p(x) = sum_c p(c) p(x|c)
        else:
            per_image = check_labels(m, expand_labels(labels, num), total)
        s = make_sampler(m, sampler.value)
        shape, sample_batch, how, image = noise_shape(m), s.sample, None, image_shape(m)
        about = f"model {model}"
    if labels:
        about += f"; labels {label}"
    elif per_image is not None:
        shown_labels = " ".join(map(str, per_image[:32])) + (" ..." if total > 32 else "")
        about += f" (class-conditional); labels drawn from seed {seed}: {shown_labels}"
    import contextlib

    import numpy as np

    from keras_pixelcnn.atomic import atomic_path
    from keras_pixelcnn.figures import grid_selection, save_grid
    from keras_pixelcnn.sampling.batches import sample_into

    with contextlib.ExitStack() as stack:
        if npy is not None:  # written as the batches come, atomically
            tmp = stack.enter_context(atomic_path(npy))
            images = np.lib.format.open_memmap(tmp, "w+", "uint8", (total, *image))
        else:
            images = np.empty((total, *image), "uint8")
        seconds = _timed(
            sample_into,
            sample_batch,
            images,
            shape,
            seed,
            per_image,
            _Progress(f"sampling {total} images"),
        )[1]
        shown, ncols = grid_selection(num, groups)
        save_grid(images[shown], out, ncols=ncols, row_labels=labels if groups > 1 else None)
        if npy is not None:
            images.flush()
            del images  # closes the memmap before the rename
    how = how or f"{total / seconds:.1f} images/s"
    typer.echo(about)  # after the outputs: a failed run prints only its error
    grid = f"; the grid shows {len(shown)} of them" if len(shown) < total else ""
    typer.echo(
        f"wrote {out}"
        + (f" and {npy}" if npy else "")
        + f" ({total} images in {seconds:.1f} s, {how}{grid})"
    )


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="The SavedModel directory to write."),
    model: Path = MODEL,
    overwrite: bool = OVERWRITE,
    backend: Optional[Backend] = BACKEND,
):
    """Export a .keras model to a TF SavedModel with sample / log_prob / serve signatures."""
    from keras_pixelcnn.serving import check_export_target

    chosen = backend.value if backend else os.environ.get("KERAS_BACKEND") or "tensorflow"
    if chosen != "tensorflow":
        raise UsageError(
            f"export runs on the TensorFlow backend, not {chosen}; pass --backend tensorflow "
            "(the .keras file loads there unchanged)"
        )
    check_export_target(out, overwrite)
    _start(backend, default="tensorflow")
    from keras_pixelcnn.export import export_saved_model

    m = _load(model)
    with _status(f"exporting {out} (tracing the sampler; about a minute) ..."):
        export_saved_model(m, out, overwrite=overwrite)
    typer.echo(f"wrote SavedModel {out} (signatures: sample, log_prob, serve)")


# train options that shape only some models: (the models, or the likelihood, they apply to)
_ONLY_FOR = {
    "num_layers": ("layers", ("gated",)),
    "num_residual_blocks": ("blocks", ("pixelcnn", "pixelcnn_pp")),
    "dropout": ("dropout", ("pixelcnn_pp",)),
}


def _given(ctx):
    """The names of the options given on the command line (not defaults)."""
    return {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }


def _check_options_apply(ctx, model, likelihood):
    """Refuses a train option the chosen model does not use (it would
    otherwise train the same model silently)."""
    given = _given(ctx)
    for name, (option, families) in _ONLY_FOR.items():
        if name in given and model not in families:
            raise UsageError(
                f"--{option} applies to --model {' or '.join(families)}; {model} has no use for it"
            )
    if "mixtures" in given and likelihood != "logistic-mixture":
        raise UsageError(
            f"--mixtures applies to the logistic-mixture likelihood (--levels 256); "
            f"this run uses {likelihood}"
        )


def _default_levels(data):
    """Photos (a folder, tfds's cifar10, ...): their 8 bits; digits: binarized."""
    photos = data is not None and (
        data.is_dir() or (is_tfds_name(data) and str(data) not in ("mnist", "binarized_mnist"))
    )
    return 256 if photos else 2


@app.command()
def train(
    ctx: typer.Context,
    data: Optional[Path] = DATA,
    run_dir: Path = typer.Option(
        Path("runs/pixelcnn"),
        "--run-dir",
        help="Where checkpoints, logs and grids go; run again to resume.",
    ),
    model: Family = typer.Option(Family.pixelcnn, "--model", help="Model family."),
    conditional: bool = typer.Option(
        False,
        "--conditional",
        metavar="",
        help="gated and pixelcnn_pp: condition on the digit label.",
    ),
    num_layers: int = typer.Option(8, "--layers", min=1, help="Gated only: gated layers."),
    epochs: int = typer.Option(10, "--epochs", min=1, help="Total number of epochs."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam learning rate."),
    lr_decay: float = typer.Option(
        1.0,
        "--lr-decay",
        help="Per-step decay of the learning rate: rate x decay^step (PixelCNN++: 0.999995); "
        "1 keeps it constant.",
    ),
    ema: Optional[float] = typer.Option(
        None,
        "--ema",
        help="Polyak averaging (PixelCNN++: 0.9995): validation, best.keras, model.keras and "
        "the sample grids use this moving average of the weights; training continues from "
        "the raw weights.",
    ),
    filters: int = typer.Option(64, "--filters", min=1, help="Hidden channels."),
    num_residual_blocks: int = typer.Option(
        4, "--blocks", min=0, help="pixelcnn: residual blocks; pixelcnn_pp: blocks per scale."
    ),
    dropout: float = typer.Option(
        0.5, "--dropout", min=0.0, max=0.99, help="pixelcnn_pp only: dropout in every block."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Seed for weights, shuffling and sample noise."
    ),
    num_samples: int = typer.Option(
        16, "--samples", min=0, max=1024, help="Images per epoch grid (0: no grids)."
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", min=1, help="Train on the first N training images only."
    ),
    validation_size: int = typer.Option(
        5000,
        "--validation-size",
        min=1,
        help="Training images held out for validation (the last ones).",
    ),
    backup_every: Optional[int] = typer.Option(
        None,
        "--backup-every",
        min=1,
        help="Also back up every N training steps (default: every epoch).",
    ),
    deterministic: bool = typer.Option(
        False,
        "--deterministic",
        metavar="",
        help="Deterministic ops: a resumed run ends bit-identical.",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        metavar="",
        help="Start over in an existing run directory (deletes it).",
    ),
    precision: Precision = typer.Option(
        Precision.float32, "--precision", help="mixed_bfloat16: bf16 compute, float32 weights."
    ),
    distribute: Distribute = typer.Option(
        Distribute.none,
        "--distribute",
        help="mirrored or multi-worker (tf.distribute, TensorFlow), "
        "data-parallel (keras.distribution, JAX).",
    ),
    init_from: Optional[Path] = typer.Option(
        None,
        "--init-from",
        help="Start from the weights of a trained .keras model of the same "
        "architecture (fine-tuning).",
    ),
    binarize: Binarize = BINARIZE,
    levels: Optional[int] = typer.Option(
        None,
        "--levels",
        show_default="2 for MNIST; 256 for a folder of images or another tfds dataset",
        help="2: binarized images (each channel > 127.5); 256: 8-bit values (0..255).",
    ),
    likelihood: Optional[Likelihood] = typer.Option(
        None,
        "--likelihood",
        show_default="bernoulli for 2 levels, logistic-mixture for 256",
        help="The per-pixel output distribution.",
    ),
    mixtures: int = typer.Option(
        10, "--mixtures", min=1, help="Components of the logistic mixture."
    ),
    image_size: Optional[int] = IMAGE_SIZE,
    channels: Optional[int] = CHANNELS,
    test_nll: bool = typer.Option(
        True,
        "--test-nll/--no-test-nll",
        help="End with the exact NLL of the whole test split (metrics.json); "
        "--no-test-nll skips it (evaluate computes it later).",
    ),
    backend: Optional[Backend] = BACKEND,
):
    """Train on MNIST or a folder of images with model.fit (kill-safe; rerun to resume)."""
    if levels is None:
        levels = _default_levels(data)
    options = dict(locals())  # the parameters are named as TrainConfig's fields
    options.pop("ctx")
    resolved = (
        likelihood.value if likelihood else ("bernoulli" if levels == 2 else "logistic-mixture")
    )
    _check_options_apply(ctx, model.value, resolved)
    _start(options.pop("backend"))
    from keras_pixelcnn.training import TrainConfig
    from keras_pixelcnn.training import train as run_training

    overwrite = options.pop("overwrite")
    test_nll = options.pop("test_nll")
    values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in options.items()}
    values.update({k: str(v) for k, v in values.items() if isinstance(v, Path)})
    config = TrainConfig(**values)
    command = "python cli.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run_training(
        config,
        verbose=1 if sys.stdout.isatty() else 2,
        command=command,
        overwrite=overwrite,
        test_nll=test_nll,
        progress=_Progress("test NLL"),
    )
    typer.echo(f"done: {run_dir}/model.keras, {run_dir}/metrics.json, {run_dir}/loss_curve.png")


def _fmt_nll(summary):
    return (
        f"{summary['nats_per_image']:.2f} ± {summary['nats_per_image_se']:.2f} nats/image · "
        f"{summary['nats_per_pixel']:.4f} nats/pixel · {summary['bits_per_dim']:.4f} bits/dim"
    )


@app.command()
def evaluate(
    model: Path = MODEL,
    data: Optional[Path] = DATA,
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="Also write the results to this JSON file."
    ),
    samples: int = typer.Option(
        0,
        "--samples",
        min=0,
        max=10000,
        help="Also draw N samples and score them with the MNIST classifier.",
    ),
    limit: Optional[int] = typer.Option(
        None,
        "--limit",
        min=1,
        help="Evaluate on the first N test images only (default: all 10,000).",
    ),
    batch_size: Optional[int] = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Images per forward pass (default: 500).",
    ),
    binarize: Binarize = typer.Option(
        Binarize.threshold,
        "--binarize",
        help="threshold, or dynamic: the mean NLL over --draws seeded stochastic "
        "binarizations of the test images (the literature's protocol).",
    ),
    draws: int = typer.Option(
        10, "--draws", min=1, help="Stochastic binarizations with --binarize dynamic."
    ),
    seed: int = SEED,
    classifier: Optional[Path] = typer.Option(
        None, "--classifier", help="A classifier .keras (default: the shipped one)."
    ),
    overwrite: bool = OVERWRITE,
    backend: Optional[Backend] = BACKEND,
):
    """Exact test NLL (nats/image, nats/pixel, bits/dim) and sample quality."""
    from keras_pixelcnn.atomic import check_writable_file, save_json

    if json_out is not None:
        if json_out.suffix != ".json":
            raise UsageError(f"--json must end in .json, got {json_out}")
        check_writable_file(json_out, overwrite=overwrite)
    if classifier is not None and not samples:
        raise UsageError("--classifier scores samples; pass --samples N too")
    _start(backend)
    from keras_pixelcnn.data import DESCRIPTIONS, load_test_split
    from keras_pixelcnn.evaluation.classifier import load_classifier
    from keras_pixelcnn.evaluation.nll import evaluate_model, evaluate_model_dynamic
    from keras_pixelcnn.evaluation.sample_quality import evaluate_samples
    from keras_pixelcnn.models.contract import image_shape, is_conditional, levels, num_classes

    m = _load(model)
    if levels(m) == 256 and binarize.value != "threshold":
        raise UsageError("--binarize applies to binary models; this model has 256 levels")
    clf = load_classifier(str(classifier) if classifier else None) if samples else None
    mnist = load_test_split(
        str(data) if data else None,
        image_shape(m),
        limit,
        binarization=binarize.value,
        levels=levels(m),
        conditional=is_conditional(m),
    )
    dynamic = binarize.value == "dynamic"
    if dynamic:
        report, seconds = _timed(
            evaluate_model_dynamic,
            m,
            mnist.test.images,
            mnist.test.labels,
            draws=draws,
            seed=seed,
            batch_size=batch_size,
            progress=_Progress(f"NLL of {len(mnist.test)} images x {draws} binarizations"),
        )
    else:
        passes = f" x {1 + num_classes(m)} label passes" if is_conditional(m) else ""
        report, seconds = _timed(
            evaluate_model,
            m,
            mnist.test.images,
            mnist.test.labels,
            batch_size=batch_size,
            progress=_Progress(f"NLL of {len(mnist.test)} images{passes}"),
        )
    data_rule = DESCRIPTIONS["none" if levels(m) == 256 else binarize.value]
    report.update(model=str(model), nll_seconds=seconds, binarization=data_rule)
    typer.echo(
        f"{model} on {len(mnist.test)} test images"
        + (f" x {draws} stochastic binarizations (seed {seed})" if dynamic else "")
    )
    typer.echo(
        f"  NLL{' (given the true label)' if report['conditional'] else ''}: "
        f"{_fmt_nll(report['nll'])}"
    )
    if dynamic:
        per_draw = ", ".join(f"{v:.2f}" for v in report["nll"]["per_draw_nats_per_image"])
        typer.echo(f"  per draw (nats/image): {per_draw}")
    if "nll_label_marginalized" in report:
        typer.echo(
            "  NLL (label marginalized, uniform prior): "
            f"{_fmt_nll(report['nll_label_marginalized'])}"
        )
    if samples:
        q = report["sample_quality"] = evaluate_samples(
            m,
            clf,
            mnist,
            samples,
            seed,
            progress=_Progress(f"sampling {samples} images"),
            feature_progress=_Progress("classifier features"),
        )
        typer.echo(
            f"  classifier score: {q['classifier_score']:.3f} "
            f"(real digits: {q['classifier_score_real']:.3f})"
        )
        typer.echo(
            f"  Fréchet distance: {q['frechet_distance']:.3f} (real-vs-real floor with "
            f"{samples} images: {q['frechet_distance_real_floor']:.3f})"
        )
        if "label_accuracy" in q:
            typer.echo(f"  samples classified as their label: {q['label_accuracy']:.3f}")
    if json_out is not None:
        save_json(report, json_out)
        typer.echo(f"wrote {json_out}")


@app.command()
def complete(
    model: Path = MODEL,
    data: Optional[Path] = DATA,
    num: int = typer.Option(8, "--num", min=1, max=100, help="Number of test digits to complete."),
    rows: int = typer.Option(
        14, "--rows", min=1, max=27, help="Keep rows 0..ROWS-1 (of 28), sample the rest."
    ),
    completions: int = typer.Option(
        4, "--completions", min=1, max=32, help="Completions per digit."
    ),
    offset: int = typer.Option(0, "--offset", min=0, help="The first test digit."),
    seed: int = SEED,
    out: Path = typer.Option(Path("completions.png"), "--out", help="PNG to write."),
    sampler: Sampler = SAMPLER,
    overwrite: bool = OVERWRITE,
    backend: Optional[Backend] = BACKEND,
):
    """Hide the bottom of test digits and sample completions."""
    from keras_pixelcnn.atomic import check_writable_file

    check_writable_file(_png(out), overwrite=overwrite)
    _start(backend)
    from keras_pixelcnn.data import load_test_split
    from keras_pixelcnn.figures import save_completion_figure
    from keras_pixelcnn.models.contract import image_shape, is_conditional, levels
    from keras_pixelcnn.sampling.completion import complete_test_digits

    m = _load(model)
    test = load_test_split(
        str(data) if data else None, image_shape(m), levels=levels(m), conditional=is_conditional(m)
    ).test
    done, seconds = _timed(
        complete_test_digits,
        m,
        test,
        offset,
        num,
        rows,
        completions,
        seed=seed,
        sampler=sampler.value,
        progress=_Progress(f"completing {num}×{completions} digits"),
    )
    save_completion_figure(*done, out, title=f"rows {rows}+ hidden and sampled")
    typer.echo(f"wrote {out} ({num * completions} completions in {seconds:.1f} s)")


@show_app.command("progress")
def show_progress(
    model: Path = MODEL,
    num: int = typer.Option(8, "--num", min=1, max=64, help="Number of images (rows)."),
    steps: int = typer.Option(8, "--steps", min=1, help="Intervals between pictured steps."),
    label: Optional[int] = typer.Option(
        None, "--label", help="Conditional models: the digit (default: 0, 1, 2, ... per row)."
    ),
    seed: int = SEED,
    out: Path = typer.Option(Path("progress.png"), "--out", help="PNG to write."),
    overwrite: bool = OVERWRITE,
    backend: Optional[Backend] = BACKEND,
):
    """The generation-progress strip: images at steps 0, 98, 196, ..., 784."""
    from keras_pixelcnn.atomic import check_writable_file

    if label is not None and not 0 <= label <= MAX_LABEL:
        raise UsageError(f"--label {label} is out of range; labels are 0-{MAX_LABEL}")
    check_writable_file(_png(out), overwrite=overwrite)
    _start(backend)
    from keras_pixelcnn.figures import save_progress_strip
    from keras_pixelcnn.models.contract import is_conditional
    from keras_pixelcnn.sampling import sample

    m = _load(model)
    if label is not None and not is_conditional(m):
        raise UsageError("this model is unconditional; it takes no --label")
    labels = None
    if is_conditional(m):
        labels = [label] * num if label is not None else [k % (MAX_LABEL + 1) for k in range(num)]
    images = sample(m, num, seed, labels=labels, progress=_Progress(f"sampling {num} images"))
    shown = save_progress_strip(
        images, out, num_steps=steps, title="generation progress (grey: not yet sampled)"
    )
    typer.echo(f"wrote {out} (steps {', '.join(map(str, shown))})")


@show_app.command("data")
def show_data(
    data: Optional[Path] = DATA,
    num: int = typer.Option(20, "--num", min=1, max=500, help="Number of images."),
    image_size: Optional[int] = IMAGE_SIZE,
    channels: Optional[int] = CHANNELS,
    out: Path = typer.Option(Path("data.png"), "--out", help="PNG to write."),
    overwrite: bool = OVERWRITE,
):
    """Training images (of a folder: the crops of epoch 0) next to their binarized form."""
    from keras_pixelcnn.atomic import check_writable_file
    from keras_pixelcnn.data import DEFAULT_IMAGE_SIZE, binarize, load_folder, load_raw
    from keras_pixelcnn.figures import save_data_grid

    check_writable_file(_png(out), overwrite=overwrite)
    if data is not None and data.is_dir():
        if channels not in (None, 1, 3):
            raise UsageError(f"--channels must be 1 or 3, got {channels}")
        size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
        images = load_folder(data, size, channels=channels).train.images[:num]
        what = f"{size}×{size} training crops"
    else:
        if image_size is not None or channels is not None:
            raise UsageError("--image-size and --channels apply to a folder of images")
        images = load_raw(str(data) if data else None)[0][:num]
        what = "training images"
    save_data_grid(images, binarize(images), out, ncols=min(num, 10))
    typer.echo(f"wrote {out} ({len(images)} {what})")


@show_app.command("run")
def show_run(
    run_dir: Path = typer.Argument(..., help="A training run directory (`train --run-dir`)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="PNG to write (default: RUN_DIR/training.png)."
    ),
    panels: int = typer.Option(6, "--panels", min=1, help="At most this many epochs."),
    overwrite: bool = OVERWRITE,
):
    """A run's per-epoch sample grids and loss curve as one picture."""
    from keras_pixelcnn.atomic import check_writable_file
    from keras_pixelcnn.figures import epoch_grids, save_run_figure

    out = _png(out or run_dir / "training.png")
    if not run_dir.is_dir():
        raise PixelCNNError(f"run directory {run_dir} does not exist")
    if not epoch_grids(run_dir):
        raise PixelCNNError(f"{run_dir} has no per-epoch sample grids (samples/epoch_*.png)")
    check_writable_file(out, overwrite=overwrite)
    epochs = save_run_figure(str(run_dir), out, max_panels=panels)
    typer.echo(f"wrote {out} (epochs {', '.join(map(str, epochs))})")


def _error(message, code):
    sys.stderr.write(f"error: {message}\n")
    return code


def main(argv=None, prog_name=None):
    """Runs the CLI; returns the exit code (errors are one line on stderr)."""
    try:
        result = app(args=argv, prog_name=prog_name or "keras-pixelcnn", standalone_mode=False)
    except PixelCNNError as e:
        return _error(e, getattr(e, "exit_code", 1))
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except typer.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except OSError as e:
        if not e.strerror:
            raise
        where = f" ({e.filename})" if e.filename else ""
        return _error(f"could not write or read a file: {e.strerror}{where}", 1)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # click's usage errors, duck-typed: typer 0.29 vendors click as the
            # private `typer._click`, whose ClickException has no public import
            message = e.format_message()
            if not message.strip():  # no command: the help was printed, nothing to add
                return int(e.exit_code) or 2
            return _error(message, int(e.exit_code) or 2)
        raise
    return result if isinstance(result, int) else 0
