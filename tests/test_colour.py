"""Colour pixels: channels ordered inside a pixel (R → G → B).

p(x) = ∏ over pixels i ∏ over channels k of p(x[i, k] | x[<i], x[i, <k]).
Each likelihood is checked against an independent float64 NumPy
computation and a chi-square test of its samples; each architecture ×
likelihood by exact Jacobians at every position and channel, by the exact
sum of the probabilities of every possible tiny image, and by the samplers
(the reference sampler draws from the model's own pmf; the cached one gives
its images).
"""

import itertools

import keras
import numpy as np
import pytest
from helpers import input_gradient
from keras import ops

from keras_pixelcnn import (
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    build_gated_pixelcnn,
    build_pixelcnn,
    build_pixelcnn_pp,
    draw_noise,
    make_sampler,
)
from keras_pixelcnn.layers import HorizontalStackConv2D, MaskedConv2D
from keras_pixelcnn.models.contract import likelihood as model_likelihood
from keras_pixelcnn.models.contract import noise_shape


def _log_softmax64(z, axis):
    z = z - z.max(axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis, keepdims=True))


def categorical_log_prob64(params, x, levels, channels):
    """log p(x) per pixel: params (n, levels * channels) with logit l of
    channel k at l * channels + k; x (n, channels) in 0 .. levels - 1."""
    logits = np.asarray(params, "float64").reshape(len(params), levels, channels)
    log_p = _log_softmax64(logits, axis=1)
    x = np.asarray(x).astype(int)
    return sum(log_p[np.arange(len(x)), x[:, k], k] for k in range(channels))


