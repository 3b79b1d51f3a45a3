"""The models shipped in saved_models/: they load, their metrics files are
consistent, the fast sampler reproduces the reference, and (with the real
MNIST present) the reported test NLL is reproduced."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_mnist

from keras_pixelcnn import (
    CachedSampler,
    ReferenceSampler,
    draw_noise,
    evaluate_nll,
    load_mnist,
    load_model,
)
from keras_pixelcnn.models.contract import is_conditional

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


@pytest.mark.parametrize("name", SHIPPED)
def test_fast_sampler_reproduces_reference_on_shipped_model(name):
    model = load_model(SAVED / f"{name}.keras")
    noise = draw_noise(2, (28, 28, 1), seed=11)
    labels = [3, 8] if is_conditional(model) else None
    fast = CachedSampler(model).sample(noise, labels=labels)
    ref = ReferenceSampler(model).sample(noise, labels=labels)
    np.testing.assert_array_equal(fast, ref)


def _numpy_nll(model, mnist_npz, n):
    """Per-image NLL of the first n test digits, from the raw uint8 file and
    the model's logits, in float64 NumPy: nothing of the package's evaluation."""
    with np.load(mnist_npz) as f:
        x = (f["x_test"][:n, :, :, None] > 127.5).astype("float32")
        y = f["y_test"][:n].astype("int32")
    logits = np.concatenate(
        [
            np.asarray(
                model.predict_on_batch(
                    x[s : s + 250]
                    if not is_conditional(model)
                    else [x[s : s + 250], y[s : s + 250]]
                ),
                "float64",
            )
            for s in range(0, n, 250)
        ]
    )
    return (np.logaddexp(0.0, logits) - x * logits).reshape(n, -1).sum(axis=1)


@needs_mnist
@pytest.mark.parametrize("name", SHIPPED)
def test_reported_test_nll_is_reproduced(name, mnist_npz):
    """The NLL of the first 1,000 test images, recomputed independently on
    this backend, against the figure the metrics file records (a drift check
    of the shipped file) and against the package's evaluation (the formula)."""
    metrics = json.loads((SAVED / f"{name}.json").read_text())
    model = load_model(SAVED / f"{name}.keras")
    independent = _numpy_nll(model, mnist_npz, 1000)
    assert math.isclose(
        independent.mean(), metrics["test_nll_first_1000_nats_per_image"], rel_tol=1e-4
    )
    n = 250  # the package's evaluation on a part of them (JAX's CPU convolutions are slow)
    test = load_mnist(mnist_npz).test.take(n)
    got = evaluate_nll(model, test.images, test.labels, batch_size=125)
    assert math.isclose(got["nats_per_image"], independent[:n].mean(), rel_tol=1e-6)
    assert math.isclose(
        got["nats_per_image_se"], independent[:n].std(ddof=1) / math.sqrt(n), rel_tol=1e-5
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
