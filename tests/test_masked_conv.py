import keras
import numpy as np
import pytest
from helpers import input_gradient

from keras_pixelcnn import MaskedConv2D, causal_mask


def test_mask_values_3x3():
    np.testing.assert_array_equal(causal_mask((3, 3), "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(causal_mask((3, 3), "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


def test_mask_values_rectangular_and_1x1():
    np.testing.assert_array_equal(causal_mask((3, 5), "A"), [[1] * 5, [1, 1, 0, 0, 0], [0] * 5])
    assert causal_mask((1, 1), "A").sum() == 0
    assert causal_mask((1, 1), "B").sum() == 1


def _dependency(layer, shape, i, j):
    x = np.random.default_rng(0).random((1, *shape)).astype("float32")
    g = input_gradient(lambda v: layer(v), x, (0, i, j, 0))
    return np.abs(g[0, :, :, 0]) > 0


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_causality_every_position(mask_type, k):
    """Output (i, j) depends on exactly the input pixels the mask allows:
    never on (i, j) for mask A, never on a later pixel, always on the left
    and upper neighbours inside the kernel."""
    h = w = 7
    keras.utils.set_random_seed(1)
    layer = MaskedConv2D(1, k, mask_type=mask_type, kernel_initializer="ones")
    mask = causal_mask((k, k), mask_type)
    for i in range(h):
        for j in range(w):
            dep = _dependency(layer, (h, w, 1), i, j)
            expected = np.zeros((h, w), bool)
            for di in range(-(k // 2), k // 2 + 1):
                for dj in range(-(k // 2), k // 2 + 1):
                    ii, jj = i + di, j + dj
                    if 0 <= ii < h and 0 <= jj < w and mask[di + k // 2, dj + k // 2]:
                        expected[ii, jj] = True
            np.testing.assert_array_equal(dep, expected, err_msg=f"at ({i}, {j})")
            later = np.arange(h * w).reshape(h, w) >= i * w + j
            assert not dep[later & ~(np.arange(h * w).reshape(h, w) == i * w + j)].any()
            assert dep[i, j] == (mask_type == "B")
            if k > 1 and j > 0:
                assert dep[i, j - 1], "left neighbour unseen"
            if k > 1 and i > 0:
                assert dep[i - 1, j], "upper neighbour unseen"


@pytest.mark.parametrize(
    "kernel, mask_type, dilation",
    [(5, "B", 1), (1, "B", 1), ((3, 5), "B", 1), ((3, 5), "A", 1), (3, "A", 2), (3, "B", 3)],
)  # 1: a matrix product on JAX with a CPU
def test_equals_conv2d_with_masked_kernel(kernel, mask_type, dilation):
    """The cropped computation equals a plain 'same' convolution (dilated
    where asked) with kernel * mask."""
    x = np.random.default_rng(2).random((2, 9, 9, 3)).astype("float32")
    layer = MaskedConv2D(5, kernel, mask_type, dilation_rate=dilation)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 9, 9, 5)
    size = (kernel, kernel) if isinstance(kernel, int) else kernel
    mask = causal_mask(size, mask_type)[:, :, None, None]
    masked = keras.ops.convert_to_numpy(layer.kernel) * mask
    ref = keras.ops.convert_to_numpy(
        keras.ops.conv(x, masked, padding="same", dilation_rate=dilation)
    )
    np.testing.assert_allclose(y, ref + keras.ops.convert_to_numpy(layer.bias), atol=1e-5)


def test_mask_is_not_a_weight_and_kernel_is_full_size():
    layer = MaskedConv2D(4, 7, "A")
    layer.build((None, 28, 28, 1))
    assert [tuple(w.shape) for w in layer.weights] == [(7, 7, 1, 4), (4,)]


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow", reason="TF's CPU conv has no channels_first kernel"
)
def test_channels_first_equals_channels_last():
    x = np.random.default_rng(4).random((2, 6, 6, 2)).astype("float32")
    last = MaskedConv2D(3, 3, "A")
    expected = keras.ops.convert_to_numpy(last(x))
    first = MaskedConv2D(3, 3, "A", data_format="channels_first")
    first.build((None, 2, 6, 6))
    first.set_weights(last.get_weights())
    got = keras.ops.convert_to_numpy(first(np.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_allclose(np.transpose(got, (0, 2, 3, 1)), expected, atol=1e-5)


def test_config_round_trip():
    layer = MaskedConv2D(8, (3, 5), mask_type="A", use_bias=False, name="m")
    config = layer.get_config()
    assert config["mask_type"] == "A" and config["kernel_size"] == (3, 5)
    clone = MaskedConv2D.from_config(config)
    assert clone.get_config() == config


def test_serialization_by_registered_name():
    layer = MaskedConv2D(8, 3, mask_type="A")
    data = keras.saving.serialize_keras_object(layer)
    assert data["registered_name"] == "keras_pixelcnn>MaskedConv2D"
    clone = keras.saving.deserialize_keras_object(data)
    assert isinstance(clone, MaskedConv2D) and clone.mask_type == "A"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask_type": "C"}, "mask_type='C'"),
        ({"kernel_size": 4}, "kernel_size=4"),
        ({"kernel_size": (3, 4)}, "kernel_size=(3, 4)"),
        ({"kernel_size": 0}, "kernel_size=0"),
        ({"kernel_size": "3"}, "kernel_size='3'"),
        ({"strides": 2}, "strides=2"),
        ({"padding": "valid"}, "padding='valid'"),
        ({"groups": 2}, "groups=2"),
        ({"filters": 0}, "filters=0"),
    ],
)
def test_bad_arguments_echo_the_value(kwargs, message):
    args = {"filters": 4, "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MaskedConv2D(**args)


def test_one_training_step_changes_only_visible_taps():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    layer = MaskedConv2D(2, 3, "A")
    model = keras.Model(inputs, layer(inputs))
    model.compile("sgd", "mse")
    before = keras.ops.convert_to_numpy(layer.kernel).copy()
    x = np.random.rand(4, 6, 6, 1).astype("float32")
    model.fit(x, np.random.rand(4, 6, 6, 2).astype("float32"), epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(layer.kernel)
    changed = np.abs(after - before).sum(axis=(2, 3)) > 0
    np.testing.assert_array_equal(changed, causal_mask((3, 3), "A").astype(bool))
