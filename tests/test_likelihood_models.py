"""Every architecture with the discretized logistic mixture (256 levels):
shapes, save/load, causality, both samplers identical, the NLL, training."""

import json

import keras
import numpy as np
import pytest
from test_causality import _check_no_future
from test_likelihoods import _pmf64, mixture_bits_per_dim64

from keras_pixelcnn import build_gated_pixelcnn, build_pixelcnn
from keras_pixelcnn.data import MNIST, Split
from keras_pixelcnn.evaluation.nll import per_image_nll
from keras_pixelcnn.likelihoods import DiscretizedLogisticMixture
from keras_pixelcnn.models.contract import levels, likelihood, noise_shape, receptive_field
from keras_pixelcnn.sampling import draw_noise, make_sampler

K = 3


def _model(name, shape=(7, 7, 1)):
    keras.utils.set_random_seed(3)
    lik = DiscretizedLogisticMixture(K)
    if name == "pixelcnn":
        return build_pixelcnn(
            shape, filters=8, num_residual_blocks=1, input_kernel_size=3, likelihood=lik
        )
    return build_gated_pixelcnn(
        shape,
        filters=8,
        num_layers=2,
        input_kernel_size=3,
        num_classes=10 if name == "gated_conditional" else None,
        likelihood=lik,
    )


def _labels(name, n):
    return np.arange(n) % 10 if name == "gated_conditional" else None


NAMES = ["pixelcnn", "gated", "gated_conditional"]


@pytest.mark.parametrize("name", NAMES)
def test_shapes_likelihood_and_round_trip(name, tmp_path):
    model = _model(name)
    assert model.output_shape == (None, 7, 7, 3 * K)
    assert likelihood(model) == DiscretizedLogisticMixture(K) and levels(model) == 256
    assert noise_shape(model) == (7, 7, 2)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert likelihood(again) == DiscretizedLogisticMixture(K)
    x = np.random.default_rng(0).integers(0, 256, (2, 7, 7, 1)).astype("float32")
    inputs = x if _labels(name, 2) is None else [x, _labels(name, 2)]
    np.testing.assert_array_equal(model.predict_on_batch(inputs), again.predict_on_batch(inputs))


@pytest.mark.parametrize("name", NAMES)
def test_no_output_parameter_sees_its_pixel_or_later(name):
    # bug: the input Rescaling or the wider head leaking the current pixel
    _check_no_future(_model(name), labels=3 if name == "gated_conditional" else None)


@pytest.mark.parametrize("name", NAMES)
def test_fast_and_reference_samplers_draw_the_same_256_level_images(name):
    model = _model(name)
    noise = draw_noise(3, noise_shape(model), seed=4)
    labels = _labels(name, 3)
    fast = make_sampler(model, "fast").sample(noise, labels=labels)
    reference = make_sampler(model, "reference").sample(noise, labels=labels)
    np.testing.assert_array_equal(fast, reference)
    assert fast.shape == (3, 7, 7, 1)
    assert np.all(fast == np.round(fast)) and fast.min() >= 0 and fast.max() <= 255
    assert len(np.unique(fast)) > 10, "256-level samples, not binary ones"
    # completion keeps the known pixels (in data units) on both samplers
    initial = np.full((3, 7, 7, 1), 200.0, "float32")
    for sampler in ("fast", "reference"):
        done = make_sampler(model, sampler).sample(noise, labels=labels, initial=initial, start=10)
        np.testing.assert_array_equal(done.reshape(3, -1)[:, :10], 200.0)
        if sampler == "fast":
            first = done
    np.testing.assert_array_equal(first, done)


def test_nll_is_the_float64_pmf_of_the_model_outputs():
    model = _model("pixelcnn")
    x = np.random.default_rng(5).integers(0, 256, (4, 7, 7, 1)).astype("float32")
    params = np.asarray(model.predict_on_batch(x), "float64").reshape(-1, 3 * K)
    pmf = _pmf64(params, k=K)  # (pixels, 256), independent of the library
    expected = -np.log(pmf[np.arange(len(pmf)), x.reshape(-1).astype(int)]).reshape(4, -1).sum(1)
    np.testing.assert_allclose(per_image_nll(model, x), expected, rtol=1e-5)


def test_receptive_field_of_a_256_level_model():
    model = _model("gated", shape=(9, 9, 1))
    seen = receptive_field(model, position=(4, 4))
    before = np.zeros((9, 9), bool)
    before.reshape(-1)[: 4 * 9 + 4] = True
    assert not seen[~before].any() and seen.sum() > 10


