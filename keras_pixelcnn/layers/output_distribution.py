"""The model's output layer that names its per-pixel likelihood."""

import keras
from keras import layers
from keras.saving import register_keras_serializable

from keras_pixelcnn.likelihoods import Bernoulli, Categorical, DiscretizedLogisticMixture


@register_keras_serializable(package="keras_pixelcnn")
class OutputDistribution(layers.Layer):
    """Identity on the network's per-pixel parameters; records which
    likelihood they parameterize, so a saved `.keras` model knows how to be
    evaluated and sampled.

    Models without this layer are Bernoulli models (one logit per pixel).

    Args:
        likelihood: a likelihood object (`likelihoods.Bernoulli`,
            `likelihoods.Categorical`, `likelihoods.DiscretizedLogisticMixture`)
            or its serialized dict.

    Input shape:
        `(batch, h, w, likelihood.num_params)`.

    Output shape:
        The same.

    Example:

    >>> head = OutputDistribution(DiscretizedLogisticMixture(10))
    >>> head(np.zeros((2, 28, 28, 30))).shape
    (2, 28, 28, 30)
    """

    def __init__(self, likelihood, **kwargs):
        super().__init__(**kwargs)
        if isinstance(likelihood, dict):
            likelihood = keras.saving.deserialize_keras_object(likelihood)
        if not isinstance(likelihood, (Bernoulli, Categorical, DiscretizedLogisticMixture)):
            raise ValueError(
                "`likelihood` must be a Bernoulli, Categorical or DiscretizedLogisticMixture. "
                f"Received: likelihood={likelihood!r}"
            )
        self.likelihood = likelihood

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.likelihood.num_params:
            raise ValueError(
                f"{self.likelihood!r} needs {self.likelihood.num_params} parameters per "
                f"pixel. Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["likelihood"] = keras.saving.serialize_keras_object(self.likelihood)
        return config
