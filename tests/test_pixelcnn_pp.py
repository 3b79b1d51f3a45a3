"""PixelCNN++: causal at every position through the down- and up-sampling
graph with no blind spot, layer checks, save/load, the multi-scale cached
sampler against the reference, training."""

import functools
import os

import keras
import numpy as np
import pytest
from helpers import input_gradient
from keras import ops

from keras_pixelcnn import build_pixelcnn_pp
from keras_pixelcnn.layers import (
    DownRightShiftedConv2D,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
)
from keras_pixelcnn.likelihoods import Bernoulli, DiscretizedLogisticMixture
from keras_pixelcnn.models.contract import likelihood, noise_shape
from keras_pixelcnn.sampling import draw_noise, make_sampler
from keras_pixelcnn.sampling.cached import CachedSampler
from keras_pixelcnn.sampling.reference import ReferenceSampler

S = 8  # the smallest size with all three scales: 8 -> 4 -> 2


def _model(num_classes=None, lik=None, seed=0):
    keras.utils.set_random_seed(seed)
    return build_pixelcnn_pp(
        (S, S, 1),
        filters=4,
        num_resnets=1,
        dropout=0.0,
        num_classes=num_classes,
        likelihood=lik or DiscretizedLogisticMixture(2),
    )


@functools.cache
def _mixture_model():
    """`_model()` with a 2-component mixture, built once: its samplers and
    reference images are compiled and drawn once for the tests that share it."""
    return _model(lik=DiscretizedLogisticMixture(2))


@functools.cache
def _mixture_reference(seed, n=2):
    model = _mixture_model()
    noise = draw_noise(n, noise_shape(model), seed=seed)
    return noise, ReferenceSampler(model).sample(noise)


