"""Output distributions of a pixel ("likelihoods"), usable by every architecture.

A pixel has `channels` values (1 for grey, 3 for RGB), each one of `levels`
values 0 .. levels - 1 in data units. A likelihood says how many parameters
per pixel the network outputs (`num_params`), how many uniforms per pixel
sampling needs (`noise_channels`), and computes with `keras.ops` only:

- `log_prob(params, x)`: log p(x) per pixel, `params` `(..., num_params)`
  and `x` `(..., channels)`, summed over the channels;
- `sample(params, noise)`: the pixel's `(..., channels)` values from
  uniforms drawn up front (`noise` `(..., noise_channels)` in [0, 1)), so two
  samplers given the same noise give the same images.

The channels of a pixel are ordered (R → G → B). `sequential_channels` says
how a sampler must respect that order:

- True (`Categorical` with several channels): channel k's parameters come
  from a network whose masks let it see channels < k of the pixel (the
  channel groups of `MaskedConv2D`), so a sampler recomputes the parameters
  after each channel and keeps channel k of `sample`'s result;
- False: one set of parameters per pixel gives all its channels
  (`DiscretizedLogisticMixture` couples them itself; one channel).

Per-channel parameters are interleaved, parameter j belonging to channel
j % channels: the channel groups of `MaskedConv2D` (and the 1×1 head)
follow the same rule.

`NegativeLogLikelihood(likelihood)` is the training loss of any of them, the
mean NLL in nats per dimension (per pixel channel).
"""

import math

import keras
from keras import ops

from keras_pixelcnn.data import LIKELIHOODS  # noqa: F401 (the names, re-exported)


def _check_int(name, value, low, high=None):
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"an int in [{low}, {high}]" if high is not None else f"an int >= {low}"
        raise ValueError(f"`{name}` must be {bound}. Received: {name}={value!r}")