def _gray_mnist(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28, 1), "float32")
    x[:, 8:20, 10:18] = rng.integers(100, 256, (n, 12, 8, 1))
    y = rng.integers(0, 10, n).astype("int32")
    return MNIST(
        Split(x[:32], y[:32]), Split(x[32:40], y[32:40]), Split(x[40:], y[40:]), levels=256
    )


def test_training_a_256_level_model_reports_bits_per_dim(tmp_path):
    from keras_pixelcnn import TrainConfig, train

    config = TrainConfig(
        run_dir=str(tmp_path / "run"),
        levels=256,
        mixtures=2,
        epochs=2,
        filters=8,
        num_residual_blocks=1,
        batch_size=16,
        num_samples=4,
    )
    metrics = train(config, mnist=_gray_mnist(), verbose=0, print_fn=lambda line: None)
    loss = [float(r.split(",")[1]) for r in (tmp_path / "run/log.csv").read_text().split()[1:]]
    assert loss[1] < loss[0], "the loss must go down"
    assert loss[0] < np.log(256), "nats/pixel of a first epoch below the uniform's"
    test = _gray_mnist().test
    model = keras.saving.load_model(tmp_path / "run/model.keras")
    expected = mixture_bits_per_dim64(model, test.images, k=2)
    assert metrics["test_nll"]["bits_per_dim"] == pytest.approx(expected, rel=1e-5)
    saved = json.loads((tmp_path / "run/metrics.json").read_text())
    assert saved["test_nll"]["bits_per_dim"] == metrics["test_nll"]["bits_per_dim"]
    assert "256 levels" in saved["binarization"]
    model = keras.saving.load_model(tmp_path / "run/model.keras")
    assert likelihood(model) == DiscretizedLogisticMixture(2)
    assert (tmp_path / "run/samples/epoch_002.png").exists()


def test_mismatched_levels_and_likelihood_are_refused(tmp_path):
    from keras_pixelcnn import TrainConfig, train
    from keras_pixelcnn.errors import UsageError

    bad = [
        (dict(levels=256, likelihood="bernoulli"), "does not model 256-level pixels"),
        (dict(levels=2, likelihood="logistic-mixture"), "does not model 2-level pixels"),
        (dict(levels=16), "--levels must be 2 or 256, got 16"),
        (dict(levels=256, binarize="dynamic"), "--binarize applies to --levels 2 only"),
    ]
    for options, message in bad:
        with pytest.raises(UsageError, match=message):
            train(TrainConfig(run_dir=str(tmp_path / "r"), **options), mnist=_gray_mnist())
    with pytest.raises(UsageError, match="the data has 256 levels, not --levels 2"):
        train(TrainConfig(run_dir=str(tmp_path / "r")), mnist=_gray_mnist())


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="training plumbing; the other backends run the model, sampler and NLL tests",
)
@pytest.mark.slow
def test_cli_trains_and_generates_256_level_digits(fake_npz, tmp_path):
    from helpers import run_cli

    run = tmp_path / "run"
    args = ["train", "--data", fake_npz, "--run-dir", run, "--model", "gated", "--filters", "8"]
    args += ["--layers", "2", "--levels", "256", "--mixtures", "3", "--epochs", "1"]
    result = run_cli(*args, "--validation-size", "16", "--samples", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(none binarization)" not in result.stdout  # the data line names the levels
    assert "bits/dim" in result.stdout
    out = tmp_path / "g.npy"
    gen = run_cli(
        "generate", "--model", run / "model.keras", "--num", "3", "--out", tmp_path / "g.png",
        "--npy", out,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr[-2000:]
    images = np.load(out)
    assert images.shape == (3, 28, 28, 1) and images.max() > 1 and len(np.unique(images)) > 2
    bad = run_cli(
        "train", "--run-dir", tmp_path / "r2", "--levels", "256", "--likelihood", "bernoulli"
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: --likelihood bernoulli does not model 256-level pixels; use logistic-mixture"
    )


def test_completion_of_256_level_digits_hides_them_in_grey():
    from keras_pixelcnn.sampling.completion import complete_test_digits

    model = _model("pixelcnn", shape=(28, 28, 1))
    test = _gray_mnist().test
    originals, occluded, done, _ = complete_test_digits(model, test, 0, 2, 20, num_completions=1)
    # bug: the binary models' 0.5, which draws black beside 0..255 pixels
    assert np.all(occluded[:, 20:] == 127.5)
    np.testing.assert_array_equal(occluded[:, :20], originals[:, :20])
    np.testing.assert_array_equal(done[:, 0, :20], originals[:, :20])
