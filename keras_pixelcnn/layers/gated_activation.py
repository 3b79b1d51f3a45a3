"""The gated activation unit of the Gated PixelCNN: tanh(f) ⊙ σ(g)."""

from keras import layers, ops
from keras.saving import register_keras_serializable


@register_keras_serializable(package="keras_pixelcnn")
class GatedActivation(layers.Layer):
    """Splits the channels in two halves f, g and returns tanh(f) * sigmoid(g).

    One convolution with 2p outputs followed by this layer computes the
    paper's tanh(W_f ∗ x) ⊙ σ(W_g ∗ x) with p outputs.

    Input shape:
        `(..., 2p)`.

    Output shape:
        `(..., p)`.

    Example:

    >>> GatedActivation()(np.zeros((2, 28, 28, 64))).shape
    (2, 28, 28, 32)
    """

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] % 2:
            raise ValueError(
                "GatedActivation needs an even number of channels. "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs):
        f, g = ops.split(inputs, 2, axis=-1)
        return ops.tanh(f) * ops.sigmoid(g)

    def compute_output_shape(self, input_shape):
        half = None if input_shape[-1] is None else input_shape[-1] // 2
        return (*input_shape[:-1], half)
