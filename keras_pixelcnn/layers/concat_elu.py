"""PixelCNN++'s nonlinearity: concat_elu(x) = elu([x, -x])."""

from keras import layers, ops
from keras.saving import register_keras_serializable


@register_keras_serializable(package="keras_pixelcnn")
class ConcatELU(layers.Layer):
    """ELU of the channels and of their negatives, concatenated
    (Salimans et al. 2017): keeps both signs' information, doubles the
    channels.

    Input shape:
        `(..., c)`.

    Output shape:
        `(..., 2c)`.

    Example:

    >>> ConcatELU()(np.zeros((2, 28, 28, 8))).shape
    (2, 28, 28, 16)
    """

    def call(self, inputs):
        return ops.elu(ops.concatenate([inputs, -inputs], axis=-1))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])
