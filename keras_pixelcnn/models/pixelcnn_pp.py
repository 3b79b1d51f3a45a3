"""PixelCNN++ (Salimans et al. 2017, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications"), after
openai/pixel-cnn `model.py`, for one-channel images."""

import functools

import keras
from keras import layers

from keras_pixelcnn.layers.gated_resnet import gated_resnet
from keras_pixelcnn.layers.shifted_conv import (
    BorderIndicator,
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShift,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    RightShift,
)
from keras_pixelcnn.likelihoods import DiscretizedLogisticMixture
from keras_pixelcnn.models.contract import (
    check_image_shape,
    check_int_arg,
    check_likelihood_channels,
    check_num_classes,
)
from keras_pixelcnn.models.heads import check_unordered_channels, network_input, output_parameters

NUM_SCALES = 3  # 28 -> 14 -> 7 and back


def build_pixelcnn_pp(
    input_shape=(28, 28, 1),
    filters=64,
    num_resnets=2,
    dropout=0.5,
    num_classes=None,
    condition_dim=32,
    likelihood=None,
    name="pixelcnn_pp",
):
    """Builds a PixelCNN++: two causal streams at three scales with long skip
    connections, returning the per-pixel parameters of `likelihood`.

    - The "up" stream `u` (down-shifted 2×3 convolutions) sees the rows
      above; the "up-left" stream `ul` (down-right-shifted 2×2) also sees
      the current row to the left and reads `u` through its shortcut. No
      blind spot.
    - Each scale has `num_resnets` gated ResNet blocks (concat_elu, dropout,
      a * sigmoid(b)); strided shifted convolutions downsample 28 → 14 → 7,
      transposed ones upsample back, and every block of the downward pass
      reads the matching block of the upward pass (the long skips).

    Args:
        input_shape: tuple `(h, w, c)`, h and w divisible by 4. The network
            never sees the current pixel; the mixture orders a colour
            pixel's channels (Salimans et al. 2017 §2.2).
        filters: int, the channels of both streams (160 in the paper's CIFAR
            model).
        num_resnets: int, gated ResNet blocks per scale (5 in the paper).
        dropout: float in [0, 1), the dropout rate inside every block.
        num_classes: int or None; with an int the model takes integer labels
            as a second input, embedded and added to every block's gate.
        condition_dim: int, the size of the label embedding.
        likelihood: the output distribution; None is
            `DiscretizedLogisticMixture(10, channels=c)` (256 levels). `Bernoulli()`
            gives a binary PixelCNN++.
        name: str, the model name.

    Returns:
        A functional `keras.Model`: `image → params` (or `[image, label]`),
        params `(batch, h, w, likelihood.num_params)`.

    Example:

    >>> model = build_pixelcnn_pp(filters=32, num_resnets=1)
    >>> model.output_shape
    (None, 28, 28, 30)
    """
    check_image_shape(input_shape)
    if input_shape[0] % 4 or input_shape[1] % 4:
        raise ValueError(
            "Invalid value for argument `input_shape`. PixelCNN++ halves the image twice: "
            f"height and width must be divisible by 4. Received: input_shape={input_shape!r}"
        )
    check_int_arg("filters", filters)
    check_int_arg("num_resnets", num_resnets)
    check_int_arg("condition_dim", condition_dim)
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(
            f"Invalid value for argument `dropout`. Expected a number in [0, 1). "
            f"Received: dropout={dropout!r}"
        )
    check_num_classes(num_classes)
    channels = input_shape[-1]
    lik = DiscretizedLogisticMixture(10, channels=channels) if likelihood is None else likelihood
    check_likelihood_channels(input_shape, lik)
    check_unordered_channels(lik, "PixelCNN++", "its network never sees the current pixel")
    image = keras.Input(shape=tuple(input_shape), name="image")
    inputs = [image]
    condition = None
    if num_classes is not None:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        condition = layers.Embedding(num_classes, condition_dim, name="label_embedding")(label)
    down = functools.partial(DownShiftedConv2D, kernel_size=(2, 3))
    down_right = functools.partial(DownRightShiftedConv2D, kernel_size=(2, 2))
    block = functools.partial(gated_resnet, filters=filters, condition=condition, dropout=dropout)

    x = BorderIndicator(name="border")(network_input(image, lik))
    u = DownShift(name="u_shift")(DownShiftedConv2D(filters, (2, 3), name="u_input")(x))
    ul = layers.Add(name="ul_input")(
        [
            DownShift(name="ul_shift_down")(DownShiftedConv2D(filters, (1, 3), name="ul_up")(x)),
            RightShift(name="ul_shift_right")(
                DownRightShiftedConv2D(filters, (2, 1), name="ul_left")(x)
            ),
        ]
    )
    us, uls = [u], [ul]
    for scale in range(NUM_SCALES):  # the upward pass
        if scale:
            u = DownShiftedConv2D(filters, (2, 3), strides=2, name=f"up_{scale}_u_down")(u)
            ul = DownRightShiftedConv2D(filters, (2, 2), strides=2, name=f"up_{scale}_ul_down")(ul)
            us.append(u)
            uls.append(ul)
        for r in range(num_resnets):
            u = block(u, down, name=f"up_{scale}_{r}_u")
            ul = block(ul, down_right, shortcut=u, name=f"up_{scale}_{r}_ul")
            us.append(u)
            uls.append(ul)
    u, ul = us.pop(), uls.pop()
    for scale in range(NUM_SCALES):  # the downward pass, with the long skips
        if scale:
            u = DownShiftedConv2DTranspose(filters, (2, 3), name=f"down_{scale}_u_up")(u)
            ul = DownRightShiftedConv2DTranspose(filters, (2, 2), name=f"down_{scale}_ul_up")(ul)
        for r in range(num_resnets + (1 if scale else 0)):
            u = block(u, down, shortcut=us.pop(), name=f"down_{scale}_{r}_u")
            skip = layers.Concatenate(name=f"down_{scale}_{r}_skip")([u, uls.pop()])
            ul = block(ul, down_right, shortcut=skip, name=f"down_{scale}_{r}_ul")
    assert not us and not uls
    params = layers.Conv2D(lik.num_params, 1, name="params")(layers.ELU(name="head_elu")(ul))
    outputs = output_parameters(params, lik)
    return keras.Model(inputs if len(inputs) > 1 else image, outputs, name=name)
