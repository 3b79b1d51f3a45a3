"""The PixelCNN residual block (van den Oord et al. 2016, "Pixel Recurrent
Neural Networks", figure 5): ReLU → 1×1 (h→h/2) → ReLU → masked 3×3 B
(h/2→h/2) → ReLU → 1×1 (h/2→h), plus the skip."""

from keras import layers

from keras_pixelcnn.layers.masked_conv import MaskedConv2D


def residual_block(x, filters, kernel_size=3, name="residual_block", channel_groups=1):
    """Applies one PixelCNN residual block to `x` in a functional graph.

    The block is composed of plain registered layers (no composite layer), so
    a saved model shows its real structure and the fast sampler can walk it.

    Args:
        x: 4D Keras tensor `(batch, height, width, filters)`.
        filters: int, the number of channels h of `x`; the inner width is h/2.
        kernel_size: int, odd size of the masked (type B) inner convolution.
        name: str, the prefix of the block's layer names.
        channel_groups: int, the ordered channel groups of every masked
            convolution (`MaskedConv2D`); 1 for none.

    Returns:
        A tensor of the same shape as `x`.

    Example:

    >>> inputs = keras.Input((28, 28, 64))
    >>> residual_block(inputs, 64, name="block_1").shape
    (None, 28, 28, 64)
    """
    if not isinstance(filters, int) or filters < 2:
        raise ValueError(
            f"Invalid value for argument `filters`. Expected an int >= 2. "
            f"Received: filters={filters!r}"
        )
    inner = max(filters // 2, 1)
    h = layers.ReLU(name=f"{name}_relu_1")(x)
    g = {"mask_type": "B", "channel_groups": channel_groups}
    h = MaskedConv2D(inner, 1, name=f"{name}_conv_1x1_in", **g)(h)
    h = layers.ReLU(name=f"{name}_relu_2")(h)
    h = MaskedConv2D(inner, kernel_size, name=f"{name}_conv_masked", **g)(h)
    h = layers.ReLU(name=f"{name}_relu_3")(h)
    h = MaskedConv2D(filters, 1, name=f"{name}_conv_1x1_out", **g)(h)
    return layers.Add(name=f"{name}_add")([x, h])
