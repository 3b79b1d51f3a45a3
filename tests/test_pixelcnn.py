import keras
import numpy as np
import pytest
from helpers import input_gradient

from keras_pixelcnn import MaskedConv2D, build_pixelcnn


def test_reference_architecture():
    model = build_pixelcnn()
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 28, 28, 1)
    masked = [l for l in model.layers if isinstance(l, MaskedConv2D)]
    assert masked[0].mask_type == "A" and masked[0].kernel_size == (7, 7)
    assert masked[0].filters == 64
    assert all(l.mask_type == "B" for l in masked[1:])
    # 4 blocks x (1x1 64->32, 3x3 32->32, 1x1 32->64) + head 1x1 64->64 + 1x1 64->1
    assert [l.kernel_size for l in masked[1:4]] == [(1, 1), (3, 3), (1, 1)]
    assert len(masked) == 1 + 4 * 3 + 2
    expected = (
        (7 * 7 * 64 + 64)
        + 4 * (64 * 32 + 32 + 9 * 32 * 32 + 32 + 32 * 64 + 64)
        + (64 * 64 + 64 + 64 + 1)
    )
    assert model.count_params() == expected


def test_logits_of_batch_are_independent_per_image():
    model = build_pixelcnn(input_shape=(8, 8, 1), filters=8, num_residual_blocks=1)
    x = (np.random.rand(3, 8, 8, 1) > 0.5).astype("float32")
    y = keras.ops.convert_to_numpy(model(x))
    y0 = keras.ops.convert_to_numpy(model(x[:1]))
    np.testing.assert_allclose(y[:1], y0, atol=1e-5)


POSITIONS = [(0, 0), (0, 5), (0, 27), (1, 0), (13, 14), (27, 0), (27, 27), (20, 26)]


@pytest.fixture(scope="module")
def reference_model():
    keras.utils.set_random_seed(3)
    return build_pixelcnn()


@pytest.mark.parametrize("i, j", POSITIONS)
def test_pixelcnn_causality(reference_model, i, j):
    """Logit (i, j) of the whole reference model: zero gradient w.r.t. (i, j)
    and every later pixel; non-zero w.r.t. the left and upper neighbours."""
    x = (np.random.default_rng(i * 28 + j).random((1, 28, 28, 1)) > 0.5).astype("float32")
    g = np.abs(input_gradient(lambda v: reference_model(v), x, (0, i, j, 0))[0, :, :, 0])
    order = np.arange(28 * 28).reshape(28, 28)
    assert not g[order >= i * 28 + j].any(), "sees the current or a later pixel"
    neighbours = [(a, b) for a, b in ((i, j - 1), (i - 1, j)) if a >= 0 and b >= 0]
    assert [g[n] > 0 for n in neighbours] == [True] * len(neighbours)


def test_pixelcnn_has_a_blind_spot(reference_model):
    """Masked convolutions stacked in PixelCNN leave a blind spot: pixels up
    and to the right, inside the receptive field of a 7x7 + 4 3x3 stack, are
    never seen. This is why the Gated PixelCNN splits vertical/horizontal stacks."""
    i, j = 14, 10
    x = (np.random.default_rng(0).random((1, 28, 28, 1)) > 0.5).astype("float32")
    g = np.abs(input_gradient(lambda v: reference_model(v), x, (0, i, j, 0))[0, :, :, 0])
    # (i - 1, j + 7) is one row up, 7 columns right: inside the 7x7 + 4 x 3x3
    # receptive field (radius 3 + 4 = 7), yet unseen.
    assert g[i - 1, j + 3] > 0
    assert g[i - 1, j + 7] == 0
    assert g[i - 4, j + 7] == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (28, 28, 3)}, "input_shape"),
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"filters": 1}, "filters=1"),
        ({"num_residual_blocks": -1}, "num_residual_blocks=-1"),
        ({"input_kernel_size": 4}, "kernel_size=4"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_pixelcnn(**kwargs)
