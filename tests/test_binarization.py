"""Stochastic (dynamic) binarization, the literature's MNIST protocol: the
per-epoch draws, the fixed validation draw, the K-draw test NLL, bit-identical
resume, and the static binarized_mnist source."""

import json
import os

import numpy as np
import pytest
from conftest import make_fake_mnist

from keras_pixelcnn.data import (
    TEST_STREAM,
    VALIDATION_STREAM,
    binarize_dynamic,
    epoch_split,
    intensities,
    load_mnist,
)
from keras_pixelcnn.errors import PixelCNNError, UsageError
from keras_pixelcnn.evaluation.nll import evaluate_dynamic


def _gray(n=64, seed=0):
    return intensities(np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8))


def test_an_epochs_draw_is_a_pure_function_of_seed_and_epoch():
    x = _gray()
    a, b = binarize_dynamic(x, 3, 5), binarize_dynamic(x, 3, 5)
    np.testing.assert_array_equal(a, b)  # bug: an unseeded or stateful generator
    assert set(np.unique(a)) == {0.0, 1.0} and a.dtype == np.float32
    # bug: the same draw every epoch (or for every seed) = static binarization
    assert (binarize_dynamic(x, 3, 6) != a).mean() > 0.2
    assert (binarize_dynamic(x, 4, 5) != a).mean() > 0.2
    # bug: the test or validation draws reuse the training draws
    assert (binarize_dynamic(x, 3, 5, TEST_STREAM) != a).mean() > 0.2
    assert (binarize_dynamic(x, 3, 5, VALIDATION_STREAM) != a).mean() > 0.2


def test_each_pixel_is_one_with_probability_value_over_255():
    values = np.arange(256, dtype=np.uint8)
    x = intensities(np.broadcast_to(values, (4000, 1, 256)))  # 4000 draws of each value
    p = binarize_dynamic(x, 0, 0).mean(axis=(0, 1, 3))
    expected = values / 255.0
    se = np.sqrt(expected * (1 - expected) / 4000)
    # bug: threshold, p = value / 256, or an inverted comparison
    assert np.all(np.abs(p - expected) <= 5 * se + 1e-12), np.abs(p - expected).max()
    assert p[0] == 0.0 and p[255] == 1.0  # the extremes are exact