def _jacobians(model, x, label=None):
    """|d out[p] / d x| for every position p (all output channels): (S*S, S, S)."""
    n = S * S
    batch = np.repeat(x[None, :, :, None], n, axis=0).astype("float32")
    pick = np.zeros((n, S, S, 1), "float32")
    pick[np.arange(n), np.arange(n) // S, np.arange(n) % S, 0] = 1.0
    pick = ops.convert_to_tensor(pick)
    labels = None if label is None else ops.convert_to_tensor(np.full((n,), label, "int32"))

    def total(v):
        out = model(v if labels is None else [v, labels])
        return ops.sum(ops.cast(out, "float32") * pick)

    return np.abs(input_gradient(total, batch, ())[..., 0])


@pytest.mark.parametrize("num_classes", [None, 10])
def test_every_position_sees_exactly_its_past(num_classes):
    model = _model(num_classes)
    rng = np.random.default_rng(0)
    seen = np.zeros((S * S, S, S), bool)
    for x in (rng.integers(0, 256, (S, S)), np.full((S, S), 255), rng.integers(0, 2, (S, S))):
        rows = _jacobians(model, x.astype("float32"), label=3 if num_classes else None)
        seen |= rows > 0
    past = np.tril(np.ones((S * S, S * S), bool), k=-1).reshape(S * S, S, S)
    for p in range(S * S):
        i, j = divmod(p, S)
        # bug: a transposed convolution or the long skips leaking a later row
        assert not seen[p][~past[p]].any(), f"output {(i, j)} sees its pixel or later"
        # bug: a blind spot (the PixelCNN's misses the rows above, up and
        # right): the two rows above within 2 columns either side and the 2
        # pixels to the left must all count (a tiny model's field is finite)
        near = np.zeros((S, S), bool)
        near[max(i - 2, 0) : i, max(j - 2, 0) : j + 3] = True
        near[i, max(j - 2, 0) : j] = True
        assert seen[p][near].all(), f"output {(i, j)} misses nearby earlier pixels"
    assert seen[S * S - 1][past[S * S - 1]].mean() > 0.9  # the last pixel sees nearly all


def test_shifted_convolutions_reach_only_up_and_left():
    x = np.zeros((1, 6, 6, 1), "float32")
    x[0, 2, 3, 0] = 1.0  # one lit pixel
    for layer, rows, cols in (
        (DownShiftedConv2D(1, (2, 3), kernel_initializer="ones"), {2, 3}, {2, 3, 4}),
        (DownRightShiftedConv2D(1, (2, 2), kernel_initializer="ones"), {2, 3}, {3, 4}),
    ):
        out = ops.convert_to_numpy(layer(x))[0, :, :, 0]
        lit = {tuple(p) for p in np.argwhere(out != 0)}
        assert lit == {(r, c) for r in rows for c in cols}, (type(layer).__name__, lit)
    up = DownShiftedConv2DTranspose(1, (2, 3), kernel_initializer="ones")
    out = ops.convert_to_numpy(up(np.ones((1, 3, 3, 1), "float32")))
    assert out.shape == (1, 6, 6, 1)
    with pytest.raises(ValueError, match="odd kernel width"):
        DownShiftedConv2D(4, (2, 2))


def test_arguments_are_checked_and_the_model_round_trips(tmp_path):
    with pytest.raises(ValueError, match="divisible by 4. Received: input_shape=\\(10, 10, 1\\)"):
        build_pixelcnn_pp((10, 10, 1))
    with pytest.raises(ValueError, match="Received: dropout=1.5"):
        build_pixelcnn_pp(dropout=1.5)
    with pytest.raises(ValueError, match="Received: num_resnets=0"):
        build_pixelcnn_pp(num_resnets=0)
    model = _model(num_classes=10)
    assert model.output_shape == (None, S, S, 6)
    path = tmp_path / "pp.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(1).integers(0, 256, (3, S, S, 1)).astype("float32")
    inputs = [x, np.array([0, 4, 9], "int32")]
    np.testing.assert_array_equal(model.predict_on_batch(inputs), again.predict_on_batch(inputs))
    assert likelihood(again) == DiscretizedLogisticMixture(2)


@pytest.mark.parametrize(
    "lik, num_classes",
    [(DiscretizedLogisticMixture(2), None), (Bernoulli(), 10), (DiscretizedLogisticMixture(3), 10)],
)
def test_fast_multiscale_sampler_draws_the_reference_images(lik, num_classes):
    shared = num_classes is None and lik == DiscretizedLogisticMixture(2)
    model = _mixture_model() if shared else _model(num_classes, lik=lik)
    # 2 images: the batch size of `_mixture_reference`, so that the shared
    # model's sampler is compiled once for this test and the ones below
    noise = draw_noise(2, noise_shape(model), seed=1)
    labels = None if num_classes is None else np.array([1, 9])
    fast = make_sampler(model, "fast")
    images = fast.sample(noise, labels=labels)
    # bug: a scale's position computed before its inputs, a shift not folded, a wrong tap
    np.testing.assert_array_equal(images, ReferenceSampler(model).sample(noise, labels=labels))
    values = set(np.unique(images))
    assert values <= set(range(lik.levels)) and len(values) > 1
    # completion: the known pixels kept, the rest as the reference draws them
    initial = np.full((2, S, S, 1), lik.levels - 1, "float32")
    done = fast.sample(noise, labels=labels, initial=initial, start=19)
    np.testing.assert_array_equal(done.reshape(2, -1)[:, :19], lik.levels - 1)
    expected = ReferenceSampler(model).sample(noise, labels=labels, initial=initial, start=19)
    np.testing.assert_array_equal(done, expected)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="reads the parameters out of an eager run of the sampler (TensorFlow's eager loops)",
)
def test_fast_multiscale_parameters_match_a_forward_pass(monkeypatch):
    """Every parameter the sampler drew a pixel with agrees (1e-4) with a
    full forward pass on the finished images (causality makes those the
    parameters of each pixel)."""
    # run eagerly, the default unrolling executes fewer ops per pixel than 1 x 1
    monkeypatch.delenv("KERAS_PIXELCNN_UNROLL", raising=False)
    model = _model(lik=DiscretizedLogisticMixture(2))
    fast = CachedSampler(model)
    recorded = []
    inner = fast.loop.likelihood

    class Recording:
        noise_channels, levels = inner.noise_channels, inner.levels
        channels, sequential_channels = inner.channels, inner.sequential_channels

        def sample(self, params, noise):
            recorded.append(ops.convert_to_numpy(params)[:, 0, 0])
            return inner.sample(params, noise)

    fast.loop.likelihood = Recording()
    fast._fill = fast.loop.fill_rows  # eager: the loops run in Python
    noise = draw_noise(2, noise_shape(model), seed=3)
    images = fast.sample(noise)
    params = np.stack(recorded, 1)  # (batch, pixels, num_params), raster order
    forward = ops.convert_to_numpy(model(images)).reshape(2, S * S, -1)
    np.testing.assert_allclose(params, forward, atol=1e-4)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="training plumbing; the other backends run the model, sampler and NLL tests",
)
@pytest.mark.slow
def test_training_pixelcnn_pp_on_256_levels(tmp_path):
    from keras_pixelcnn import TrainConfig, train
    from keras_pixelcnn.data import MNIST, Split

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, S, S, 1)).astype("float32")  # S x S: sampling stays cheap
    y = rng.integers(0, 10, 40).astype("int32")
    mnist = MNIST(
        Split(x[:24], y[:24]), Split(x[24:32], y[24:32]), Split(x[32:], y[32:]), levels=256
    )

    config = TrainConfig(
        run_dir=str(tmp_path / "run"),
        model="pixelcnn_pp",
        levels=256,
        mixtures=2,
        epochs=1,
        filters=4,
        num_residual_blocks=1,
        batch_size=8,  # 24 images: 3 full batches (a partial one would retrace the step)
        num_samples=0,  # no epoch grid (the samplers are tested above)
        conditional=True,
    )
    metrics = train(config, mnist=mnist, verbose=0, print_fn=lambda line: None)
    model = keras.saving.load_model(tmp_path / "run/model.keras")
    from test_likelihoods import mixture_bits_per_dim64

    expected = mixture_bits_per_dim64(model, x[32:], y[32:], k=2)  # given the true labels
    assert metrics["test_nll"]["bits_per_dim"] == pytest.approx(expected, rel=1e-5)
    assert model.name == "pixelcnn_pp" and len(model.inputs) == 2
    assert not (tmp_path / "run/samples").exists()


