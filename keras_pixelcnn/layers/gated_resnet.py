"""PixelCNN++'s gated ResNet block (Salimans et al. 2017; openai/pixel-cnn
`nn.gated_resnet`), built from registered layers in a functional graph."""

from keras import layers, ops
from keras.saving import register_keras_serializable

from keras_pixelcnn.layers.concat_elu import ConcatELU


@register_keras_serializable(package="keras_pixelcnn")
class SigmoidGate(layers.Layer):
    """Splits the channels in halves a, b and returns a * sigmoid(b) (the
    PixelCNN++ gate; the Gated PixelCNN's has a tanh on a).

    Example:

    >>> SigmoidGate()(np.zeros((2, 28, 28, 64))).shape
    (2, 28, 28, 32)
    """

    def call(self, inputs):
        a, b = ops.split(inputs, 2, axis=-1)
        return a * ops.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] // 2)


def gated_resnet(x, conv, filters, shortcut=None, condition=None, dropout=0.5, name="gated_resnet"):
    """x + a * sigmoid(b), where [a, b] = conv(dropout(concat_elu(conv(concat_elu(x)) +
    1x1(concat_elu(shortcut))))) + projection(condition).

    Args:
        x: tensor `(batch, h, w, filters)`.
        conv: the layer class of the stream (`DownShiftedConv2D` with kernel
            (2, 3), or `DownRightShiftedConv2D` with (2, 2)), called as
            `conv(filters, name=...)`.
        filters: int, the channels of `x`.
        shortcut: optional tensor `(batch, h, w, c)` from the other stream or
            the upward pass (the paper's `a`), added through a 1×1 convolution.
        condition: optional `(batch, d)` class embedding, added to the gate's
            input through a learned projection.
        dropout: float, the dropout rate before the second convolution.
        name: str, the prefix of the layer names.
    """
    c1 = conv(filters, name=f"{name}_conv_1")(ConcatELU(name=f"{name}_elu_1")(x))
    if shortcut is not None:
        link = layers.Conv2D(filters, 1, name=f"{name}_shortcut")(
            ConcatELU(name=f"{name}_elu_shortcut")(shortcut)
        )
        c1 = layers.Add(name=f"{name}_add_shortcut")([c1, link])
    c1 = ConcatELU(name=f"{name}_elu_2")(c1)
    if dropout:
        c1 = layers.Dropout(dropout, name=f"{name}_dropout")(c1)
    c2 = conv(2 * filters, name=f"{name}_conv_2")(c1)
    if condition is not None:
        bias = layers.Dense(2 * filters, use_bias=False, name=f"{name}_cond")(condition)
        bias = layers.Reshape((1, 1, 2 * filters), name=f"{name}_cond_bias")(bias)
        c2 = layers.Add(name=f"{name}_add_cond")([c2, bias])
    return layers.Add(name=f"{name}_residual")([x, SigmoidGate(name=f"{name}_gate")(c2)])
