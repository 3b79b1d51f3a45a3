"""Whole-model causality at every position of a small image.

For every output pixel p, the gradient with respect to every input pixel at
or after p in raster order must be exactly zero, for several random inputs
and for random weights as well as for positive weights that keep every unit
alive (so a zero cannot hide behind a dead ReLU or a saturated gate). The
Gated PixelCNN must also see every earlier pixel of its receptive field: no
blind spot.
"""

import keras
import numpy as np
import pytest
from helpers import input_gradient
from keras import ops

from keras_pixelcnn import build_gated_pixelcnn, build_pixelcnn

H = W = 7


def _jacobian_rows(model, x, labels=None):
    """|d out[p] / d x| for every position p of one image `x` (h, w): an
    array (h*w, h, w). The batch holds h*w copies; copy b's gradient comes
    only from its own output at position b (images are independent)."""
    n = H * W
    batch = np.repeat(x[None, :, :, None], n, axis=0).astype("float32")
    pick = np.zeros((n, H, W, 1), "float32")
    pick[np.arange(n), np.arange(n) // W, np.arange(n) % W, 0] = 1.0
    pick = ops.convert_to_tensor(pick)

    def total(v):
        out = model(
            v if labels is None else [v, ops.convert_to_tensor(np.full((n,), labels, "int32"))]
        )
        return ops.sum(ops.cast(out, "float32") * pick)

    return np.abs(input_gradient(total, batch, ())[..., 0])


def _future(p):
    mask = np.zeros(H * W, bool)
    mask[p:] = True
    return mask.reshape(H, W)


def _positive_weights(model, value=0.02):
    model.set_weights(
        [np.full(w.shape, value if w.ndim > 1 else 0.0, w.dtype) for w in model.get_weights()]
    )


def _pixelcnn():
    keras.utils.set_random_seed(1)
    return build_pixelcnn(
        input_shape=(H, W, 1), filters=4, num_residual_blocks=2, input_kernel_size=3
    )


def _gated(num_classes=None):
    keras.utils.set_random_seed(2)
    return build_gated_pixelcnn(
        input_shape=(H, W, 1),
        filters=4,
        num_layers=3,
        kernel_size=3,
        input_kernel_size=3,
        num_classes=num_classes,
    )


def _check_no_future(model, labels=None):
    """Checks three inputs; returns the Jacobians of the two strictly
    positive ones (where every unit of a positive-weight model is alive)."""
    rng = np.random.default_rng(0)
    binary = (rng.random((H, W)) > 0.5).astype("float32")
    positive = []
    for x in (rng.random((H, W)) + 0.01, binary, np.ones((H, W))):
        rows = _jacobian_rows(model, x, labels)
        for p in range(H * W):
            assert not rows[p][_future(p)].any(), f"output {divmod(p, W)} sees a later input"
        if x is not binary:
            positive.append(rows)
    return positive


def test_pixelcnn_never_sees_the_future():
    """Random weights here; the live-units test checks positive ones."""
    _check_no_future(_pixelcnn())


def test_pixelcnn_with_live_units_sees_its_left_and_upper_neighbours():
    model = _pixelcnn()
    _positive_weights(model)
    for rows in _check_no_future(model):
        left = [rows[p][divmod(p, W)[0], divmod(p, W)[1] - 1] for p in range(H * W) if p % W]
        up = [rows[p][divmod(p, W)[0] - 1, divmod(p, W)[1]] for p in range(W, H * W)]
        assert len(left) == H * (W - 1) and min(left) > 0
        assert len(up) == (H - 1) * W and min(up) > 0


@pytest.mark.parametrize("num_classes", [None, 10])
def test_gated_never_sees_the_future(num_classes):
    """Random weights here; the live-units test checks positive ones."""
    _check_no_future(_gated(num_classes), labels=None if num_classes is None else 3)


@pytest.mark.parametrize("num_classes", [None, 10])
def test_gated_with_live_units_sees_its_whole_past(num_classes):
    model = _gated(num_classes)
    _positive_weights(model)
    jacobians = _check_no_future(model, labels=None if num_classes is None else 3)
    reach = 1 + 2 * 1  # first layer k0 // 2, then k // 2 per later layer
    for rows, p in ((rows, p) for rows in jacobians for p in range(H * W)):
        i, j = divmod(p, W)
        expected = np.zeros((H, W), bool)
        expected[max(i - reach, 0) : i, max(j - reach, 0) : j + reach + 1] = True  # rows above
        expected[i, max(j - reach, 0) : j] = True  # the current row, left of j
        seen = rows[p] > 0
        assert np.array_equal(seen, expected), (
            f"output {(i, j)}: blind spot at {np.argwhere(expected & ~seen).tolist()}, "
            f"unexpected at {np.argwhere(seen & ~expected).tolist()}"
        )


def test_measured_receptive_field_shows_the_blind_spot_and_its_absence():
    """contract.receptive_field (what `train` prints), with weights that keep
    every unit alive: the gated model sees exactly its rectangle of the past
    at the centre; the PixelCNN sees only the past, and misses part of the
    same rectangle (its blind spot)."""
    from keras_pixelcnn.models.contract import receptive_field

    i, j = H // 2, W // 2
    past = ~_future(i * W + j)
    gated_model, pixelcnn_model = _gated(10), _pixelcnn()
    for model in (gated_model, pixelcnn_model):  # every unit alive: the measure is exact
        _positive_weights(model)
    gated = receptive_field(gated_model)
    expected = np.zeros((H, W), bool)
    expected[i - 3 : i, j - 3 : j + 4] = True
    expected[i, j - 3 : j] = True
    assert np.array_equal(gated, expected)
    pixelcnn = receptive_field(pixelcnn_model)
    assert not (pixelcnn & ~past).any()
    assert pixelcnn[i, j - 1] and pixelcnn[i - 1, j]
    assert (expected & ~pixelcnn).any()  # the blind spot, up and to the right
    # what `train` prints: the pixels before the centre alone, with the same answer
    # (bug it catches: an off-by-one in the raised pixels, or a count of the future)
    for model, full in ((gated_model, gated), (pixelcnn_model, pixelcnn)):
        assert np.array_equal(receptive_field(model, past_only=True), full & past)
    assert receptive_field(pixelcnn_model, past_only=True)[i, j - 1]  # the last pixel raised