def test_multiscale_sampler_refuses_non_causal_and_unknown_layers():
    from keras import layers

    from keras_pixelcnn.errors import PixelCNNError
    from keras_pixelcnn.layers import BorderIndicator, RightShift
    from keras_pixelcnn.layers.output_distribution import OutputDistribution

    lik = DiscretizedLogisticMixture(2)

    def graph(middle):
        image = keras.Input((S, S, 1))
        x = BorderIndicator()(layers.Rescaling(1 / 127.5, offset=-1.0)(image))
        x = RightShift()(DownRightShiftedConv2D(4, (2, 1))(x))  # sees strictly earlier pixels
        x = middle(x)
        return keras.Model(image, OutputDistribution(lik)(layers.Conv2D(6, 1)(x)))

    # a down-shifted 2x3 convolution of a pixel tensor sees the next pixel of its row
    leaky = graph(lambda x: DownShiftedConv2D(4, (2, 3), name="leaky")(x))
    with pytest.raises(PixelCNNError, match="layer leaky sees later pixels"):
        CachedSampler(leaky)
    pooled = graph(lambda x: layers.MaxPooling2D(1, name="pool")(x))
    with pytest.raises(PixelCNNError, match="does not support layer 'pool'"):
        CachedSampler(pooled)
    fine = graph(lambda x: DownRightShiftedConv2D(4, (2, 2))(x))
    noise = draw_noise(2, noise_shape(fine), seed=0)
    np.testing.assert_array_equal(
        CachedSampler(fine).sample(noise), ReferenceSampler(fine).sample(noise)
    )


