"""`fit_inputs`: on TensorFlow the epoch's arrays as a `tf.data` pipeline of
the same batches in the same order, which trains to the same weights as the
arrays fed to `fit` directly."""

import keras
import numpy as np
import pytest

from keras_pixelcnn.training.input_pipeline import fit_inputs, validation_inputs

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the other backends get the arrays as they are",
)


def _arrays():
    images = np.arange(10 * 2 * 2 * 1, dtype="float32").reshape(10, 2, 2, 1)
    labels = (np.arange(10) * 7) % 10
    return images, labels


def test_batches_are_the_arrays_in_order_with_the_partial_last_batch():
    images, labels = _arrays()
    data = fit_inputs([images, labels], images * 2, 4)
    assert set(data) == {"x"}
    batches = list(data["x"].as_numpy_iterator())
    assert [len(y) for _, y in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x[0] for x, _ in batches]), images)
    np.testing.assert_array_equal(np.concatenate([x[1] for x, _ in batches]), labels)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), images * 2)


def test_validation_data_is_the_same_pipeline():
    images, _ = _arrays()
    data = validation_inputs(images, images, 3)
    assert set(data) == {"validation_data"}
    batches = list(data["validation_data"].as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), images)


def test_training_on_the_pipeline_gives_the_weights_of_the_arrays(tiny_model):
    rng = np.random.default_rng(0)
    x = (rng.random((40, 8, 8, 1)) < 0.3).astype("float32")
    weights = []
    for data in (dict(x=x, y=x, batch_size=16), fit_inputs(x, x, 16)):
        model = tiny_model()  # the same seed: the same initial weights
        model.compile(
            keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True)
        )
        model.fit(**data, epochs=2, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
