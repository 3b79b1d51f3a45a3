import math

import numpy as np
import pytest
from conftest import needs_mnist

from keras_pixelcnn.evaluation.sample_quality import classifier_score, frechet_distance


def test_classifier_score_bounds():
    k = 10
    confident_diverse = np.eye(k)[np.arange(100) % k]
    assert classifier_score(confident_diverse) == pytest.approx(k, rel=1e-6)
    all_the_same = np.tile(np.eye(k)[3], (50, 1))
    assert classifier_score(all_the_same) == pytest.approx(1.0, rel=1e-6)
    uncertain = np.full((50, k), 1.0 / k)
    assert classifier_score(uncertain) == pytest.approx(1.0, rel=1e-6)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    n = 200_000
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    sd_a, sd_b = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    a = mu_a + sd_a * rng.standard_normal((n, 3))
    b = mu_b + sd_b * rng.standard_normal((n, 3))
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((sd_a - sd_b) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, abs=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_is_stable_for_singular_covariances():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 2))
    a = np.concatenate([x, np.zeros((50, 3))], axis=1)  # rank 2 in 5 dims
    d = frechet_distance(a, a + 1.0)
    assert math.isfinite(d) and d == pytest.approx(5.0, abs=1e-6)


@needs_mnist
def test_real_digits_score_like_real_data_and_blank_images_do_not(mnist_npz):
    """The whole pipeline on known cases: real test digits passed off as
    samples must score like the real-data figures; blank or constant images
    must score badly."""
    from keras_pixelcnn.data import load_mnist
    from keras_pixelcnn.evaluation.classifier import load_classifier
    from keras_pixelcnn.evaluation.sample_quality import sample_quality

    mnist = load_mnist(mnist_npz)
    clf = load_classifier()
    test, reference = mnist.test.images[:2000], mnist.train.images[:500]
    real = sample_quality(
        clf, mnist.test.images[5000:5500], test, reference, labels=mnist.test.labels[5000:5500]
    )
    assert real["classifier_score"] > 9.0
    assert abs(real["classifier_score"] - real["classifier_score_real"]) < 0.5
    assert real["frechet_distance"] < 2 * real["frechet_distance_real_floor"] + 1
    assert real["label_accuracy"] > 0.97
    blank = sample_quality(
        clf, np.zeros((500, 28, 28, 1), "float32"), test, reference, labels=mnist.test.labels[:500]
    )
    assert blank["classifier_score"] < 1.5  # one class for every image
    assert blank["frechet_distance"] > 10 * real["frechet_distance_real_floor"]
    assert blank["label_accuracy"] < 0.3


def test_classifier_predictions_report_progress_over_every_image():
    """`predict` batches through Keras's `predict` and reports after each
    batch; `sample_quality` reports the samples, test and reference images
    as one task. The probabilities are the softmax of the logits, whatever
    the batch size."""
    import keras

    from keras_pixelcnn.evaluation.classifier import FEATURES_LAYER, load_classifier, predict
    from keras_pixelcnn.evaluation.sample_quality import sample_quality

    clf = load_classifier()
    images = (np.random.default_rng(0).random((5, 28, 28, 1)) > 0.7).astype("float32")
    calls = []
    probs, feats = predict(clf, images, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    logits = np.asarray(clf.predict_on_batch(images), "float64")
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    head = keras.Model(clf.input, clf.get_layer(FEATURES_LAYER).output)
    # batches of 2 against one of 5: the backends' kernels may round differently
    np.testing.assert_allclose(feats, head.predict_on_batch(images), rtol=1e-4, atol=1e-5)

    calls.clear()
    sample_quality(clf, images[:3], images, images[:2], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 10), (8, 10), (10, 10)]