def _sigmoid64(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def mixture_log_prob64(params, x, k, channels, levels):
    """log p(x) per pixel of the colour mixture of Salimans et al. §2.2,
    written from the paper: one component for the pixel, channel c's mean
    shifted by sum_j tanh(coef) * x_j over the earlier channels j (in
    [-1, 1]), logistic CDF differences over the bins, the edge bins taking
    the tails. params (n, k * (1 + 2c + c(c-1)/2)), x (n, c)."""
    params = np.asarray(params, "float64")
    n = len(params)
    logits = params[:, :k]
    means = params[:, k : k * (1 + channels)].reshape(n, channels, k)
    log_s = np.maximum(params[:, k * (1 + channels) : k * (1 + 2 * channels)], -7.0)
    scales = np.exp(log_s.reshape(n, channels, k))
    coef = np.tanh(params[:, k * (1 + 2 * channels) :].reshape(n, -1, k))
    x = np.asarray(x, "float64")
    v = x * 2 / (levels - 1) - 1
    half = 1 / (levels - 1)
    log_mass = np.zeros((n, k))
    pairs = [(c, j) for c in range(channels) for j in range(c)]
    for c in range(channels):
        mean = means[:, c] + sum(
            coef[:, p] * v[:, j : j + 1] for p, (cc, j) in enumerate(pairs) if cc == c
        )
        upper = np.where(x[:, c : c + 1] == levels - 1, np.inf, v[:, c : c + 1] + half)
        lower = np.where(x[:, c : c + 1] == 0, -np.inf, v[:, c : c + 1] - half)
        zu, zl = (upper - mean) / scales[:, c], (lower - mean) / scales[:, c]
        right = (v[:, c : c + 1] - mean) > 0
        mass = np.where(right, _sigmoid64(-zl) - _sigmoid64(-zu), _sigmoid64(zu) - _sigmoid64(zl))
        with np.errstate(divide="ignore"):  # a far component's mass underflows to 0
            log_mass += np.log(mass)
    joint = log_mass + _log_softmax64(logits, axis=1)
    top = joint.max(1, keepdims=True)
    return (top + np.log(np.exp(joint - top).sum(1, keepdims=True)))[:, 0]


def _every_value(levels, channels):
    return np.array(list(itertools.product(range(levels), repeat=channels)), "float32")


def _log_prob(lik, params, x):
    return ops.convert_to_numpy(
        lik.log_prob(ops.convert_to_tensor(params), ops.convert_to_tensor(x))
    ).astype("float64")


def _chi_square_ok(counts, probs, n):
    """Chi-square of observed counts against n * probs (cells with an
    expectation below 5 merged), below the p = 1e-6 quantile."""
    expected = probs * n
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expect = np.append(expected[big], expected[~big].sum())
    keep = expect > 0
    chi2 = ((observed[keep] - expect[keep]) ** 2 / expect[keep]).sum()
    df = keep.sum() - 1
    z = 4.75  # p = 1e-6, Wilson-Hilferty
    limit = df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3
    return chi2 < limit, (chi2, limit, df)


# -- likelihoods -----------------------------------------------------------


def test_categorical_conditionals_sum_to_one_and_match_float64():
    levels, channels = 5, 3
    lik = Categorical(levels, channels)
    params = np.random.default_rng(0).normal(0, 3, (20, lik.num_params)).astype("float32")
    values = _every_value(levels, channels)  # 125 colours
    p = np.repeat(params, len(values), 0)
    x = np.tile(values, (len(params), 1))
    ours = _log_prob(lik, p, x).reshape(len(params), len(values))
    # bug: logits read per channel in blocks instead of interleaved, a softmax over the channels
    np.testing.assert_allclose(
        ours,
        categorical_log_prob64(p, x, levels, channels).reshape(ours.shape),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(np.exp(ours).sum(1), 1.0, rtol=1e-5)


def test_categorical_samples_follow_the_pmf_chi_square():
    levels, channels, n = 4, 2, 80_000
    lik = Categorical(levels, channels)
    params = np.array([[2.0, -1.0, 0.5, 0.0, -1.5, 3.0, 0.0, 1.0]], "float32")
    noise = np.random.default_rng(1).random((n, channels), dtype=np.float32)
    sampled = ops.convert_to_numpy(lik.sample(np.repeat(params, n, 0), noise)).astype(int)
    assert sampled.shape == (n, channels)
    cells = sampled[:, 0] * levels + sampled[:, 1]
    values = _every_value(levels, channels)
    pmf = np.exp(categorical_log_prob64(np.repeat(params, len(values), 0), values, levels, 2))
    ok, detail = _chi_square_ok(np.bincount(cells, minlength=levels**2), pmf, n)
    assert ok, detail  # bug: a channel read from another's logits, an off-by-one inverse CDF


@pytest.mark.parametrize("levels", [8, 256])
def test_colour_mixture_sums_to_one_and_matches_float64(levels):
    k, channels = 3, 3
    lik = DiscretizedLogisticMixture(k, channels=channels, levels=levels)
    assert lik.num_params == 10 * k  # openai/pixel-cnn's 10 per component for RGB
    rng = np.random.default_rng(2)
    params = rng.normal(0, 1.5, (6, lik.num_params)).astype("float32")
    params[:, k * 4 : k * 7] = rng.uniform(-6, 0, (6, 3 * k))  # log-scales
    if levels == 8:  # every colour: the pixel's probabilities sum to 1
        x = _every_value(levels, channels)
        ours = _log_prob(lik, np.repeat(params, len(x), 0), np.tile(x, (6, 1)))
        np.testing.assert_allclose(np.exp(ours).reshape(6, -1).sum(1), 1.0, rtol=1e-5)
        x = np.tile(x, (6, 1))
    else:  # 16.7 M colours: random ones, and the float64 formula
        x = rng.integers(0, 256, (6 * 200, channels)).astype("float32")
        x[:50] = [0, 255, 128]  # the edge bins
        ours = _log_prob(lik, np.repeat(params, 200, 0), x)
    reference = mixture_log_prob64(np.repeat(params, len(x) // 6, 0), x, k, channels, levels)
    # bug: the coupling on the wrong channel, coefficients without tanh, a
    # component per channel instead of one per pixel, bins of 256 levels
    np.testing.assert_allclose(ours, reference, rtol=2e-4, atol=2e-5)


def test_colour_mixture_samples_follow_the_pmf_chi_square():
    k, channels, levels, n = 2, 3, 4, 80_000
    lik = DiscretizedLogisticMixture(k, channels=channels, levels=levels)
    params = np.array(
        [
            [
                0.3,
                -0.2,
                -0.5,
                0.4,
                0.1,
                -0.3,
                0.6,
                0.0,  # logits, means (3 × 2)
                -1.0,
                -0.5,
                -0.8,
                -1.2,
                -0.6,
                -0.9,  # log-scales
                2.0,
                -1.5,
                1.0,
                0.5,
                -2.0,
                1.2,
            ]
        ],
        "float32",  # coefficients (strong coupling)
    )
    noise = np.random.default_rng(3).random((n, lik.noise_channels), dtype=np.float32)
    sampled = ops.convert_to_numpy(lik.sample(np.repeat(params, n, 0), noise)).astype(int)
    cells = (sampled[:, 0] * levels + sampled[:, 1]) * levels + sampled[:, 2]
    values = _every_value(levels, channels)
    pmf = np.exp(mixture_log_prob64(np.repeat(params, len(values), 0), values, k, 3, levels))
    ok, detail = _chi_square_ok(np.bincount(cells, minlength=levels**3), pmf, n)
    # bug: coupling on the continuous draw instead of the sampled bin, a
    # component per channel, the noise of one channel reused
    assert ok, detail


def test_likelihood_arguments_and_configs():
    for bad, match in (
        (lambda: Categorical(1), "Received: levels=1"),
        (lambda: Categorical(300), "Received: levels=300"),
        (lambda: Categorical(4, channels=0), "Received: channels=0"),
        (lambda: DiscretizedLogisticMixture(2, levels=1), "Received: levels=1"),
    ):
        with pytest.raises(ValueError, match=match):
            bad()
    for lik in (Categorical(7, 3), DiscretizedLogisticMixture(4, channels=3, levels=16)):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lik))
        assert again == lik and again is not lik
    # a grey model saved before colour (its config has no channels or levels)
    old = DiscretizedLogisticMixture.from_config({"num_mixtures": 10, "min_log_scale": -7.0})
    assert old == DiscretizedLogisticMixture(10) and old.num_params == 30
    assert Categorical(256, 3).sequential_channels and not Categorical(256).sequential_channels
    assert not DiscretizedLogisticMixture(channels=3).sequential_channels


# -- layers ----------------------------------------------------------------


def _layer_jacobian(layer, shape, at):
    """|d out[0, at] / d x| for one positive input: (filters, h, w, c)."""
    x = np.random.default_rng(0).random((1, *shape)).astype("float32") + 0.5
    layer(x)
    layer.set_weights([np.abs(w) + 0.1 for w in layer.get_weights()])
    rows = []
    for f in range(layer.filters):
        grad = input_gradient(lambda v: layer(v)[0, at[0], at[1]], x, f)
        rows.append(np.abs(grad[0]))
    return np.stack(rows)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_channel_groups_see_earlier_groups_of_the_pixel(mask_type):
    layer = MaskedConv2D(6, 3, mask_type=mask_type, channel_groups=3)
    jac = _layer_jacobian(layer, (5, 5, 3), (2, 2))
    for f in range(6):
        centre = jac[f, 2, 2] > 0
        k = f % 3  # output channel f belongs to group f % 3
        expected = np.arange(3) < k if mask_type == "A" else np.arange(3) <= k
        np.testing.assert_array_equal(centre, expected, err_msg=f"filter {f}")
        # the 3 × 3 window's past: every channel; the future: none
        assert (jac[f, 1, 1:4] > 0).all() and (jac[f, 2, 1] > 0).all()
        assert not jac[f, 3:].any() and not jac[f, 2, 3:].any()
    again = MaskedConv2D.from_config(layer.get_config())
    assert again.channel_groups == 3 and again.mask_type == mask_type
    with pytest.raises(ValueError, match="Received: channel_groups=4, filters=6"):
        MaskedConv2D(6, 3, channel_groups=4)
    with pytest.raises(ValueError, match=r"input_shape=\(1, 5, 5, 4\)"):
        MaskedConv2D(6, 3, channel_groups=3)(np.zeros((1, 5, 5, 4), "float32"))


@pytest.mark.parametrize("first", [True, False])
def test_horizontal_stack_channel_groups_see_earlier_groups_of_the_pixel(first):
    layer = HorizontalStackConv2D(6, 3, first=first, channel_groups=3)
    jac = _layer_jacobian(layer, (5, 5, 3), (2, 2))
    for f in range(6):
        k = f % 3
        expected = np.arange(3) < k if first else np.arange(3) <= k
        np.testing.assert_array_equal(jac[f, 2, 2] > 0, expected, err_msg=f"filter {f}")
        assert (jac[f, 2, 1] > 0).all() and not jac[f, 2, 0].any()  # k // 2 = 1 column left
        assert not jac[f, :2].any() and not jac[f, 3:].any() and not jac[f, 2, 3:].any()
    again = HorizontalStackConv2D.from_config(layer.get_config())
    assert again.channel_groups == 3 and again.first == first


# -- models ----------------------------------------------------------------

H = W = 8
C = 3


def _build(name, shape=(H, W, C), levels=256):
    keras.utils.set_random_seed(4)
    cat = Categorical(levels, shape[-1])
    mix = DiscretizedLogisticMixture(2, channels=shape[-1], levels=levels)
    small = dict(filters=6, input_kernel_size=3)
    builders = {
        "pixelcnn-categorical": lambda: build_pixelcnn(
            shape, num_residual_blocks=2, likelihood=cat, **small
        ),
        "pixelcnn-mixture": lambda: build_pixelcnn(
            shape, num_residual_blocks=2, likelihood=mix, **small
        ),
        "gated-categorical": lambda: build_gated_pixelcnn(
            shape, num_layers=3, kernel_size=3, likelihood=cat, **small
        ),
        "gated-mixture": lambda: build_gated_pixelcnn(
            shape, num_layers=3, kernel_size=3, likelihood=mix, num_classes=3, **small
        ),
        "pixelcnn_pp-mixture": lambda: build_pixelcnn_pp(
            shape, filters=6, num_resnets=1, dropout=0.0, likelihood=mix
        ),
    }
    return builders[name]()


MODELS = [
    "pixelcnn-categorical",
    "pixelcnn-mixture",
    "gated-categorical",
    "gated-mixture",
    "pixelcnn_pp-mixture",
]


def _inputs(model, x):
    if len(model.inputs) == 2:
        return [x, ops.convert_to_tensor(np.full((len(x),), 1, "int32"))]
    return x


def _channel_jacobians(model, x):
    """|d params(pixel p, channel k) / d x| for every (p, k): (H*W, C, H, W, C).
    A likelihood with ordered channels has per-channel parameters (j % C ==
    k); the mixture's parameters all belong to the pixel (every k alike)."""
    lik = model_likelihood(model)
    n = H * W * C
    batch = np.repeat(x[None], n, axis=0).astype("float32")
    pick = np.zeros((n, H, W, lik.num_params), "float32")
    for u in range(n):
        p, k = divmod(u, C)
        own = np.arange(lik.num_params) % C == k if lik.sequential_channels else slice(None)
        pick[u, p // W, p % W, own] = 1.0
    pick = ops.convert_to_tensor(pick)

    def total(v):
        return ops.sum(ops.cast(model(_inputs(model, v)), "float32") * pick)

    return np.abs(input_gradient(total, batch, ())).reshape(H * W, C, H, W, C)


def _allowed(p, k, sequential):
    """The inputs parameter (p, k) may read: every channel of the earlier
    pixels, and channels < k of pixel p when the network orders them."""
    allowed = np.zeros((H * W, C), bool)
    allowed[:p] = True
    if sequential:
        allowed[p, :k] = True
    return allowed.reshape(H, W, C)


@pytest.mark.parametrize("name", MODELS)
def test_every_channel_sees_exactly_its_past(name):
    model = _build(name)
    sequential = model_likelihood(model).sequential_channels
    rng = np.random.default_rng(5)
    for x in (rng.integers(0, 256, (H, W, C)), np.full((H, W, C), 255)):
        jac = _channel_jacobians(model, x)
        for p, k in itertools.product(range(H * W), range(C)):
            leak = (jac[p, k] > 0) & ~_allowed(p, k, sequential)
            assert not leak.any(), (
                f"{name}: pixel {divmod(p, W)} channel {k} sees {np.argwhere(leak)[:3]}"
            )
    # with positive weights every unit is alive: the allowed inputs are seen
    model.set_weights(
        [np.full(w.shape, 0.02 if w.ndim > 1 else 0.0, w.dtype) for w in model.get_weights()]
    )
    jac = _channel_jacobians(model, np.full((H, W, C), 200.0))
    for p, k in itertools.product(range(H * W), range(C)):
        i, j = divmod(p, W)
        seen = jac[p, k] > 0
        # the pixel's own earlier channels, exactly (bug: a group mask off by one)
        np.testing.assert_array_equal(seen[i, j], np.arange(C) < k if sequential else False)
        if name.startswith("pixelcnn-"):  # the blind spot: only the neighbours are sure
            assert j == 0 or seen[i, j - 1].all()
            assert i == 0 or seen[i - 1, j].all()
        else:
            others = np.ones((H, W), bool)
            others[i, j] = False
            if name.startswith("gated"):  # no blind spot: reach 1 + 2 × 1 after three layers
                expected = np.zeros((H, W), bool)
                expected[max(i - 3, 0) : i, max(j - 3, 0) : j + 4] = True
                expected[i, max(j - 3, 0) : j] = True
                np.testing.assert_array_equal(seen.all(-1) & others, expected)
                assert not (seen.any(-1) & others & ~expected).any()
            else:  # PixelCNN++ (a finite field): the two rows above within 2 columns
                near = np.zeros((H, W), bool)  # either side and the 2 pixels to the left
                near[max(i - 2, 0) : i, max(j - 2, 0) : j + 3] = True
                near[i, max(j - 2, 0) : j] = True
                assert seen[near].all(), f"pixel {(i, j)} channel {k} misses nearby pixels"


def _every_image(shape, levels):
    n = int(np.prod(shape))
    return np.array(list(itertools.product(range(levels), repeat=n)), "float32").reshape(-1, *shape)


def _total_probability(model, images):
    lik = model_likelihood(model)
    params = model.predict(_inputs(model, images), batch_size=4096, verbose=0)
    log_p = _log_prob(lik, params, images).reshape(len(images), -1).sum(1)
    return np.exp(log_p).sum()


def _random_weights(model, scale=0.7):
    rng = np.random.default_rng(6)
    model.set_weights([rng.normal(0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


@pytest.mark.parametrize("name", MODELS[:4])
def test_every_possible_2x2_rgb_image_sums_to_one(name):
    """4,096 images of 2 × 2 × 3 at 2 levels: the model is a distribution."""
    model = _build(name, shape=(2, 2, 3), levels=2)
    _random_weights(model)
    np.testing.assert_allclose(
        _total_probability(model, _every_image((2, 2, 3), 2)), 1.0, rtol=1e-5
    )


@pytest.mark.parametrize("colour", [False, True])
def test_a_peek_at_the_own_channel_breaks_the_sum(colour, monkeypatch):
    """The check above can fail: a first layer whose channel k sees channel
    k of its pixel (mask A read as B) gives a sum far from 1."""
    import keras_pixelcnn.layers.masked_conv as masked_conv

    real = masked_conv.channel_group_mask
    monkeypatch.setattr(
        masked_conv,
        "channel_group_mask",
        lambda size, mask_type, *a: real(size, "B", *a),
    )
    model = _build("pixelcnn-categorical", shape=(2, 2, 3), levels=2)
    _random_weights(model)
    total = _total_probability(model, _every_image((2, 2, 3), 2))
    assert abs(total - 1.0) > 1e-2, total


@pytest.mark.parametrize("lik", [Bernoulli(), DiscretizedLogisticMixture(2, levels=2)])
def test_every_possible_4x4_image_sums_to_one_under_pixelcnn_pp(lik):
    """65,536 images of 4 × 4 × 1 at 2 levels (PixelCNN++ halves twice)."""
    keras.utils.set_random_seed(7)
    model = build_pixelcnn_pp((4, 4, 1), filters=4, num_resnets=1, dropout=0.0, likelihood=lik)
    _random_weights(model, 0.5)
    np.testing.assert_allclose(
        _total_probability(model, _every_image((4, 4, 1), 2)), 1.0, rtol=1e-5
    )


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match=r"Bernoulli\(\) models 1-channel pixels .* has 3"):
        build_pixelcnn((8, 8, 3))
    with pytest.raises(ValueError, match="multiples of 3. Received: filters=64"):
        build_pixelcnn((8, 8, 3), filters=64, likelihood=Categorical(256, 3))
    with pytest.raises(ValueError, match="PixelCNN\\+\\+ cannot model Categorical.*never sees"):
        build_pixelcnn_pp((8, 8, 3), likelihood=Categorical(256, 3))
    assert model_likelihood(build_pixelcnn_pp((8, 8, 3), filters=4, num_resnets=1)) == (
        DiscretizedLogisticMixture(10, channels=3)
    )


# -- samplers ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["pixelcnn-categorical", "gated-mixture"])
def test_reference_sampler_draws_from_the_models_own_pmf(name):
    """1 × 2 × 3 images at 2 levels (64 of them): the reference sampler's
    images follow the model's exact pmf (chi-square). Bug: a channel drawn
    before the ones it depends on, a pass that writes every channel."""
    model = _build(name, shape=(1, 2, 3), levels=2)
    _random_weights(model, 0.5)
    images = _every_image((1, 2, 3), 2)
    params = model.predict(_inputs(model, images), verbose=0)
    pmf = np.exp(_log_prob(model_likelihood(model), params, images).sum(axis=(1, 2)))
    n = 20_000
    labels = np.full((n,), 1, "int32") if len(model.inputs) == 2 else None
    drawn = make_sampler(model, "reference").sample(
        draw_noise(n, noise_shape(model), 8), labels=labels
    )
    cells = drawn.reshape(n, -1).astype(int) @ (2 ** np.arange(5, -1, -1))
    ok, detail = _chi_square_ok(np.bincount(cells, minlength=64), pmf, n)
    assert ok, detail


@pytest.mark.parametrize("name", MODELS)
def test_cached_sampler_draws_the_reference_colour_images(name):
    """Ordered channels: one pass of the pixel steps per channel, each reading
    the channels written before it; the mixture: one pass for the pixel."""
    model = _build(name)
    _random_weights(model, 0.3)
    noise = draw_noise(5, noise_shape(model), 9)
    labels = np.arange(5) % 3 if len(model.inputs) == 2 else None
    reference = make_sampler(model, "reference").sample(noise, labels=labels)
    fast = make_sampler(model, "fast").sample(noise, labels=labels)
    assert reference.shape == (5, H, W, C) and len(np.unique(reference)) > 20
    np.testing.assert_array_equal(fast, reference)


def test_categorical_colour_samplers_compute_one_channel_group_per_pass():
    """The per-channel passes of a Categorical model compute only the
    channel group they sample (`sampling/channel_groups.py`; the equality
    above proves the images): bug, a layer the check refuses turning every
    categorical model back to three whole passes (3x the products). The
    mixture needs one pass and no groups."""
    for name in MODELS[:4]:  # (PixelCNN++ cannot have a Categorical)
        loop = make_sampler(_build(name), "fast").loop
        assert loop.groups == (3 if name.endswith("categorical") else None), name
    # completion: the known pixels (every channel) kept, the rest as the
    # reference draws them (bug: a known channel read from the wrong group)
    model = _build("pixelcnn-categorical")
    _random_weights(model, 0.3)
    noise = draw_noise(2, noise_shape(model), 16)
    initial = np.random.default_rng(17).integers(0, 256, (2, H, W, C)).astype("float32")
    start = 3 * W + 2
    fast = make_sampler(model, "fast").sample(noise, initial=initial, start=start)
    known = initial.reshape(2, -1, C)[:, :start]
    np.testing.assert_array_equal(fast.reshape(2, -1, C)[:, :start], known)
    reference = make_sampler(model, "reference").sample(noise, initial=initial, start=start)
    np.testing.assert_array_equal(fast, reference)
    # class-conditional: group k of the label's projection joins group k of the stack
    keras.utils.set_random_seed(18)
    gated = build_gated_pixelcnn(
        (4, 4, 3), filters=6, num_layers=2, kernel_size=3, likelihood=Categorical(4, 3),
        num_classes=3,
    )  # fmt: skip
    _random_weights(gated, 0.5)
    noise, labels = draw_noise(6, noise_shape(gated), 19), np.arange(6) % 3
    fast = make_sampler(gated, "fast")
    assert fast.loop.groups == 3
    reference = make_sampler(gated, "reference").sample(noise, labels=labels)
    np.testing.assert_array_equal(fast.sample(noise, labels=labels), reference)
    assert len(np.unique(reference)) == 4


def test_colour_model_round_trips_through_a_keras_file(tmp_path):
    model = _build("gated-categorical")
    _random_weights(model, 0.3)
    path = tmp_path / "colour.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.random.default_rng(10).integers(0, 256, (2, H, W, C)).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert model_likelihood(again) == Categorical(256, 3)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export runs on TensorFlow")
def test_colour_saved_model_samples_and_scores_like_the_keras_model(tmp_path):
    """A categorical colour model exported to a SavedModel: its `sample`
    gives the cached sampler's images from the same noise (one pass per
    channel), its `log_prob` the float64 NLL of the Keras model's outputs."""
    from keras_pixelcnn import export_saved_model
    from keras_pixelcnn.serving import SavedModelSampler

    keras.utils.set_random_seed(11)
    model = build_pixelcnn(
        (4, 4, 3), filters=6, num_residual_blocks=1, likelihood=Categorical(4, 3)
    )
    _random_weights(model, 0.5)
    export_saved_model(model, tmp_path / "sm")
    saved = SavedModelSampler(str(tmp_path / "sm"))
    assert saved.image_shape == (4, 4, 3)
    noise = draw_noise(6, noise_shape(model), 12)
    np.testing.assert_array_equal(
        saved.sample_noise(noise), make_sampler(model, "fast").sample(noise)
    )
    import tensorflow as tf

    x = np.random.default_rng(13).integers(0, 4, (3, 4, 4, 3)).astype("float32")
    nll = tf.saved_model.load(str(tmp_path / "sm")).signatures["log_prob"](images=tf.constant(x))
    params = model.predict(x, verbose=0).reshape(-1, 12)
    expected = -categorical_log_prob64(params, x.reshape(-1, 3), 4, 3).reshape(3, 16).sum(1)
    np.testing.assert_allclose(nll["nll_nats"].numpy(), expected, rtol=1e-5)


def test_colour_completion_keeps_the_rows_above_and_samples_the_rest():
    """Bug: the start of the hidden part counted in channel values (rows × w × 3)
    kept three times as many rows as asked."""
    from keras_pixelcnn import complete
    from keras_pixelcnn.sampling.reference import ReferenceSampler

    model = _build("pixelcnn-mixture")
    _random_weights(model, 0.3)
    images = np.random.default_rng(14).integers(0, 256, (2, H, W, C)).astype("float32")
    out = complete(model, images, rows=3, num_completions=2, seed=15)
    np.testing.assert_array_equal(out[:, :, :3], np.repeat(images[:, None, :3], 2, 1))
    reference = ReferenceSampler(model).sample(
        draw_noise(4, noise_shape(model), 15), initial=np.repeat(images, 2, 0), start=3 * W
    )
    np.testing.assert_array_equal(out.reshape(4, H, W, C), reference)
    assert (out[:, :, 3] != images[:, None, 3]).mean() > 0.5  # row 3 is drawn, not kept