class _Likelihood:
    """What every likelihood shares: rebuilt from its config, equal when the
    configs are."""

    channels = 1
    sequential_channels = False

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = None


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class Bernoulli(_Likelihood):
    """Binary one-channel pixels: one logit l per pixel, p(x = 1) = sigmoid(l).

    Example:

    >>> Bernoulli().log_prob(ops.zeros((2, 1)), ops.ones((2, 1)))  # log 0.5 each
    """

    name = "bernoulli"
    num_params = 1
    noise_channels = 1
    levels = 2

    def log_prob(self, params, x):
        logits = params[..., 0]
        return ops.cast(x[..., 0], logits.dtype) * logits - ops.softplus(logits)

    def sample(self, params, noise):
        """1 where the uniform is below sigmoid(logit): exactly the rule of
        the samplers before likelihoods existed (same images, same noise)."""
        prob = ops.sigmoid(ops.cast(params[..., :1], "float32"))
        return ops.cast(ops.less(noise[..., :1], prob), "float32")

    def get_config(self):
        return {}

    def __repr__(self):
        return "Bernoulli()"


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class Categorical(_Likelihood):
    """A softmax over the `levels` values of each channel (PixelRNN §3.3,
    PixelCNN): `levels` logits per channel, interleaved (logit l of channel k
    is parameter `l * channels + k`).

    With several channels, channel k is conditioned on channels < k of its
    pixel by the network's channel-group masks (`sequential_channels`).

    Args:
        levels: int in [2, 256], the number of values of a channel.
        channels: int >= 1, the channels of a pixel.

    Example:

    >>> Categorical(256, channels=3).num_params
    768
    """

    name = "categorical"

    def __init__(self, levels=256, channels=1):
        _check_int("levels", levels, 2, 256)
        _check_int("channels", channels, 1)
        self.levels = levels
        self.channels = channels

    @property
    def num_params(self):
        return self.levels * self.channels

    @property
    def noise_channels(self):
        return self.channels

    @property
    def sequential_channels(self):
        return self.channels > 1

    def _log_softmax(self, params):
        """(..., channels, levels) log-probabilities."""
        shape = ops.shape(params)[:-1]
        logits = ops.reshape(params, (*shape, self.levels, self.channels))
        return ops.log_softmax(ops.swapaxes(logits, -1, -2), axis=-1)

    def log_prob(self, params, x):
        log_p = self._log_softmax(params)
        chosen = ops.one_hot(ops.cast(x, "int32"), self.levels, dtype=log_p.dtype)
        return ops.sum(log_p * chosen, axis=(-2, -1))

    def sample(self, params, noise):
        """Each channel's value by inverse CDF of its softmax with its uniform."""
        cumulative = ops.cumsum(ops.exp(self._log_softmax(ops.cast(params, "float32"))), axis=-1)
        below = ops.cast(ops.less(cumulative, noise[..., None]), "float32")
        return ops.minimum(ops.sum(below, axis=-1), float(self.levels - 1))

    def get_config(self):
        return {"levels": self.levels, "channels": self.channels}

    def __repr__(self):
        return f"Categorical(levels={self.levels}, channels={self.channels})"


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class DiscretizedLogisticMixture(_Likelihood):
    """A mixture of `num_mixtures` logistics discretized to the `levels`
    values of each channel (PixelCNN++, Salimans et al. 2017 §2.2).

    Values are mapped to [-1, 1] (x * 2 / (levels - 1) - 1); bin b covers
    [c_b - d, c_b + d) around its centre c_b, with d = 1 / (levels - 1), and
    the bins 0 and levels - 1 take the logistic's tails. One mixture
    component is shared by the channels of a pixel; the mean of channel k is
    shifted by a linear combination of the values of channels < k, with
    coefficients tanh(·) predicted by the network (§2.2), so the channels
    are ordered inside the pixel while the network sees earlier pixels only.

    Per pixel the network outputs the mixture logits (`num_mixtures`), then
    per channel the means and the log-scales (bounded below by
    `min_log_scale`), then the `channels * (channels - 1) / 2` coefficients
    (channel 1 on 0, 2 on 0, 2 on 1, ...), each block component-minor:
    `3 * num_mixtures` for one channel, `10 * num_mixtures` for three.

    A bin's log-probability is log(sigmoid(b) - sigmoid(a)) = b - softplus(a)
    - softplus(b) + log(1 - exp(a - b)), exact in the far tails too, where
    openai/pixel-cnn falls back to the density at the bin centre; every
    branch is finite, so gradients never go NaN.

    Args:
        num_mixtures: int, the number of logistic components (>= 1).
        min_log_scale: float, the lower bound of the log-scales (-7).
        channels: int >= 1, the channels of a pixel.
        levels: int in [2, 256], the values of a channel.

    Example:

    >>> DiscretizedLogisticMixture(10).num_params
    30
    >>> DiscretizedLogisticMixture(10, channels=3).num_params
    100
    """

    name = "logistic-mixture"

    def __init__(self, num_mixtures=10, min_log_scale=-7.0, channels=1, levels=256):
        if isinstance(num_mixtures, bool) or not isinstance(num_mixtures, int) or num_mixtures < 1:
            raise ValueError(
                f"`num_mixtures` must be a positive integer. Received: num_mixtures={num_mixtures}"
            )
        if not isinstance(min_log_scale, (int, float)) or not math.isfinite(min_log_scale):
            raise ValueError(
                f"`min_log_scale` must be a finite number. Received: min_log_scale={min_log_scale}"
            )
        _check_int("channels", channels, 1)
        _check_int("levels", levels, 2, 256)
        self.num_mixtures = num_mixtures
        self.min_log_scale = float(min_log_scale)
        self.channels = channels
        self.levels = levels

    @property
    def num_coefficients(self):
        return self.channels * (self.channels - 1) // 2

    @property
    def num_params(self):
        return self.num_mixtures * (1 + 2 * self.channels + self.num_coefficients)

    @property
    def noise_channels(self):
        return 1 + self.channels  # the component, then each channel's logistic value

    def split(self, params):
        """`(logits, means, log_scales, coefficients)`: logits
        `(..., num_mixtures)`, the others `(..., n, num_mixtures)` with n the
        channels (the coefficients: `num_coefficients`, after tanh)."""
        k, c = self.num_mixtures, self.channels
        shape = ops.shape(params)[:-1]

        def block(start, n):
            return ops.reshape(params[..., start * k : (start + n) * k], (*shape, n, k))

        log_scales = ops.maximum(block(1 + c, c), self.min_log_scale)
        coefficients = ops.tanh(block(1 + 2 * c, self.num_coefficients)) if c > 1 else None
        return params[..., :k], block(1, c), log_scales, coefficients

    def _scale(self, x):
        """Data units 0 .. levels - 1 → [-1, 1]."""
        return x * (2.0 / (self.levels - 1)) - 1.0

    def _coupled_means(self, means, coefficients, x):
        """The means `(..., channels, K)` shifted by the earlier channels'
        values `x` `(..., channels)` in [-1, 1]."""
        if coefficients is None:
            return means
        rows, pair = [means[..., 0, :]], 0
        for k in range(1, self.channels):
            shift = 0.0
            for j in range(k):
                shift = shift + coefficients[..., pair, :] * x[..., j : j + 1]
                pair += 1
            rows.append(means[..., k, :] + shift)
        return ops.stack(rows, axis=-2)

    def log_prob(self, params, x):
        logits, means, log_scales, coefficients = self.split(params)
        x = self._scale(ops.cast(x, params.dtype))  # (..., c) in [-1, 1]
        means = self._coupled_means(means, coefficients, x)
        half = 1.0 / (self.levels - 1)
        centered = x[..., None] - means  # (..., c, K)
        inv_scale = ops.exp(-log_scales)
        plus_in = inv_scale * (centered + half)
        min_in = inv_scale * (centered - half)
        log_cdf_plus = plus_in - ops.softplus(plus_in)  # log sigmoid: the bin 0 (left tail)
        log_one_minus_cdf_min = -ops.softplus(min_in)  # log (1 - sigmoid): the last bin
        # log(sigmoid(b) - sigmoid(a)) for a < b, exact in every tail:
        # b - softplus(a) - softplus(b) + log(1 - exp(a - b)), evaluated on the
        # left of the mean, where it does not cancel (right of it, with
        # sigmoid(b) - sigmoid(a) = sigmoid(-a) - sigmoid(-b), on (-b, -a)).
        right = (min_in + plus_in) > 0
        a = ops.where(right, -plus_in, min_in)
        b = ops.where(right, -min_in, plus_in)
        gap = ops.maximum(-ops.expm1(inv_scale * (-2.0 * half)), 1e-30)
        log_delta = b - ops.softplus(a) - ops.softplus(b) + ops.log(gap)
        edge = 1.0 - half / 2
        xs = x[..., None]
        log_bin = ops.where(
            xs < -edge, log_cdf_plus, ops.where(xs > edge, log_one_minus_cdf_min, log_delta)
        )
        return ops.logsumexp(ops.sum(log_bin, axis=-2) + ops.log_softmax(logits, axis=-1), axis=-1)

    def sample(self, params, noise):
        """The component by inverse CDF of the mixture weights (`noise[..., 0]`),
        then channel by channel a logistic value of that component by inverse
        CDF (`noise[..., 1 + k]`), its mean shifted by the earlier channels'
        sampled values (the bins, as `log_prob` reads them), and the bin it
        falls in, with the likelihood's bin edges."""
        logits, means, log_scales, coefficients = self.split(ops.cast(params, "float32"))
        k, top = self.num_mixtures, self.levels - 1
        cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
        below = ops.cast(ops.less(cumulative, noise[..., 0:1]), "int32")
        component = ops.minimum(ops.sum(below, axis=-1), k - 1)
        chosen = ops.one_hot(component, k, dtype="float32")[..., None, :]  # (..., 1, K)
        mean = ops.sum(means * chosen, axis=-1)  # (..., c)
        scale = ops.exp(ops.sum(log_scales * chosen, axis=-1))
        coefficient = None if coefficients is None else ops.sum(coefficients * chosen, axis=-1)
        eps = 2.0**-24
        values, pair = [], 0
        for c in range(self.channels):
            shift = 0.0
            for j in range(c):
                shift = shift + coefficient[..., pair] * self._scale(values[j])
                pair += 1
            u = ops.clip(noise[..., 1 + c], eps, 1.0 - eps)
            value = mean[..., c] + shift + scale[..., c] * (ops.log(u) - ops.log1p(-u))
            # x in [c_b - d, c_b + d) ⇔ bin b = floor((x + 1) * top / 2 + 0.5)
            bins = ops.floor((ops.clip(value, -2.0, 2.0) + 1.0) * (top / 2.0) + 0.5)
            values.append(ops.clip(bins, 0.0, float(top)))
        return ops.stack(values, axis=-1)

    def get_config(self):
        return {
            "num_mixtures": self.num_mixtures,
            "min_log_scale": self.min_log_scale,
            "channels": self.channels,
            "levels": self.levels,
        }

    def __repr__(self):
        extra = "" if self.channels == 1 else f", channels={self.channels}"
        extra += "" if self.levels == 256 else f", levels={self.levels}"
        return f"DiscretizedLogisticMixture(num_mixtures={self.num_mixtures}{extra})"


