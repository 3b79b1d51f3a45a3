"""The models shipped in saved_models/: they load, their metrics files are
consistent, the fast sampler reproduces the reference, and (with the real
MNIST present) the reported test NLL is reproduced."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_mnist
from helpers import ROOT

from keras_pixelcnn import (
    CachedSampler,
    ReferenceSampler,
    draw_noise,
    evaluate_nll,
    load_mnist,
    load_model,
)
from keras_pixelcnn.data import TEST_STREAM, binarize_dynamic
from keras_pixelcnn.models.contract import is_conditional, levels, noise_shape
from keras_pixelcnn.sampling import make_sampler

SAVED = Path(__file__).resolve().parents[1] / "saved_models"
CLASSIFIER = "mnist_classifier"
SHIPPED = sorted(p.stem for p in SAVED.glob("*.keras") if p.stem != CLASSIFIER)


def test_the_pixelcnn_is_shipped():
    assert "pixelcnn" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_metrics_file_is_consistent(name):
    metrics = json.loads((SAVED / f"{name}.json").read_text())
    nll = metrics["test_nll"]
    assert nll["num_images"] == 10000
    assert math.isclose(nll["nats_per_image"], nll["nats_per_pixel"] * 784, rel_tol=1e-9)
    assert math.isclose(nll["bits_per_dim"], nll["nats_per_pixel"] / math.log(2), rel_tol=1e-9)
    assert metrics["command"].startswith("python cli.py train")
    assert metrics["epochs"] >= 1


# One shipped model per architecture: pixelcnn_dynamic and pixelcnn_pp_dynamic
# are these architectures with a Bernoulli head, which the tiny models of
# test_pixelcnn_pp.py sample too (30 s each here on a CPU).
ONE_PER_ARCHITECTURE = ["pixelcnn", "gated_pixelcnn_conditional", "pixelcnn_pp"]


def test_every_shipped_architecture_is_sampled_at_its_size():
    def architecture(name):
        return json.loads((SAVED / f"{name}.json").read_text())["model"]

    assert set(ONE_PER_ARCHITECTURE) <= set(SHIPPED)
    assert {architecture(n) for n in ONE_PER_ARCHITECTURE} == {architecture(n) for n in SHIPPED}


@pytest.mark.parametrize("name", ONE_PER_ARCHITECTURE)
@pytest.mark.slow
def test_fast_sampler_reproduces_reference_on_shipped_model(name, monkeypatch):
    """The last four rows of two images, given 24 seeded rows: the cached
    sampler fills its caches from the given rows and then draws what the
    reference draws with 112 full forward passes (every scale of the
    PixelCNN++ has a row in them: 24-27, 12-13, 6; the real image size,
    28 -> 14 -> 7, odd at the coarsest scale; the tiny models of
    test_fast_sampling.py and test_pixelcnn_pp.py cover the first rows),
    with the loops unrolled as users get them (tests/conftest.py)."""
    monkeypatch.delenv("KERAS_PIXELCNN_UNROLL", raising=False)
    model = load_model(SAVED / f"{name}.keras")
    noise = draw_noise(2, noise_shape(model), seed=11)
    labels = [3, 8] if is_conditional(model) else None
    rng = np.random.default_rng(11)
    initial = (rng.integers(0, 2, (2, 28, 28, 1)) * (levels(model) - 1)).astype("float32")
    start = 24 * 28
    fast = make_sampler(model, "fast").sample(noise, labels=labels, initial=initial, start=start)
    ref = ReferenceSampler(model).sample(noise, labels=labels, initial=initial, start=start)
    np.testing.assert_array_equal(fast[:, :24], initial[:, :24])
    assert not np.array_equal(fast[:, 24:], initial[:, 24:])  # the last rows were drawn
    np.testing.assert_array_equal(fast, ref)


def _numpy_nll(model, x, y):
    """Per-image NLL of images x (labels y), from the model's outputs in
    float64 NumPy: nothing of the package's evaluation."""
    from test_likelihoods import mixture_log_prob64

    n = len(x)
    outputs = np.concatenate(
        [
            np.asarray(
                model.predict_on_batch(
                    x[s : s + 125]
                    if not is_conditional(model)
                    else [x[s : s + 125], y[s : s + 125]]
                ),
                "float64",
            )
            for s in range(0, n, 125)
        ]
    )
    if levels(model) == 256:
        k = outputs.shape[-1] // 3
        log_p = mixture_log_prob64(outputs.reshape(-1, 3 * k), x.reshape(-1), k)
        return -log_p.reshape(n, -1).sum(axis=1)
    return (np.logaddexp(0.0, outputs) - x * outputs).reshape(n, -1).sum(axis=1)


