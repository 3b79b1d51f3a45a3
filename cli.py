"""keras-pixelcnn command line: train PixelCNNs and generate digits.

    python cli.py generate                 # 16 digits from the shipped model
    python cli.py train --data mnist.npz   # train the reference PixelCNN

Heavy imports (Keras, TensorFlow) happen inside the commands, so `--help`
is instant. Every user error is one line on stderr and a non-zero exit:
2 for a bad argument, 1 for a bad file or a failed job.
"""

import importlib.util
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer

# Quiet TensorFlow's C++ start-up logging (a user can still override it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = ROOT / "saved_models" / "pixelcnn.keras"
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="PixelCNN-family autoregressive image models (Keras 3).",
)


class UsageFailure(Exception):
    """A bad argument: printed as one line, exit code 2."""


def _usage(message):
    raise UsageFailure(message)


def _select_backend(name):
    """Sets KERAS_BACKEND before Keras is imported (one backend per process)."""
    if name is None:
        return
    if name not in BACKENDS:
        _usage(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(BACKENDS[name]) is None:
        _usage(f"backend {name!r} is not installed (pip install -e '.[{name}]')")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            _usage(
                f"Keras already runs on {keras.backend.backend()!r} in this process; "
                f"set KERAS_BACKEND={name} before starting it"
            )
    os.environ["KERAS_BACKEND"] = name


def _import_keras():
    """Imports Keras (and its backend) with the backend's C++ start-up chatter
    on stderr captured; it is replayed only if the import fails."""
    if "keras" in sys.modules:
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            # The package first sets the backend's fastest runtime options
            # (keras_pixelcnn/runtime.py), then imports Keras.
            import keras_pixelcnn  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _positive(name, value):
    if value is not None and value < 1:
        _usage(f"--{name} must be a positive integer, got {value}")


class _Progress:
    """A one-line progress display on stderr."""

    def __init__(self, label):
        self.label = label
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.last = -1

    def __call__(self, done, total):
        pct = int(100 * done / total)
        if not self.tty and pct < 100 and pct - self.last < 25:
            return
        self.last = pct
        bar = "#" * (pct // 4) + "." * (25 - pct // 4)
        end = "\n" if done >= total or not self.tty else ""
        sys.stderr.write(
            f"\r{self.label} [{bar}] {pct:3d}% {time.perf_counter() - self.start:5.1f} s{end}"
        )
        sys.stderr.flush()


def _parse_labels(text):
    """'7' → [7]; '0,1,2' → [0, 1, 2]; 'all' → [0, ..., 9]; None → None."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return list(range(10))
    try:
        labels = [int(part) for part in text.split(",")]
    except ValueError:
        _usage(f"--label must be a digit, a comma-separated list of digits, or 'all', got {text!r}")
    bad = [c for c in labels if not 0 <= c <= 9]
    if bad:
        _usage(f"--label {bad[0]} is out of range; labels are 0-9")
    return labels


BackendOption = typer.Option(
    None, "--backend", help="Keras backend: tensorflow, jax or torch (default: KERAS_BACKEND or tensorflow)."
)


@app.command()
def generate(
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help="A .keras model."),
    saved_model: Optional[Path] = typer.Option(
        None, "--saved-model", help="Sample from an exported SavedModel with TensorFlow alone (no Keras)."
    ),
    num: int = typer.Option(16, "--num", help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise."),
    out: Path = typer.Option(Path("samples.png"), "--out", help="PNG grid to write."),
    npy: Optional[Path] = typer.Option(None, "--npy", help="Also write the raw 0/1 array (.npy)."),
    sampler: str = typer.Option("fast", "--sampler", help="fast (cached, ~1 forward pass per image) or reference (one full pass per pixel)."),
    label: Optional[str] = typer.Option(
        None, "--label", help="Conditional models: a digit (7), a list (0,1,2) or 'all'; --num images per label."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing --out / --npy files."),
    backend: Optional[str] = BackendOption,
):
    """Sample new images from a trained model and save them as a PNG grid."""
    _select_backend(backend)
    _positive("num", num)
    if sampler not in ("fast", "reference"):
        _usage(f"unknown sampler {sampler!r}; choose fast or reference")
    labels = _parse_labels(label)
    if num > 10000:
        _usage(f"--num must be at most 10000, got {num}")
    if npy is not None and npy.suffix != ".npy":
        _usage(f"--npy must end in .npy, got {npy}")
    if out.suffix.lower() != ".png":
        _usage(f"--out must end in .png, got {out}")
    if not overwrite:
        for target in [out] + ([npy] if npy else []):
            if target.exists():
                _fail(f"{target} already exists (pass --overwrite to replace it)")
    if saved_model is not None:
        return _generate_from_saved_model(saved_model, num, seed, out, npy, labels)
    _import_keras()
    from keras_pixelcnn.io import check_writable_file

    check_writable_file(out)
    if npy is not None:
        check_writable_file(npy)

    from keras_pixelcnn.io import save_npy
    from keras_pixelcnn.plots import save_grid
    from keras_pixelcnn.sampling import draw_noise, image_shape, make_sampler
    from keras_pixelcnn.saving import load_model

    from keras_pixelcnn.sampling import check_labels, is_conditional

    m = load_model(model)
    if labels is None and is_conditional(m):
        _usage("this model is class-conditional; pass --label (a digit, a list like 0,1,2, or all)")
    per_image = None if labels is None else [c for c in labels for _ in range(num)]
    total = num * (len(labels) if labels else 1)
    check_labels(m, per_image, total)
    noise = draw_noise(total, image_shape(m), seed)
    s = make_sampler(m, sampler)
    start = time.perf_counter()
    images = s.sample(noise, labels=per_image, progress=_Progress(f"sampling {total} images"))
    seconds = time.perf_counter() - start
    save_grid(images, out, ncols=num if labels and len(labels) > 1 else None)
    if npy is not None:
        save_npy(images.astype("uint8"), npy)
    typer.echo(
        f"wrote {out}" + (f" and {npy}" if npy else "")
        + f" ({total} images in {seconds:.1f} s, {total / seconds:.1f} images/s)"
    )


def _fail(message):
    """A runtime failure outside the package (exit 1), e.g. a bad SavedModel."""
    raise typer.Exit(_print_error(message, 1))


def _print_error(message, code):
    sys.stderr.write(f"error: {message}\n")
    return code


def _generate_from_saved_model(path, num, seed, out, npy, labels):
    """Samples with TensorFlow and the SavedModel only: neither Keras nor
    keras_pixelcnn is imported on this path."""
    import numpy as np

    for target in [out] + ([npy] if npy else []):
        parent = target.resolve().parent
        if not parent.is_dir():
            _fail(f"output directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            _fail(f"output directory {parent} is not writable")
    if not path.is_dir():
        _fail(f"SavedModel directory {path} does not exist" if not path.exists()
              else f"{path} is not a SavedModel directory")
    if not (path / "saved_model.pb").exists():
        _fail(f"{path} is not a SavedModel (no saved_model.pb)")
    tf = _import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
        sample_fn = loaded.signatures["sample"]
    except Exception as e:  # corrupt protobuf, missing variables, no signature
        _fail(f"could not load SavedModel {path}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__}")
    spec = sample_fn.structured_input_signature[1]
    h, w, c = spec["noise"].shape[1:]
    conditional = "labels" in spec
    if conditional and labels is None:
        _usage("this model is class-conditional; pass --label (a digit, a list like 0,1,2, or all)")
    if not conditional and labels is not None:
        _usage("this model is unconditional; it takes no --label")
    total = num * (len(labels) if labels else 1)
    # the same noise as keras_pixelcnn.draw_noise(total, (h, w, c), seed)
    noise = np.random.default_rng(seed).random((total, h, w, c), dtype=np.float32)
    start = time.perf_counter()
    kwargs = {"noise": tf.constant(noise)}
    if conditional:
        kwargs["labels"] = tf.constant([k for k in labels for _ in range(num)], tf.int32)
    images = sample_fn(**kwargs)["images"].numpy()
    seconds = time.perf_counter() - start
    _write_grid_png(images, out, ncols=num if labels and len(labels) > 1 else None)
    if npy is not None:
        _atomic_write(npy, lambda f: np.save(f, images.astype("uint8")))
    typer.echo(f"wrote {out}" + (f" and {npy}" if npy else "")
               + f" ({total} images in {seconds:.1f} s from the SavedModel)")


def _import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


def _atomic_write(path, write):
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_grid_png(images, path, ncols=None, scale=4, pad=2):
    """A minimal grid writer for the Keras-free SavedModel path."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n, h, w = images.shape[:3]
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), 0.5, "float32")
    for k in range(n):
        r, c = divmod(k, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[k, ..., 0]
    big = np.kron(grid, np.ones((scale, scale), "float32"))
    _atomic_write(path, lambda f: plt.imsave(f, big, cmap="gray", vmin=0, vmax=1, format="png"))


@app.command()
def export(
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help="A .keras model."),
    out: Path = typer.Option(..., "--out", help="The SavedModel directory to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
    backend: Optional[str] = BackendOption,
):
    """Export a .keras model to a TF SavedModel with sample / log_prob / serve signatures."""
    _select_backend(backend or os.environ.get("KERAS_BACKEND") or "tensorflow")
    if out.exists() and not overwrite:
        _usage(f"{out} already exists (pass --overwrite to replace it)")
    _import_keras()
    from keras_pixelcnn.export import export_saved_model
    from keras_pixelcnn.saving import load_model

    m = load_model(model)
    export_saved_model(m, out, overwrite=overwrite)
    typer.echo(f"wrote SavedModel {out} (signatures: sample, log_prob, serve)")


@app.command()
def train(
    data: Optional[Path] = typer.Option(
        None, "--data", help="A local Keras-format mnist.npz (default: download with tensorflow-datasets)."
    ),
    run_dir: Path = typer.Option(Path("runs/pixelcnn"), "--run-dir", help="Where checkpoints, logs and grids go; run again to resume."),
    model: str = typer.Option("pixelcnn", "--model", help="Model family: pixelcnn or gated."),
    conditional: bool = typer.Option(False, "--conditional", help="Gated only: condition on the digit label."),
    layers: int = typer.Option(8, "--layers", help="Gated only: number of gated layers."),
    epochs: int = typer.Option(10, "--epochs", help="Total number of epochs."),
    batch_size: int = typer.Option(64, "--batch-size"),
    learning_rate: float = typer.Option(1e-3, "--learning-rate", help="Adam learning rate."),
    filters: int = typer.Option(64, "--filters", help="Hidden channels."),
    blocks: int = typer.Option(4, "--blocks", help="Residual blocks."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, shuffling and sample noise."),
    samples: int = typer.Option(16, "--samples", help="Images in each per-epoch sample grid."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Train on the first N training images only."),
    validation_size: int = typer.Option(5000, "--validation-size", help="Training images held out for validation (the last ones)."),
    backup_every: Optional[int] = typer.Option(None, "--backup-every", help="Also back up every N training steps (default: every epoch)."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic ops: a killed and resumed run ends with the same weights as an uninterrupted one."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in an existing run directory (deletes it)."),
    precision: str = typer.Option("float32", "--precision", help="float32, or mixed_bfloat16 (bf16 compute, float32 weights)."),
    distribute: str = typer.Option("none", "--distribute", help="none, mirrored or multi-worker (tf.distribute, TensorFlow), data-parallel (keras.distribution, JAX)."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Start from the weights of a trained .keras model of the same architecture (fine-tuning, e.g. at a lower --learning-rate)."),
    backend: Optional[str] = BackendOption,
):
    """Train a model on binarized MNIST with model.fit (kill-safe; run again to resume)."""
    _select_backend(backend)
    for name, value in (("epochs", epochs), ("batch-size", batch_size), ("filters", filters),
                        ("samples", samples), ("limit", limit)):
        _positive(name, value)
    _positive("validation-size", validation_size)
    _positive("layers", layers)
    _positive("backup-every", backup_every)
    if conditional and model != "gated":
        _usage("--conditional needs --model gated")
    if blocks < 0:
        _usage(f"--blocks must be >= 0, got {blocks}")
    if not (learning_rate > 0 and learning_rate != float("inf")):
        _usage(f"--learning-rate must be a positive number, got {learning_rate}")
    _import_keras()

    from keras_pixelcnn.io import check_writable_dir
    from keras_pixelcnn.training import MODEL_FAMILIES, TrainConfig
    from keras_pixelcnn.training import train as run_training

    if model not in MODEL_FAMILIES:
        _usage(f"unknown model {model!r}; choose one of {', '.join(MODEL_FAMILIES)}")
    from keras_pixelcnn.distribution import DISTRIBUTE_MODES, check_distribute

    if distribute not in DISTRIBUTE_MODES:
        _usage(f"unknown --distribute mode {distribute!r}; choose one of {', '.join(DISTRIBUTE_MODES)}")
    check_distribute(distribute)
    if precision not in ("float32", "mixed_bfloat16"):
        _usage(f"unknown --precision {precision!r}; choose float32 or mixed_bfloat16")
    check_writable_dir(run_dir)
    if data is not None and not data.exists():
        from keras_pixelcnn.errors import PixelCNNError

        raise PixelCNNError(f"data file {data} does not exist")
    config = TrainConfig(
        run_dir=str(run_dir), data=str(data) if data else None, model=model, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, filters=filters,
        num_residual_blocks=blocks, seed=seed, num_samples=samples, limit=limit,
        validation_size=validation_size, num_layers=layers, conditional=conditional,
        backup_every=backup_every, deterministic=deterministic, distribute=distribute,
        precision=precision, init_from=str(init_from) if init_from else None,
    )
    command = "python cli.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run_training(config, verbose=1 if sys.stdout.isatty() else 2, command=command,
                 overwrite=overwrite)
    typer.echo(f"done: {run_dir}/model.keras, {run_dir}/metrics.json, {run_dir}/loss_curve.png")


DataOption = typer.Option(
    None, "--data", help="A local Keras-format mnist.npz (default: download with tensorflow-datasets)."
)


def _check_png(name, path):
    if path.suffix.lower() != ".png":
        _usage(f"--{name} must end in .png, got {path}")


def _load_test_split(data, m, limit=None):
    """The binarized test split, checked against the model's image shape."""
    from keras_pixelcnn.data import load_mnist
    from keras_pixelcnn.errors import PixelCNNError
    from keras_pixelcnn.sampling import image_shape

    if data is not None and not data.exists():
        raise PixelCNNError(f"data file {data} does not exist")
    mnist = load_mnist(str(data) if data else None, validation_size=0)
    shape = image_shape(m)
    if tuple(mnist.test.images.shape[1:]) != shape:
        raise PixelCNNError(
            f"the model's input shape {shape} does not match the data's image shape "
            f"{tuple(mnist.test.images.shape[1:])}"
        )
    if limit is not None:
        mnist.test.images, mnist.test.labels = mnist.test.images[:limit], mnist.test.labels[:limit]
    return mnist


def _fmt_nll(summary):
    return (f"{summary['nats_per_image']:.2f} ± {summary['nats_per_image_se']:.2f} nats/image · "
            f"{summary['nats_per_pixel']:.4f} nats/pixel · {summary['bits_per_dim']:.4f} bits/dim")


@app.command()
def evaluate(
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help="A .keras model."),
    data: Optional[Path] = DataOption,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    samples: int = typer.Option(0, "--samples", help="Also draw N samples and score them with the shipped MNIST classifier."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate on the first N test images only (default: all 10,000)."),
    batch_size: int = typer.Option(500, "--batch-size"),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise (--samples)."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="A classifier .keras (default: saved_models/mnist_classifier.keras)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --json file."),
    backend: Optional[str] = BackendOption,
):
    """Exact test NLL (nats/image, nats/pixel, bits/dim) and sample quality."""
    _select_backend(backend)
    _positive("limit", limit)
    _positive("batch-size", batch_size)
    if samples < 0:
        _usage(f"--samples must be >= 0, got {samples}")
    if json_out is not None and json_out.suffix != ".json":
        _usage(f"--json must end in .json, got {json_out}")
    _import_keras()
    import numpy as np

    from keras_pixelcnn.evaluation import evaluate_model
    from keras_pixelcnn.io import check_writable_file, save_json
    from keras_pixelcnn.saving import load_model

    if json_out is not None:
        check_writable_file(json_out, overwrite=overwrite)
    m = load_model(model)
    clf = None
    if samples:
        from keras_pixelcnn.classifier import load_classifier

        clf = load_classifier(str(classifier) if classifier else None)
    mnist = _load_test_split(data, m, limit)
    test = mnist.test
    start = time.perf_counter()
    report = evaluate_model(m, test.images, test.labels, batch_size=batch_size)
    report["model"] = str(model)
    report["nll_seconds"] = time.perf_counter() - start
    typer.echo(f"{model} on {len(test.images)} test images")
    label = "NLL (given the true label)" if report["conditional"] else "NLL"
    typer.echo(f"  {label}: {_fmt_nll(report['nll'])}")
    if "nll_label_marginalized" in report:
        typer.echo(f"  NLL (label marginalized, uniform prior): {_fmt_nll(report['nll_label_marginalized'])}")
    if samples:
        from keras_pixelcnn.sample_quality import sample_quality
        from keras_pixelcnn.sampling import draw_noise, image_shape, is_conditional, make_sampler

        labels = np.arange(samples) % 10 if is_conditional(m) else None
        noise = draw_noise(samples, image_shape(m), seed)
        images = make_sampler(m, "fast").sample(
            noise, labels=labels, progress=_Progress(f"sampling {samples} images")
        )
        reference = mnist.train.images[:samples]
        quality = sample_quality(clf, images, test.images, reference, labels)
        report["sample_quality"] = quality
        typer.echo(f"  classifier score: {quality['classifier_score']:.3f} "
                   f"(real digits: {quality['classifier_score_real']:.3f})")
        typer.echo(f"  Fréchet distance: {quality['frechet_distance']:.3f} "
                   f"(real-vs-real floor with {samples} images: {quality['frechet_distance_real_floor']:.3f})")
        if "label_accuracy" in quality:
            typer.echo(f"  samples classified as their label: {quality['label_accuracy']:.3f}")
    if json_out is not None:
        save_json(report, json_out)
        typer.echo(f"wrote {json_out}")


def _check_rows(rows, height=28):
    if not 1 <= rows <= height - 1:
        _usage(f"--rows must be between 1 and {height - 1}, got {rows}")


@app.command()
def complete(
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help="A .keras model."),
    data: Optional[Path] = DataOption,
    num: int = typer.Option(8, "--num", help="Number of test digits to complete."),
    rows: int = typer.Option(14, "--rows", help="Keep rows 0..ROWS-1, sample the rest."),
    completions: int = typer.Option(4, "--completions", help="Completions per digit."),
    offset: int = typer.Option(0, "--offset", help="Index of the first test digit."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise."),
    out: Path = typer.Option(Path("completions.png"), "--out", help="PNG to write."),
    sampler: str = typer.Option("fast", "--sampler", help="fast or reference."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    backend: Optional[str] = BackendOption,
):
    """Hide the bottom of test digits and sample completions."""
    _select_backend(backend)
    _positive("num", num)
    _positive("completions", completions)
    _check_rows(rows)
    if offset < 0:
        _usage(f"--offset must be >= 0, got {offset}")
    if sampler not in ("fast", "reference"):
        _usage(f"unknown sampler {sampler!r}; choose fast or reference")
    _check_png("out", out)
    _import_keras()
    from keras_pixelcnn.completion import complete as run_completion, occlude
    from keras_pixelcnn.errors import PixelCNNError
    from keras_pixelcnn.figures import UNKNOWN, save_completion_figure
    from keras_pixelcnn.io import check_writable_file
    from keras_pixelcnn.sampling import image_shape, is_conditional
    from keras_pixelcnn.saving import load_model

    check_writable_file(out, overwrite=overwrite)
    m = load_model(model)
    test = _load_test_split(data, m).test
    _check_rows(rows, image_shape(m)[0])
    if offset + num > len(test.images):
        raise PixelCNNError(f"--offset {offset} + --num {num} exceeds the {len(test.images)} test digits")
    images = test.images[offset : offset + num]
    labels = test.labels[offset : offset + num] if is_conditional(m) else None
    start = time.perf_counter()
    done = run_completion(m, images, rows, completions, labels=labels, seed=seed, sampler=sampler,
                          progress=_Progress(f"completing {num}×{completions} digits"))
    titles = [f"#{offset + k}" + (f" ({labels[k]})" if labels is not None else "") for k in range(num)]
    save_completion_figure(images, occlude(images, rows, UNKNOWN), done, out, row_titles=titles,
                           title=f"rows {rows}+ hidden and sampled")
    typer.echo(f"wrote {out} ({num * completions} completions in {time.perf_counter() - start:.1f} s)")


show_app = typer.Typer(help="Pictures: generation progress, the data, a training run.",
                       no_args_is_help=True)
app.add_typer(show_app, name="show")


@show_app.command("progress")
def show_progress(
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help="A .keras model."),
    num: int = typer.Option(8, "--num", help="Number of images (rows)."),
    steps: int = typer.Option(8, "--steps", help="Intervals between the pictured steps (8: every 98 pixels)."),
    label: Optional[int] = typer.Option(None, "--label", help="Conditional models: the digit (default: 0, 1, 2, ... per row)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("progress.png"), "--out", help="PNG to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    backend: Optional[str] = BackendOption,
):
    """The generation-progress strip: images at steps 0, 98, 196, ..., 784."""
    _select_backend(backend)
    _positive("num", num)
    _positive("steps", steps)
    _check_png("out", out)
    if label is not None and not 0 <= label <= 9:
        _usage(f"--label {label} is out of range; labels are 0-9")
    _import_keras()
    import numpy as np

    from keras_pixelcnn.figures import save_progress_strip
    from keras_pixelcnn.io import check_writable_file
    from keras_pixelcnn.sampling import check_labels, draw_noise, image_shape, is_conditional, make_sampler
    from keras_pixelcnn.saving import load_model

    check_writable_file(out, overwrite=overwrite)
    m = load_model(model)
    labels = None
    if is_conditional(m):
        labels = np.full(num, label) if label is not None else np.arange(num) % 10
    elif label is not None:
        _usage("this model is unconditional; it takes no --label")
    labels = check_labels(m, labels, num)
    images = make_sampler(m, "fast").sample(draw_noise(num, image_shape(m), seed), labels=labels,
                                            progress=_Progress(f"sampling {num} images"))
    shown = save_progress_strip(images, out, num_steps=steps, title="generation progress (grey: not yet sampled)")
    typer.echo(f"wrote {out} (steps {', '.join(map(str, shown))})")


@show_app.command("data")
def show_data(
    data: Optional[Path] = DataOption,
    num: int = typer.Option(20, "--num", help="Number of digits."),
    out: Path = typer.Option(Path("data.png"), "--out", help="PNG to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
):
    """Original MNIST digits next to their binarized form."""
    _positive("num", num)
    _check_png("out", out)
    _import_keras()
    from keras_pixelcnn.data import binarize, load_npz, load_tfds
    from keras_pixelcnn.errors import PixelCNNError
    from keras_pixelcnn.figures import save_data_grid
    from keras_pixelcnn.io import check_writable_file

    check_writable_file(out, overwrite=overwrite)
    if data is not None and not data.exists():
        raise PixelCNNError(f"data file {data} does not exist")
    x_train = (load_npz(str(data)) if data else load_tfds())[0][:num]
    save_data_grid(x_train, binarize(x_train), out, ncols=min(num, 10))
    typer.echo(f"wrote {out} ({len(x_train)} training digits)")


@show_app.command("run")
def show_run(
    run_dir: Path = typer.Argument(..., help="A training run directory (from `train --run-dir`)."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default: RUN_DIR/progress.png)."),
    panels: int = typer.Option(6, "--panels", help="At most this many epochs are pictured."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
):
    """A run's per-epoch sample grids and loss curve as one picture."""
    _positive("panels", panels)
    out = out or run_dir / "progress.png"
    _check_png("out", out)
    _import_keras()
    from keras_pixelcnn.errors import PixelCNNError

    if not run_dir.is_dir():
        raise PixelCNNError(f"run directory {run_dir} does not exist")
    from keras_pixelcnn.figures import epoch_grids, save_run_figure
    from keras_pixelcnn.io import check_writable_file

    if not epoch_grids(run_dir):
        raise PixelCNNError(f"{run_dir} has no per-epoch sample grids (samples/epoch_*.png)")
    check_writable_file(out, overwrite=overwrite)
    epochs = save_run_figure(str(run_dir), out, max_panels=panels)
    typer.echo(f"wrote {out} (epochs {', '.join(map(str, epochs))})")


def main(argv=None):
    """Runs the CLI; returns the exit code (errors are one line on stderr)."""
    try:
        result = app(args=argv, prog_name="cli.py", standalone_mode=False)
    except UsageFailure as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except Exception as e:
        errors = sys.modules.get("keras_pixelcnn.errors")
        if errors is not None and isinstance(e, errors.PixelCNNError):
            sys.stderr.write(f"error: {e}\n")
            return getattr(e, "exit_code", 1)
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # click/typer usage errors (bad option values, unknown options)
            message = e.format_message()
            if not message:  # no arguments: the help was printed
                return 0
            sys.stderr.write(f"error: {message}\n")
            return int(e.exit_code) or 2
        if isinstance(e, OSError) and e.strerror:  # disk full, file too large, I/O error
            where = f" ({e.filename})" if e.filename else ""
            sys.stderr.write(f"error: could not write or read a file: {e.strerror}{where}\n")
            return 1
        if type(e).__name__ == "Abort":
            sys.stderr.write("aborted\n")
            return 130
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
