import math

import keras
import numpy as np
import pytest

from keras_pixelcnn import ReferenceSampler, bernoulli_nll, draw_noise, evaluate_nll, per_image_nll


def test_bernoulli_nll_matches_direct_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 5, 5, 1))
    x = (rng.random((4, 5, 5, 1)) > 0.5).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    direct = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1).sum(1)
    np.testing.assert_allclose(bernoulli_nll(x, logits), direct, rtol=1e-10)


def test_bernoulli_nll_is_stable_for_huge_logits():
    x = np.array([[1.0, 0.0, 1.0, 0.0]])
    logits = np.array([[200.0, -200.0, -200.0, 200.0]])
    np.testing.assert_allclose(bernoulli_nll(x, logits), [400.0])


def test_model_nll_matches_keras_bce(tiny_model):
    model = tiny_model()
    x = (np.random.default_rng(1).random((6, 8, 8, 1)) > 0.5).astype("float32")
    summary = evaluate_nll(model, x, batch_size=4)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)(x, model(x))
    assert math.isclose(summary["nats_per_pixel"], float(bce), rel_tol=1e-5)
    logits = np.asarray(model.predict_on_batch(x), "float64")
    per_image = (np.logaddexp(0, logits) - x * logits).reshape(6, -1).sum(axis=1)
    se = per_image.std(ddof=1) / math.sqrt(6)  # the standard error over the images
    expected = {
        "num_images": 6,
        "nats_per_image": per_image.mean(),
        "nats_per_image_se": se,
        "nats_per_pixel": per_image.mean() / 64,
        "nats_per_pixel_se": se / 64,
        "bits_per_dim": per_image.mean() / 64 / math.log(2),
        "bits_per_dim_se": se / 64 / math.log(2),
    }
    assert summary == pytest.approx(expected, rel=1e-5)


def test_nll_of_a_sample_equals_the_log_probs_it_was_drawn_with(tiny_model):
    """The sampler's per-pixel probabilities are the ones the NLL uses."""
    model = tiny_model(shape=(5, 5, 1))
    noise = draw_noise(3, (5, 5, 1), seed=4)
    x = ReferenceSampler(model).sample(noise)
    # Replay: probability each pixel was drawn with, from the partial image.
    logp = np.zeros(3)
    partial = np.zeros_like(x)
    for i in range(5):
        for j in range(5):
            l = keras.ops.convert_to_numpy(model(partial))[:, i, j, 0].astype("float64")
            p1 = 1 / (1 + np.exp(-l))
            logp += np.where(x[:, i, j, 0] == 1, np.log(p1), np.log(1 - p1))
            partial[:, i, j, 0] = x[:, i, j, 0]
    np.testing.assert_allclose(per_image_nll(model, x), -logp, rtol=1e-4)


def test_label_marginalized_nll_is_a_log_mean_exp_over_classes():
    from keras_pixelcnn import build_gated_pixelcnn
    from keras_pixelcnn.evaluation import evaluate_model, marginal_nll

    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(6, 6, 1), filters=8, num_layers=2, num_classes=3)
    x = (np.random.default_rng(0).random((5, 6, 6, 1)) > 0.5).astype("float32")
    per_class = np.stack([per_image_nll(model, x, np.full(5, c)) for c in range(3)], axis=1)
    direct = -np.log(np.mean(np.exp(-per_class), axis=1))
    np.testing.assert_allclose(marginal_nll(model, x, 3), direct, rtol=1e-10)
    assert np.all(marginal_nll(model, x, 3) <= per_class.min(axis=1) + math.log(3) + 1e-9)
    report = evaluate_model(model, x, np.array([0, 1, 2, 0, 1]))
    assert report["conditional"] and report["num_classes"] == 3
    assert report["nll_label_marginalized"]["num_images"] == 5
    assert math.isclose(
        report["nll"]["nats_per_image"],
        per_class[np.arange(5), [0, 1, 2, 0, 1]].mean(),
        rel_tol=1e-9,
    )


def test_default_batch_size_changes_no_nll(tiny_model):
    from keras_pixelcnn.evaluation.nll import default_batch_size

    assert default_batch_size() == 500
    model = tiny_model()
    x = (np.random.default_rng(2).random((503, 8, 8, 1)) > 0.5).astype("float32")
    # bug: images dropped or repeated at a batch boundary (503 = 500 + 3)
    np.testing.assert_allclose(
        per_image_nll(model, x), per_image_nll(model, x, batch_size=503), rtol=1e-5
    )


def test_a_short_last_batch_is_padded_to_one_shape_and_changes_no_nll():
    """One input shape per evaluation: a second shape would trace and compile
    the forward pass again (JAX, TensorFlow)."""
    from keras_pixelcnn import build_gated_pixelcnn

    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(6, 6, 1), filters=8, num_layers=2, num_classes=3)
    rng = np.random.default_rng(3)
    x = (rng.random((11, 6, 6, 1)) > 0.5).astype("float32")
    y = rng.integers(0, 3, 11)
    whole = per_image_nll(model, x, y, batch_size=11)
    shapes = []
    predict = model.predict_on_batch
    model.predict_on_batch = lambda inputs: (
        shapes.append((inputs[0].shape, inputs[1].shape)) or predict(inputs)
    )
    # bug: the padding rows' NLLs kept, or the labels not padded with the images
    np.testing.assert_allclose(per_image_nll(model, x, y, batch_size=4), whole, rtol=1e-5)
    assert shapes == [((4, 6, 6, 1), (4,))] * 3


def test_evaluation_reports_progress_over_every_pass():
    """`evaluate` showed nothing for minutes (bug). Progress counts the images
    of every forward pass: one pass for the NLL given the label and one per
    class for the marginalization (3 classes: 4 passes of 5 images, in
    batches of 2), rising to the total; the dynamic protocol one per draw."""
    from keras_pixelcnn import build_gated_pixelcnn
    from keras_pixelcnn.evaluation.nll import evaluate_dynamic, evaluate_model

    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(4, 4, 1), filters=4, num_layers=1, num_classes=3)
    x = (np.random.default_rng(2).random((5, 4, 4, 1)) > 0.5).astype("float32")
    calls = []
    evaluate_model(
        model, x, np.array([0, 1, 2, 0, 1]), batch_size=2, progress=lambda *a: calls.append(a)
    )
    per_pass = [2, 4, 5]
    assert calls == [(k * 5 + d, 20) for k in range(4) for d in per_pass]
    calls.clear()
    evaluate_dynamic(model, x, np.array([0, 1, 2, 0, 1]), draws=2, batch_size=5,
                     progress=lambda *a: calls.append(a))  # fmt: skip
    assert calls == [(5, 10), (10, 10)]