def get_likelihood(name, num_mixtures=10, channels=1, levels=256):
    """The likelihood called `name` (see `LIKELIHOODS`) for pixels of
    `channels` channels of `levels` values."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "categorical":
        return Categorical(levels, channels)
    if name == "logistic-mixture":
        return DiscretizedLogisticMixture(num_mixtures, channels=channels, levels=levels)
    raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class NegativeLogLikelihood(keras.losses.Loss):
    """The training loss of a likelihood: the mean NLL in nats per dimension
    (per pixel channel; per pixel for grey images) of the images (`y_true`, `(batch, h, w, channels)`) under the predicted
    per-pixel parameters (`y_pred`, `(batch, h, w, num_params)`).

    Args:
        likelihood: a likelihood object or its serialized dict.
        name: str, the loss name.
    """

    def __init__(self, likelihood, name="nll", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(likelihood, dict):
            likelihood = keras.saving.deserialize_keras_object(likelihood)
        self.likelihood = likelihood

    def call(self, y_true, y_pred):
        # per image: the mean over its dimensions, h × w × channels (the
        # reduction averages the batch)
        log_p = self.likelihood.log_prob(y_pred, y_true)
        per_pixel = ops.mean(ops.reshape(log_p, (ops.shape(log_p)[0], -1)), axis=-1)
        return -per_pixel / self.likelihood.channels

    def get_config(self):
        config = super().get_config()
        config["likelihood"] = keras.saving.serialize_keras_object(self.likelihood)
        return config
