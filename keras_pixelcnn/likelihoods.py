"""Output distributions of a pixel ("likelihoods"), usable by every architecture.

A likelihood says how many parameters per pixel the network outputs
(`num_params`), how many uniforms per pixel sampling needs
(`noise_channels`), and computes with `keras.ops` only:

- `log_prob(params, x)`: log p(x) per pixel, `params` `(..., num_params)`
  and `x` `(...)` in data units (0/1, or 0..255);
- `sample(params, noise)`: pixel values from uniforms drawn up front
  (`noise` `(..., noise_channels)` in [0, 1)), so two samplers given the same
  noise give the same images.

`NegativeLogLikelihood(likelihood)` is the training loss of any of them, the
mean NLL in nats per pixel.

`Bernoulli` is the binary models' (one logit per pixel). The discretized
logistic mixture is PixelCNN++'s (Salimans et al. 2017, openai/pixel-cnn
`discretized_mix_logistic_loss`, in its one-channel form).
"""

import math

import keras
from keras import ops

from keras_pixelcnn.data import LIKELIHOODS  # noqa: F401 (the names, re-exported)


class _Likelihood:
    """What every likelihood shares: rebuilt from its config, equal when the
    configs are."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = None


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class Bernoulli(_Likelihood):
    """Binary pixels: one logit l per pixel, p(x = 1) = sigmoid(l).

    Example:

    >>> Bernoulli().log_prob(ops.zeros((2, 1)), ops.ones((2,)))  # log 0.5 each
    """

    name = "bernoulli"
    num_params = 1
    noise_channels = 1
    levels = 2

    def log_prob(self, params, x):
        logits = params[..., 0]
        return ops.cast(x, logits.dtype) * logits - ops.softplus(logits)

    def sample(self, params, noise):
        """1 where the uniform is below sigmoid(logit): exactly the rule of
        the samplers before likelihoods existed (same images, same noise)."""
        prob = ops.sigmoid(ops.cast(params[..., 0], "float32"))
        return ops.cast(ops.less(noise[..., 0], prob), "float32")

    def get_config(self):
        return {}

    def __repr__(self):
        return "Bernoulli()"


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class DiscretizedLogisticMixture(_Likelihood):
    """A mixture of `num_mixtures` logistics discretized to the 256 values
    0..255 of a one-channel 8-bit pixel (PixelCNN++).

    Values are mapped to [-1, 1] (x / 127.5 - 1); bin k covers
    [c_k - 1/255, c_k + 1/255) around its centre c_k, the bins 0 and 255 take
    the logistic's tails. Per pixel the network outputs `3 * num_mixtures`
    parameters: the mixture logits, the means and the log-scales (bounded
    below by `min_log_scale`). A bin's log-probability is computed as
    log(sigmoid(b) - sigmoid(a)) = b - softplus(a) - softplus(b) +
    log(1 - exp(a - b)), exact in the far tails too, where openai/pixel-cnn
    falls back to the density at the bin centre (which is off by percents
    for bins of probability ~1e-5); every branch is finite, so gradients
    never go NaN.

    Args:
        num_mixtures: int, the number of logistic components (>= 1).
        min_log_scale: float, the lower bound of the log-scales (-7).

    Example:

    >>> lik = DiscretizedLogisticMixture(10)
    >>> lik.num_params
    30
    """

    name = "logistic-mixture"
    noise_channels = 2  # the component, then the logistic value
    levels = 256

    def __init__(self, num_mixtures=10, min_log_scale=-7.0):
        if isinstance(num_mixtures, bool) or not isinstance(num_mixtures, int) or num_mixtures < 1:
            raise ValueError(
                f"`num_mixtures` must be a positive integer. Received: num_mixtures={num_mixtures}"
            )
        if not isinstance(min_log_scale, (int, float)) or not math.isfinite(min_log_scale):
            raise ValueError(
                f"`min_log_scale` must be a finite number. Received: min_log_scale={min_log_scale}"
            )
        self.num_mixtures = num_mixtures
        self.min_log_scale = float(min_log_scale)

    @property
    def num_params(self):
        return 3 * self.num_mixtures

    def split(self, params):
        """`(logits, means, log_scales)`, each `(..., num_mixtures)`."""
        k = self.num_mixtures
        log_scales = ops.maximum(params[..., 2 * k : 3 * k], self.min_log_scale)
        return params[..., :k], params[..., k : 2 * k], log_scales

    def log_prob(self, params, x):
        logits, means, log_scales = self.split(params)
        x = ops.cast(x, params.dtype)[..., None] / 127.5 - 1.0  # (..., 1) in [-1, 1]
        centered = x - means
        inv_scale = ops.exp(-log_scales)
        plus_in = inv_scale * (centered + 1.0 / 255.0)
        min_in = inv_scale * (centered - 1.0 / 255.0)
        log_cdf_plus = plus_in - ops.softplus(plus_in)  # log sigmoid: the bin 0 (left tail)
        log_one_minus_cdf_min = -ops.softplus(min_in)  # log (1 - sigmoid): the bin 255
        # log(sigmoid(b) - sigmoid(a)) for a < b, exact in every tail:
        # b - softplus(a) - softplus(b) + log(1 - exp(a - b)), evaluated on the
        # left of the mean, where it does not cancel (right of it, with
        # sigmoid(b) - sigmoid(a) = sigmoid(-a) - sigmoid(-b), on (-b, -a)).
        right = (min_in + plus_in) > 0
        a = ops.where(right, -plus_in, min_in)
        b = ops.where(right, -min_in, plus_in)
        gap = ops.maximum(-ops.expm1(inv_scale * (-2.0 / 255.0)), 1e-30)
        log_delta = b - ops.softplus(a) - ops.softplus(b) + ops.log(gap)
        log_bin = ops.where(
            x < -0.999, log_cdf_plus, ops.where(x > 0.999, log_one_minus_cdf_min, log_delta)
        )
        return ops.logsumexp(log_bin + ops.log_softmax(logits, axis=-1), axis=-1)

    def sample(self, params, noise):
        """The component by inverse CDF of the mixture weights (`noise[..., 0]`),
        a logistic value of that component by inverse CDF (`noise[..., 1]`),
        then the bin it falls in, with the likelihood's bin edges."""
        logits, means, log_scales = self.split(ops.cast(params, "float32"))
        k = self.num_mixtures
        cumulative = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
        below = ops.cast(ops.less(cumulative, noise[..., 0:1]), "int32")
        component = ops.minimum(ops.sum(below, axis=-1), k - 1)
        chosen = ops.one_hot(component, k, dtype="float32")
        mean = ops.sum(means * chosen, axis=-1)
        scale = ops.exp(ops.sum(log_scales * chosen, axis=-1))
        eps = 2.0**-24
        u = ops.clip(noise[..., 1], eps, 1.0 - eps)
        value = mean + scale * (ops.log(u) - ops.log1p(-u))
        # x in [c_b - 1/255, c_b + 1/255) ⇔ bin b = floor((x + 1) * 127.5 + 0.5)
        bins = ops.floor((ops.clip(value, -2.0, 2.0) + 1.0) * 127.5 + 0.5)
        return ops.clip(bins, 0.0, 255.0)

    def get_config(self):
        return {"num_mixtures": self.num_mixtures, "min_log_scale": self.min_log_scale}

    def __repr__(self):
        return f"DiscretizedLogisticMixture(num_mixtures={self.num_mixtures})"


def get_likelihood(name, num_mixtures=10):
    """The likelihood called `name` (see `LIKELIHOODS`)."""
    if name == "bernoulli":
        return Bernoulli()
    if name == "logistic-mixture":
        return DiscretizedLogisticMixture(num_mixtures)
    raise ValueError(f"unknown likelihood {name!r}; choose one of {', '.join(LIKELIHOODS)}")


@keras.saving.register_keras_serializable(package="keras_pixelcnn")
class NegativeLogLikelihood(keras.losses.Loss):
    """The training loss of a likelihood: the mean NLL in nats per pixel of
    the images (`y_true`, `(batch, h, w, 1)`) under the predicted per-pixel
    parameters (`y_pred`, `(batch, h, w, num_params)`).

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
        # per image: the mean over its pixels (the reduction averages the batch)
        log_p = self.likelihood.log_prob(y_pred, y_true[..., 0])
        return -ops.mean(ops.reshape(log_p, (ops.shape(log_p)[0], -1)), axis=-1)

    def get_config(self):
        config = super().get_config()
        config["likelihood"] = keras.saving.serialize_keras_object(self.likelihood)
        return config