@functools.cache
def _default_sampler():
    """`_mixture_model()`'s cached sampler with the default unrolling users
    get (4 rows x 2 pixels), compiled once for the tests that share it."""
    saved = os.environ.pop("KERAS_PIXELCNN_UNROLL", None)
    try:
        return CachedSampler(_mixture_model())
    finally:
        if saved is not None:
            os.environ["KERAS_PIXELCNN_UNROLL"] = saved


@pytest.mark.parametrize("unroll, period", [(None, 4), ("2x2", 2)])
def test_multiscale_sampler_unrolling_changes_no_image(unroll, period, monkeypatch):
    """The other tests sample with the loops unrolled over 1 row x 1 pixel
    (tests/conftest.py), which computes every scale at every pixel. The
    default unrolls 4 rows x 2 pixels and recomputes the scale-4 tensors at
    both pixels; 2 x 2 recomputes them on two rows too (with a lagging
    strided reader) while the scale-2 ones are computed once per position,
    the case a 4 x 4 unrolling would give the scale-4 ones (the same code
    path, scale-independent)."""
    noise, expected = _mixture_reference(seed=4)
    if unroll is None:  # the default users get
        sampler = _default_sampler()
    else:
        monkeypatch.setenv("KERAS_PIXELCNN_UNROLL", unroll)
        sampler = CachedSampler(_mixture_model())
    assert sampler.rows_per_step == period
    # bug: a scale computed on the wrong row or column phase, a cache moved
    # down at the wrong row, a lagging reader's row offset
    np.testing.assert_array_equal(sampler.sample(noise), expected)


def test_multiscale_sampler_calls_stop_between_row_periods(monkeypatch):
    noise, whole = _mixture_reference(seed=4)
    sampler = _default_sampler()
    monkeypatch.setattr(sampler, "progress_interval", 0.0)  # one row period per call
    calls = []
    chunked = sampler.sample(noise, progress=lambda done, total: calls.append(done))
    # bug: a call boundary inside a row period, or a period skipped or sampled twice
    np.testing.assert_array_equal(chunked, whole)
    assert sampler.rows_per_step == 4  # 4 rows per iteration of the row loop
    assert calls == [S * r for r in range(4, S + 1, 4)]
    # the caches are rings of the rows still read (a 2-row kernel's row above
    # and the current row; no reader lags at 4 rows per period), not whole maps
    assert max(sampler.loop.slots.values()) == 2


@pytest.mark.parametrize("value", ["3x1", "4", "4x2x1", "0x1", "ax2"])
def test_a_bad_unrolling_is_refused_with_its_value(value, monkeypatch):
    from keras_pixelcnn.errors import UsageError

    monkeypatch.setenv("KERAS_PIXELCNN_UNROLL", value)
    with pytest.raises(UsageError, match=f"KERAS_PIXELCNN_UNROLL must be ROWSxPIXELS.*'{value}'"):
        CachedSampler(_mixture_model())


def test_multiscale_sampler_needs_a_size_divisible_by_its_scales():
    from keras import layers

    from keras_pixelcnn.errors import PixelCNNError
    from keras_pixelcnn.layers import (
        BorderIndicator,
        DownRightShiftedConv2DTranspose,
        RightShift,
    )
    from keras_pixelcnn.layers.output_distribution import OutputDistribution

    image = keras.Input((6, 6, 1))
    x = BorderIndicator()(layers.Rescaling(1 / 127.5, offset=-1.0)(image))
    x = RightShift()(DownRightShiftedConv2D(4, (2, 1))(x))  # sees strictly earlier pixels
    x = DownRightShiftedConv2D(4, (2, 2), strides=2)(x)  # 3 x 3
    x = DownRightShiftedConv2D(4, (2, 2), strides=2)(x)  # 2 x 2: scale 4 of a 6-pixel image
    x = DownRightShiftedConv2DTranspose(4, (2, 2), strides=2)(x)
    x = DownRightShiftedConv2DTranspose(4, (2, 2), strides=2)(x)
    lik = DiscretizedLogisticMixture(2)
    model = keras.Model(image, OutputDistribution(lik)(layers.Conv2D(6, 1)(x)))
    with pytest.raises(PixelCNNError, match="image size divisible by every scale"):
        CachedSampler(model)
