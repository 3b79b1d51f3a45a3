import numpy as np
import pytest

from keras_pixelcnn import PixelCNNError, build_gated_pixelcnn
from keras_pixelcnn.sampling.completion import complete, occlude


def test_completion_keeps_the_known_rows_and_varies_the_rest(tiny_model):
    model = tiny_model()
    rng = np.random.default_rng(0)
    images = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    out = complete(model, images, rows=3, num_completions=4, seed=1)
    assert out.shape == (3, 4, 8, 8, 1)
    np.testing.assert_array_equal(out[:, :, :3], np.repeat(images[:, None, :3], 4, axis=1))
    assert set(np.unique(out)) <= {0.0, 1.0}
    # different noise per completion: not all completions of a digit agree
    assert any(len({c.tobytes() for c in out[k]}) > 1 for k in range(3))


def test_fast_and_reference_completions_agree(tiny_model):
    model = tiny_model()
    images = (np.random.default_rng(2).random((2, 8, 8, 1)) > 0.5).astype("float32")
    fast = complete(model, images, rows=5, num_completions=2, seed=3, sampler="fast")
    ref = complete(model, images, rows=5, num_completions=2, seed=3, sampler="reference")
    np.testing.assert_array_equal(fast, ref)


def test_conditional_completion_uses_the_labels():
    """Each completion is the reference sampler's, given its image's label
    (repeated per completion, not tiled), and the labels change the pixels."""
    import keras

    from keras_pixelcnn.sampling import ReferenceSampler, draw_noise

    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(6, 6, 1), filters=8, num_layers=2, num_classes=10)
    embedding = model.get_layer("label_embedding")
    table = np.zeros(embedding.get_weights()[0].shape, "float32")
    table[1], table[4] = 3.0, -3.0  # labels 1 and 4 pull the logits apart
    embedding.set_weights([table])
    images = np.zeros((2, 6, 6, 1), "float32")
    images[1, :2] = 1.0
    out = complete(model, images, rows=2, num_completions=3, labels=[1, 4], seed=5)
    expected = ReferenceSampler(model).sample(
        draw_noise(6, (6, 6, 1), 5),
        labels=np.array([1, 1, 1, 4, 4, 4]),
        initial=np.repeat(images, 3, axis=0),
        start=2 * 6,
    )
    np.testing.assert_array_equal(out.reshape(6, 6, 6, 1), expected)
    swapped = complete(model, images, rows=2, num_completions=3, labels=[4, 1], seed=5)
    assert not np.array_equal(out, swapped)
    with pytest.raises(PixelCNNError, match="pass labels"):
        complete(model, images, rows=2)


@pytest.mark.parametrize("rows", [0, 8, -1, 2.5])
def test_bad_rows(tiny_model, rows):
    with pytest.raises(PixelCNNError, match="rows must be an integer in \\[1, 7\\]"):
        complete(tiny_model(), np.zeros((1, 8, 8, 1)), rows=rows)


def test_shape_mismatch(tiny_model):
    with pytest.raises(PixelCNNError, match="do not match the model's input shape"):
        complete(tiny_model(), np.zeros((1, 28, 28, 1)), rows=3)


def test_occlude():
    x = np.ones((1, 4, 4, 1))
    y = occlude(x, 2, fill=0.5)
    assert y[0, :2].min() == 1 and np.all(y[0, 2:] == 0.5) and x.min() == 1
