"""The PixelCNN of van den Oord et al. 2016 for binarized images."""

import functools

import keras
from keras import layers

from keras_pixelcnn.layers import MaskedConv2D, residual_block
from keras_pixelcnn.models.contract import (
    check_image_shape,
    check_int_arg,
    check_likelihood_channels,
)
from keras_pixelcnn.models.heads import (
    channel_groups,
    network_input,
    output_parameters,
    resolve_likelihood,
)


def build_pixelcnn(
    input_shape=(28, 28, 1),
    filters=64,
    num_residual_blocks=4,
    input_kernel_size=7,
    residual_kernel_size=3,
    likelihood=None,
    name="pixelcnn",
):
    """Builds a PixelCNN that returns each pixel's likelihood parameters.

    The architecture: a masked (A) `input_kernel_size` convolution to
    `filters` channels, `num_residual_blocks` residual blocks, then
    ReLU → 1×1 mask B → ReLU → 1×1 to one logit per pixel. It models
    p(x) = ∏ p(x_i | x_<i) in raster order; train it with binary
    cross-entropy on logits against its own input.

    Args:
        input_shape: tuple `(height, width, channels)` of the images. With
            several channels and a per-channel likelihood (`Categorical`),
            every masked convolution splits its channels into one ordered
            group per image channel, so channel k of a pixel is predicted
            from its channels < k (PixelRNN §3.4); `filters` / 2 must then
            be a multiple of the channels.
        filters: int, the hidden width h (64 in the reference model).
        num_residual_blocks: int, the number of residual blocks (4).
        input_kernel_size: int, the odd size of the mask-A input layer (7).
        residual_kernel_size: int, the odd size of the masked 3×3 in a block.
        likelihood: the per-pixel output distribution (`likelihoods`); None
            is `Bernoulli()`, one logit per pixel.
        name: str, the model name.

    Returns:
        A functional `keras.Model` mapping `(batch, h, w, c)` images to
        `(batch, h, w, likelihood.num_params)` parameters (one logit per
        pixel for the default Bernoulli).

    Example:

    >>> model = build_pixelcnn()
    >>> model.output_shape
    (None, 28, 28, 1)
    """
    check_image_shape(input_shape)
    check_int_arg("filters", filters, 2)
    check_int_arg("num_residual_blocks", num_residual_blocks, 0)
    likelihood = resolve_likelihood(likelihood)
    check_likelihood_channels(input_shape, likelihood)
    groups = channel_groups(likelihood)
    if filters % (2 * groups):
        raise ValueError(
            f"Invalid value for argument `filters`. With {groups} ordered channels the width "
            f"and its half must be multiples of {groups}. Received: filters={filters!r}"
        )
    conv = functools.partial(MaskedConv2D, channel_groups=groups)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = network_input(inputs, likelihood)
    x = conv(filters, input_kernel_size, mask_type="A", name="input_conv")(x)
    for b in range(num_residual_blocks):
        x = residual_block(
            x, filters, residual_kernel_size, name=f"block_{b + 1}", channel_groups=groups
        )
    x = layers.ReLU(name="head_relu_1")(x)
    x = conv(filters, 1, mask_type="B", name="head_conv_1")(x)
    x = layers.ReLU(name="head_relu_2")(x)
    logits = conv(likelihood.num_params, 1, mask_type="B", name="logits")(x)
    return keras.Model(inputs, output_parameters(logits, likelihood), name=name)
