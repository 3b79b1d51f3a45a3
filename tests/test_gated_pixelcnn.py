import keras
import numpy as np
import pytest
from helpers import bernoulli_nats_per_pixel64, input_gradient, run_python

from keras_pixelcnn import PixelCNNError, build_gated_pixelcnn, sample
from keras_pixelcnn.layers import GatedActivation, HorizontalStackConv2D, VerticalStackConv2D


def _model(num_classes=None, shape=(8, 8, 1), layers=6, seed=0):
    keras.utils.set_random_seed(seed)
    return build_gated_pixelcnn(
        input_shape=shape,
        filters=8,
        num_layers=layers,
        input_kernel_size=3,
        num_classes=num_classes,
    )


def _grad(model, x, label, i, j):
    if label is None:
        fn = lambda v: model(v)
    else:
        lab = keras.ops.convert_to_tensor(np.array([label], "int32"))
        fn = lambda v: model([v, lab])
    return np.abs(input_gradient(fn, x, (0, i, j, 0))[0, :, :, 0])


@pytest.mark.parametrize("num_classes", [None, 10])
def test_gated_causality_without_blind_spot(num_classes):
    """On an 8x8 image with 8 layers the receptive field covers the image:
    output (i, j) depends on every earlier pixel and on no later one
    (checked at the corners, the edges and inside)."""
    model = _model(num_classes, layers=8)
    x = (np.random.default_rng(0).random((1, 8, 8, 1)) > 0.5).astype("float32")
    order = np.arange(64).reshape(8, 8)
    positions = [(0, 1), (0, 7), (1, 0), (1, 7), (3, 3), (4, 0), (5, 7), (6, 5), (7, 0), (7, 7)]
    for i, j in positions:
        g = _grad(model, x, None if num_classes is None else 3, i, j)
        p = i * 8 + j
        assert not g[order >= p].any(), f"({i}, {j}) sees itself or a later pixel"
        assert (g[order < p] > 0).all(), (
            f"({i}, {j}) has a blind spot: {np.argwhere((g == 0) & (order < p))}"
        )


def test_receptive_field_grows_with_depth():
    """With 3 layers, (7, 7) sees 3 columns to its left in its row and a
    cone above, but not the far corner."""
    model = _model(layers=3)
    x = (np.random.default_rng(1).random((1, 8, 8, 1)) > 0.5).astype("float32")
    g = _grad(model, x, None, 7, 7)
    assert g[7, 4:7].all() and not g[7, :4].any()
    assert g[6, 4:].all() and not g[6, :4].any() and g[0, 0] == 0


def test_label_changes_logits():
    model = _model(10)
    x = (np.random.default_rng(0).random((2, 8, 8, 1)) > 0.5).astype("float32")
    a = keras.ops.convert_to_numpy(model([x, np.array([1, 1], "int32")]))
    b = keras.ops.convert_to_numpy(model([x, np.array([7, 7], "int32")]))
    assert np.abs(a - b).max() > 1e-4


def test_bad_labels():
    model = _model(10)
    with pytest.raises(PixelCNNError, match=r"labels must be integers in \[0, 10\)"):
        sample(model, 2, labels=[3, 10])
    with pytest.raises(PixelCNNError, match="pass labels"):
        sample(model, 2)
    with pytest.raises(PixelCNNError, match=r"labels must be integers in \[0, 10\)"):
        sample(model, 2, labels=[-1, 2])


def test_stack_convs_spend_no_flops_on_zero_taps():
    v = VerticalStackConv2D(4, 5)
    v.build((None, 8, 8, 2))
    assert tuple(v.kernel.shape) == (3, 5, 2, 4)
    v1 = VerticalStackConv2D(4, 5, first=True)
    v1.build((None, 8, 8, 2))
    assert tuple(v1.kernel.shape) == (2, 5, 2, 4)
    h = HorizontalStackConv2D(4, 5)
    h.build((None, 8, 8, 2))
    assert tuple(h.kernel.shape) == (1, 3, 2, 4)
    h1 = HorizontalStackConv2D(4, 5, first=True)
    h1.build((None, 8, 8, 2))
    assert tuple(h1.kernel.shape) == (1, 2, 2, 4)