def test_dynamic_splits_train_intensities_and_a_fixed_validation_draw(tmp_path):
    path = tmp_path / "mnist.npz"
    raw = make_fake_mnist()
    np.savez(path, **raw)
    a = load_mnist(str(path), validation_size=16, binarization="dynamic")
    b = load_mnist(str(path), validation_size=16, binarization="dynamic")
    assert a.binarization == "dynamic"
    np.testing.assert_allclose(a.train.images[..., 0], raw["x_train"][:48] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(a.test.images[..., 0], raw["x_test"] / 255.0, rtol=1e-6)
    # validation: binary, drawn once, the same in every load (and so every run)
    assert set(np.unique(a.validation.images)) == {0.0, 1.0}
    np.testing.assert_array_equal(a.validation.images, b.validation.images)
    # bug: the validation split is thresholded (the fake data has 200-valued strokes)
    thresholded = load_mnist(str(path), validation_size=16).validation.images
    assert (a.validation.images != thresholded).any()
    # the trainer's epoch images are the epoch's draw
    np.testing.assert_array_equal(
        epoch_split(a, a.train, 7, 2).images, binarize_dynamic(a.train.images, 7, 2)
    )
    with pytest.raises(UsageError, match="unknown binarization 'soft'"):
        load_mnist(str(path), binarization="soft")


def test_the_k_draw_nll_averages_draws_and_images_like_numpy(tiny_model):
    model = tiny_model(shape=(28, 28, 1))
    x = _gray(12, seed=1)
    result = evaluate_dynamic(model, x, draws=3, seed=5, batch_size=5)
    per_draw = []
    for k in range(3):
        xb = binarize_dynamic(x, 5, k, TEST_STREAM)
        logits = np.asarray(model.predict_on_batch(xb), "float64")
        per_draw.append((np.logaddexp(0, logits) - xb * logits).reshape(12, -1).sum(1))
    per_draw = np.stack(per_draw, 1)  # (images, draws)
    per_image = per_draw.mean(1)
    np.testing.assert_allclose(result["per_draw_nats_per_image"], per_draw.mean(0), rtol=1e-5)
    np.testing.assert_allclose(result["nats_per_image"], per_draw.mean(), rtol=1e-5)
    # the standard error is over the images' draw means (images and draws), not one draw
    np.testing.assert_allclose(
        result["nats_per_image_se"], per_image.std(ddof=1) / np.sqrt(12), rtol=1e-4
    )
    np.testing.assert_allclose(result["per_image_nats"], per_image, rtol=1e-5)
    assert result["draws"] == 3 and result["seed"] == 5
    # bug: the draws are all the same binarization
    assert len(set(np.round(result["per_draw_nats_per_image"], 4))) == 3


def test_cli_evaluate_dynamic_reports_draws_and_protocol(fake_npz, tmp_path, tiny_model):
    from helpers import run_cli

    model = tiny_model(shape=(28, 28, 1))
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "eval.json"
    args = ["evaluate", "--model", path, "--data", fake_npz, "--binarize", "dynamic"]
    result = run_cli(*args, "--draws", "3", "--json", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "x 3 stochastic binarizations" in result.stdout
    report = json.loads(out.read_text())
    assert report["nll"]["draws"] == 3 and len(report["nll"]["per_draw_nats_per_image"]) == 3
    assert "Bernoulli(value / 255)" in report["binarization"]
    assert "per_image_nats" not in report["nll"]
    expected = evaluate_dynamic(model, load_mnist(fake_npz, 0, "dynamic").test.images, draws=3)
    np.testing.assert_allclose(report["nll"]["nats_per_image"], expected["nats_per_image"])
    bad = run_cli(*args, "--draws", "0")
    assert bad.returncode == 2 and "--draws" in bad.stderr, bad.stderr


# Kill-and-resume under dynamic binarization: test_resume.py's gated-dynamic run.


def test_binarized_mnist_from_tfds_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, max_value=2):  # values 0 and 1
        mnist = load_mnist("binarized_mnist")
    assert mnist.binarization == "static" and not mnist.labeled
    for split in (mnist.train, mnist.validation, mnist.test):
        assert split.images.shape == (6, 28, 28, 1) and split.images.dtype == np.float32
        assert set(np.unique(split.images)) == {0.0, 1.0}  # bug: thresholded at 127.5 (all 0)
    with tfds.testing.mock_data(num_examples=6):  # values 0-255: not binarized MNIST
        with pytest.raises(PixelCNNError, match="values other than 0 and 1"):
            load_mnist("binarized_mnist")
    with pytest.raises(UsageError, match="binarized already"):
        load_mnist("binarized_mnist", binarization="dynamic")


def test_training_on_binarized_mnist_refuses_labels(tmp_path):
    import tensorflow_datasets as tfds

    from keras_pixelcnn import TrainConfig, train

    config = TrainConfig(
        run_dir=str(tmp_path / "run"), data="binarized_mnist", model="gated", conditional=True
    )
    with tfds.testing.mock_data(num_examples=6, max_value=2):
        with pytest.raises(UsageError, match="has no labels; drop --conditional"):
            train(config)
    assert not os.path.exists(tmp_path / "run")


def test_train_rejects_an_unknown_binarization(tmp_path):
    from helpers import run_cli

    result = run_cli("train", "--run-dir", tmp_path / "r", "--binarize", "soft")
    assert result.returncode == 2, result.stderr
    assert "'soft' is not one of 'threshold', 'dynamic'" in result.stderr


def test_a_conditional_model_refuses_unlabeled_test_data():
    import tensorflow_datasets as tfds

    from keras_pixelcnn.data import load_test_split

    with tfds.testing.mock_data(num_examples=6, max_value=2):
        unconditional = load_test_split("binarized_mnist", (28, 28, 1))
        assert len(unconditional.test) == 6
        # bug: a conditional model scored against labels that are all 0
        with pytest.raises(UsageError, match="binarized_mnist has no labels"):
            load_test_split("binarized_mnist", (28, 28, 1), conditional=True)


def test_binarized_mnist_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    import socket

    import tensorflow_datasets as tfds

    from keras_pixelcnn import data

    real_load, downloads = tfds.load, []

    def load(*args, download=True, **kwargs):
        downloads.append(download)
        return real_load(*args, download=download, **kwargs)

    monkeypatch.setattr(tfds, "load", load)
    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    monkeypatch.setattr(data, "BINARIZED_MNIST_URL", dead)
    with pytest.raises(PixelCNNError) as error:
        data.load_binarized_mnist(data_dir=str(tmp_path))  # no prepared copy there
    # bug: tfds asked to download, which retries for minutes: only the look
    # for a prepared copy, then the probe's one-line answer
    assert downloads == [False]
    message = str(error.value)
    assert "could not load binarized_mnist" in message and "unreachable" in message
    assert "--data mnist.npz --binarize dynamic" in message