def _test_images(mnist_npz, metrics, n):
    """The first n test digits as the model was evaluated on them: each of
    the recorded draws of a stochastic binarization, or one array."""
    with np.load(mnist_npz) as f:
        raw = f["x_test"][:n, :, :, None]
        y = f["y_test"][:n].astype("int32")
    if "256 levels" in metrics["binarization"]:
        return [raw.astype("float32")], y
    if metrics["binarization"].startswith("stochastic"):
        p = raw.astype("float32") / np.float32(255.0)
        draws = metrics["test_nll"]["draws"]
        return [binarize_dynamic(p, 0, k, TEST_STREAM) for k in range(draws)], y
    return [(raw > 127.5).astype("float32")], y


@needs_mnist
@pytest.mark.parametrize("name", SHIPPED)
def test_reported_test_nll_is_reproduced(name, mnist_npz):
    """The NLL of the first test images (the fewest a metrics file records
    an anchor for: 100, 250 or 1,000), recomputed independently on this
    backend, against the figure the metrics file records (a drift check of
    the shipped file) and against the package's evaluation (the formula)."""
    metrics = json.loads((SAVED / f"{name}.json").read_text())
    model = load_model(SAVED / f"{name}.keras")
    n = next(k for k in (100, 250, 1000) if f"test_nll_first_{k}_nats_per_image" in metrics)
    draws, y = _test_images(mnist_npz, metrics, n)
    per_draw = [_numpy_nll(model, x, y) for x in draws]  # per image
    independent = np.mean(per_draw, axis=0)
    assert math.isclose(
        independent.mean(), metrics[f"test_nll_first_{n}_nats_per_image"], rel_tol=1e-4
    )
    m = min(n, 250)  # the package's evaluation of the first draw's first m
    got = evaluate_nll(model, draws[0][:m], y[:m] if is_conditional(model) else None, 125)
    expected = per_draw[0][:m]
    tol = 1e-6 if levels(model) == 2 else 2e-5  # the mixture's log-prob is float32
    assert math.isclose(got["nats_per_image"], expected.mean(), rel_tol=tol)
    assert math.isclose(
        got["nats_per_image_se"], expected.std(ddof=1) / math.sqrt(m), rel_tol=10 * tol
    )


def test_shipped_classifier_metrics_file():
    metrics = json.loads((SAVED / f"{CLASSIFIER}.json").read_text())
    assert metrics["test_accuracy"] >= 0.99 and metrics["test_images"] == 10000


@needs_mnist
def test_shipped_classifier_is_at_least_99_percent_accurate(mnist_npz):
    from keras_pixelcnn.evaluation.classifier import accuracy, load_classifier

    test = load_mnist(mnist_npz).test
    got = accuracy(load_classifier(), test.images, test.labels)
    reported = json.loads((SAVED / f"{CLASSIFIER}.json").read_text())["test_accuracy"]
    assert got >= 0.99 and abs(got - reported) < 1e-3


BEFORE = Path(__file__).resolve().parent / "data" / "shipped_before_restructure.npz"


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn_conditional"])
def test_same_logits_and_samples_as_before_the_restructure(name):
    """Recorded with the code of commit 7a2fea5 (before the package was
    reorganized) on TensorFlow: the shipped files still load to the same
    network and the fast sampler draws the same digits from the same seed."""
    before = np.load(BEFORE)
    model = load_model(SAVED / f"{name}.keras")
    labels = [0, 3, 7, 9] if is_conditional(model) else None
    x = before["inputs"]
    logits = model.predict_on_batch(x if labels is None else [x, np.array(labels, "int32")])
    np.testing.assert_allclose(np.asarray(logits), before[f"{name}_logits"], atol=2e-4, rtol=1e-4)
    samples = CachedSampler(model).sample(draw_noise(4, (28, 28, 1), 0), labels=labels)
    np.testing.assert_array_equal(samples.astype("uint8"), before[f"{name}_samples"])


def test_shipped_models_let_plain_keras_pick_each_backends_fast_path():
    """Bug: plain `keras.saving.load_model` of a shipped model on JAX ran
    `predict` op by op (the file said jit_compile=False): the exact NLL of
    1,000 digits took 12.6x TensorFlow's time. Every shipped file says
    "auto" (what that gives on JAX: test_keras_file.py; the speed:
    benchmarks/plain_keras_predict.py)."""
    import zipfile

    for path in sorted((ROOT / "saved_models").glob("*.keras")):
        with zipfile.ZipFile(path) as z:
            compile_config = json.loads(z.read("config.json")).get("compile_config") or {}
        assert compile_config.get("jit_compile", "auto") == "auto", path.name