@pytest.mark.parametrize("cls", [VerticalStackConv2D, HorizontalStackConv2D])
def test_stack_conv_config_round_trip_and_errors(cls):
    layer = cls(6, 5, first=True, name="s")
    config = layer.get_config()
    assert config["kernel_size"] == 5 and config["first"] is True
    assert cls.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="kernel_size=4"):
        cls(6, 4)
    with pytest.raises(ValueError, match="first='yes'"):
        cls(6, 3, first="yes")


def test_gated_activation():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(GatedActivation()(x))
    np.testing.assert_allclose(y, np.tanh(x[..., :2]) / (1 + np.exp(-x[..., 2:])), rtol=1e-5)
    with pytest.raises(ValueError, match="even number of channels"):
        GatedActivation()(np.zeros((1, 2, 2, 3), "float32"))


def test_conditional_keras_round_trip_in_subprocess(tmp_path):
    model = _model(10)
    model.save(tmp_path / "g.keras")
    x = (np.random.default_rng(0).random((3, 8, 8, 1)) > 0.5).astype("float32")
    y = np.array([0, 5, 9], "int32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "out.npy", keras.ops.convert_to_numpy(model([x, y])))
    code = f"""
import numpy as np, keras, keras_pixelcnn
m = keras.saving.load_model({str(tmp_path / "g.keras")!r})
out = keras.ops.convert_to_numpy(m([np.load({str(tmp_path / "x.npy")!r}), np.array([0, 5, 9], 'int32')]))
assert np.array_equal(out, np.load({str(tmp_path / "out.npy")!r}))
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_tiny_conditional_fit(fake_npz, tmp_path):
    from keras_pixelcnn import TrainConfig, load_mnist, train

    mnist = load_mnist(fake_npz, validation_size=16)
    config = TrainConfig(
        run_dir=str(tmp_path / "run"),
        model="gated",
        conditional=True,
        epochs=1,
        batch_size=16,
        filters=8,
        num_layers=2,
        num_samples=2,
    )
    metrics = train(config, mnist=mnist, verbose=0, print_fn=lambda _: None)
    assert metrics["conditional"]
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    expected = bernoulli_nats_per_pixel64(saved, mnist.test.images, mnist.test.labels)
    assert metrics["test_nll"]["nats_per_pixel"] == pytest.approx(expected, rel=1e-5)
    assert (tmp_path / "run" / "samples" / "epoch_001.png").exists()
    # the conditional grid has one row per class: 10 rows x 2 columns
    import matplotlib.image

    grid = matplotlib.image.imread(tmp_path / "run" / "samples" / "epoch_001.png")
    assert grid.shape[0] > 4 * grid.shape[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head_filters": 0}, "Received: head_filters=0"),
        ({"head_filters": -4}, "Received: head_filters=-4"),
        ({"filters": 0}, "Received: filters=0"),
        ({"num_layers": True}, "Received: num_layers=True"),
        ({"num_classes": 1}, "Received: num_classes=1"),
        ({"input_shape": (8, 8, 0)}, r"Received: input_shape=\(8, 8, 0\)"),
    ],
)
def test_bad_arguments_echo_the_value(kwargs, message):
    """head_filters=0 used to fall back to `filters` silently."""
    with pytest.raises(ValueError, match=message):
        build_gated_pixelcnn(**{"input_shape": (8, 8, 1), **kwargs})


def test_head_filters_sets_the_head_width():
    model = build_gated_pixelcnn(input_shape=(8, 8, 1), filters=8, num_layers=2, head_filters=5)
    assert model.get_layer("head_conv_1").filters == 5
    assert model.get_layer("skip_1").filters == 5
