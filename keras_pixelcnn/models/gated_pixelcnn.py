"""The Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders"): vertical and horizontal stacks without blind spot,
gated activations, skip connections and optional class conditioning."""

import functools

import keras
from keras import layers

from keras_pixelcnn.layers import gated_block
from keras_pixelcnn.layers.gated_block import pointwise
from keras_pixelcnn.models.contract import (
    check_image_shape,
    check_int_arg,
    check_likelihood_channels,
    check_num_classes,
)
from keras_pixelcnn.models.heads import (
    channel_groups,
    network_input,
    output_parameters,
    resolve_likelihood,
)


def build_gated_pixelcnn(
    input_shape=(28, 28, 1),
    filters=64,
    num_layers=8,
    kernel_size=3,
    input_kernel_size=7,
    num_classes=None,
    condition_dim=32,
    skip_connections=True,
    head_filters=None,
    likelihood=None,
    name="gated_pixelcnn",
):
    """Builds a (class-conditional) Gated PixelCNN returning one logit per pixel.

    Args:
        input_shape: tuple `(height, width, channels)`. With several
            channels and a per-channel likelihood (`Categorical`), the
            horizontal stack and the head split their channels into one
            ordered group per image channel (channel k of a pixel is
            predicted from its channels < k); `filters` must then be a
            multiple of the channels.
        filters: int, the channels p of each stack.
        num_layers: int, the number of gated layers (the first one hides the
            current pixel and uses `input_kernel_size`).
        kernel_size: int, odd nominal kernel size of the later layers.
        input_kernel_size: int, odd nominal kernel size of the first layer.
        num_classes: int or None. With an int the model takes a second input,
            integer labels `(batch,)` in `[0, num_classes)`, embedded once and
            added as a per-layer learned bias in both stacks.
        condition_dim: int, the size of the label embedding.
        skip_connections: bool, sum every layer's gated horizontal features
            (through 1×1 convolutions) into the output head.
        head_filters: int or None, the width of the output head (None:
            `filters`).
        likelihood: the per-pixel output distribution (`likelihoods`); None
            is `Bernoulli()`, one logit per pixel.
        name: str, the model name.

    Returns:
        A functional `keras.Model`: `image → logits`, or
        `[image, label] → logits` when `num_classes` is set.

    Example:

    >>> model = build_gated_pixelcnn(num_classes=10)
    >>> logits = model([images, labels])  # images (n, 28, 28, 1), labels (n,)
    """
    check_int_arg("filters", filters)
    check_int_arg("num_layers", num_layers)
    check_int_arg("condition_dim", condition_dim)
    if head_filters is not None:
        check_int_arg("head_filters", head_filters)
    check_num_classes(num_classes)
    check_image_shape(input_shape)
    likelihood = resolve_likelihood(likelihood)
    check_likelihood_channels(input_shape, likelihood)
    groups = channel_groups(likelihood)
    head_filters = filters if head_filters is None else head_filters
    if filters % groups or head_filters % groups:
        raise ValueError(
            f"Invalid value for argument `filters`. With {groups} ordered channels the stacks "
            f"and the head must be multiples of {groups}. Received: filters={filters!r}, "
            f"head_filters={head_filters!r}"
        )
    image = keras.Input(shape=tuple(input_shape), name="image")
    x = network_input(image, likelihood)
    inputs = [image]
    condition = None
    if num_classes is not None:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        condition = layers.Embedding(num_classes, condition_dim, name="label_embedding")(label)
    block = functools.partial(gated_block, condition=condition, channel_groups=groups)
    v, h, skip = block(x, x, filters, input_kernel_size, first=True, name="gated_1")
    skips = [skip]
    for n in range(2, num_layers + 1):
        v, h, skip = block(v, h, filters, kernel_size, name=f"gated_{n}")
        skips.append(skip)
    if skip_connections:
        terms = [pointwise(head_filters, f"skip_{n + 1}", groups)(s) for n, s in enumerate(skips)]
        x = layers.Add(name="skip_sum")(terms) if len(terms) > 1 else terms[0]
    else:
        x = h
    x = layers.ReLU(name="head_relu_1")(x)
    x = pointwise(head_filters, "head_conv_1", groups)(x)
    x = layers.ReLU(name="head_relu_2")(x)
    logits = pointwise(likelihood.num_params, "logits", groups)(x)
    outputs = output_parameters(logits, likelihood)
    return keras.Model(inputs if len(inputs) > 1 else image, outputs, name=name)
