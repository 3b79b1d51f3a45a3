"""run_layer_test-style checks for every registered layer: a config round
trip, the output shape, a mixed_bfloat16 forward, one training step and a
.keras save/load round trip; and layer-level causality of the stack convs."""

import keras
import numpy as np
import pytest
from helpers import input_gradient

from keras_pixelcnn import (
    GatedActivation,
    HorizontalStackConv2D,
    MaskedConv2D,
    ReferenceSampler,
    VerticalStackConv2D,
    build_gated_pixelcnn,
    build_pixelcnn,
    draw_noise,
)
from keras_pixelcnn import layers as L
from keras_pixelcnn.sampling.cached import CachedSampler


def _output_distribution():
    from keras_pixelcnn.likelihoods import DiscretizedLogisticMixture

    return L.OutputDistribution(DiscretizedLogisticMixture(2), name="layer")


# (id, make, input shape, output shape): every registered layer (the test
# below checks the list against Keras's registry)
LAYERS = [
    ("masked-A", lambda: MaskedConv2D(6, 5, mask_type="A", name="layer"), (8, 8, 1), (8, 8, 6)),
    ("masked-B", lambda: MaskedConv2D(6, (3, 5), mask_type="B", name="layer"), (8, 8, 3), (8, 8, 6)),
    ("vertical", lambda: VerticalStackConv2D(6, 3, name="layer"), (8, 8, 2), (8, 8, 6)),
    ("vertical-first", lambda: VerticalStackConv2D(6, 5, first=True, name="layer"), (8, 8, 1), (8, 8, 6)),
    ("horizontal", lambda: HorizontalStackConv2D(6, 3, name="layer"), (8, 8, 2), (8, 8, 6)),
    ("horizontal-first", lambda: HorizontalStackConv2D(6, 5, first=True, name="layer"), (8, 8, 1), (8, 8, 6)),
    ("gate", lambda: GatedActivation(name="layer"), (8, 8, 8), (8, 8, 4)),
    ("sigmoid-gate", lambda: L.SigmoidGate(name="layer"), (8, 8, 8), (8, 8, 4)),
    ("concat-elu", lambda: L.ConcatELU(name="layer"), (8, 8, 3), (8, 8, 6)),
    ("down-shifted", lambda: L.DownShiftedConv2D(6, (2, 3), name="layer"), (8, 8, 2), (8, 8, 6)),
    ("down-shifted-strided", lambda: L.DownShiftedConv2D(6, (2, 3), strides=2, name="layer"), (8, 8, 2), (4, 4, 6)),
    ("down-right-shifted", lambda: L.DownRightShiftedConv2D(6, (2, 2), name="layer"), (8, 8, 2), (8, 8, 6)),
    ("down-shifted-transpose", lambda: L.DownShiftedConv2DTranspose(6, (2, 3), name="layer"), (4, 4, 2), (8, 8, 6)),
    ("down-right-shifted-transpose", lambda: L.DownRightShiftedConv2DTranspose(6, (2, 2), name="layer"), (4, 4, 2), (8, 8, 6)),
    ("down-shift", lambda: L.DownShift(name="layer"), (8, 8, 3), (8, 8, 3)),
    ("right-shift", lambda: L.RightShift(name="layer"), (8, 8, 3), (8, 8, 3)),
    ("border-indicator", lambda: L.BorderIndicator(name="layer"), (8, 8, 3), (8, 8, 4)),
    ("output-distribution", _output_distribution, (8, 8, 6), (8, 8, 6)),
]  # fmt: skip
IDS = [layer[0] for layer in LAYERS]
WEIGHTLESS = {
    "gate", "sigmoid-gate", "concat-elu", "down-shift", "right-shift", "border-indicator",
    "output-distribution",
}  # fmt: skip


def test_every_registered_layer_is_tested():
    registered = {
        name.split(">", 1)[1]
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith("keras_pixelcnn>") and issubclass(cls, keras.layers.Layer)
    }
    tested = {type(make()).__name__ for _, make, _, _ in LAYERS}
    assert len(registered) == 14 and tested == registered


def _np(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _x(shape, seed=0):
    return np.random.default_rng(seed).random((2, *shape)).astype("float32")


@pytest.mark.parametrize("name, make, cin, cout", LAYERS, ids=IDS)
def test_config_round_trip_and_shape(name, make, cin, cout):
    layer = make()
    out = layer(_x(cin))
    assert tuple(out.shape) == (2, *cout)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(_x(cin))
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(_np(clone(_x(cin, 1))), _np(layer(_x(cin, 1))), atol=1e-6)


@pytest.mark.parametrize("name, make, cin, cout", LAYERS, ids=IDS)
def test_mixed_bfloat16_forward(name, make, cin, cout):
    reference = make()
    expected = _np(reference(_x(cin)))
    layer = make()
    layer.dtype_policy = keras.DTypePolicy("mixed_bfloat16")  # before build
    out = layer(_x(cin))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert all(w.dtype == "float32" for w in layer.weights)
    layer.set_weights(reference.get_weights())
    got = _np(keras.ops.cast(layer(_x(cin)), "float32"))
    np.testing.assert_allclose(got, expected, atol=0.05, rtol=0.05)


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
@pytest.mark.parametrize("name, make, cin, cout", LAYERS, ids=IDS)
def test_one_training_step_and_keras_round_trip(name, make, cin, cout, tmp_path):
    inputs = keras.Input(cin)
    model = keras.Model(inputs, make()(inputs))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(_x(cin), np.ones((2, *cout), "float32"), epochs=1, batch_size=2, verbose=0)
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert (len(before) == 0) == (name in WEIGHTLESS)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))  # every weight trains
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # registered: no custom_objects
    assert type(loaded.get_layer("layer")) is type(model.get_layer("layer"))
    np.testing.assert_allclose(
        loaded.predict(_x(cin, 2), verbose=0), model.predict(_x(cin, 2), verbose=0), atol=1e-6
    )


def _visible(layer, i, j, size=7):
    x = np.random.default_rng(3).random((1, size, size, 1)).astype("float32") + 0.1
    g = input_gradient(lambda v: layer(v), x, (0, i, j, 0))
    return np.abs(g[0, :, :, 0]) > 0


@pytest.mark.parametrize("first", [False, True])
@pytest.mark.parametrize("k", [3, 5])
def test_vertical_stack_sees_exactly_the_rows_above(first, k):
    layer = VerticalStackConv2D(1, k, first=first, kernel_initializer="ones")
    for i in range(7):
        for j in range(7):
            expected = np.zeros((7, 7), bool)
            last = i - 1 if first else i
            expected[max(i - k // 2, 0) : last + 1, max(j - k // 2, 0) : j + k // 2 + 1] = True
            assert np.array_equal(_visible(layer, i, j), expected), (i, j)


@pytest.mark.parametrize("first", [False, True])
@pytest.mark.parametrize("k", [3, 5])
def test_horizontal_stack_sees_exactly_its_row_to_the_left(first, k):
    layer = HorizontalStackConv2D(1, k, first=first, kernel_initializer="ones")
    for i in range(7):
        for j in range(7):
            expected = np.zeros((7, 7), bool)
            last = j - 1 if first else j
            expected[i, max(j - k // 2, 0) : last + 1] = True
            assert np.array_equal(_visible(layer, i, j), expected), (i, j)


@pytest.mark.parametrize("family", ["pixelcnn", "gated-conditional"])
def test_fast_sampler_equals_reference_under_mixed_bfloat16(family):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(4)
        if family == "pixelcnn":
            model = build_pixelcnn(
                input_shape=(7, 7, 1), filters=8, num_residual_blocks=1, input_kernel_size=5
            )
            labels = None
        else:
            model = build_gated_pixelcnn(
                input_shape=(7, 7, 1), filters=8, num_layers=3, num_classes=10
            )
            labels = np.arange(5) % 10
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer(index=1).compute_dtype == "bfloat16"
    noise = draw_noise(5, (7, 7, 1), seed=9)
    ref = ReferenceSampler(model).sample(noise, labels=labels)
    fast = CachedSampler(model).sample(noise, labels=labels)
    np.testing.assert_array_equal(fast, ref)
    assert 0 < ref.mean() < 1
