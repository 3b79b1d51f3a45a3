"""One Gated PixelCNN layer (van den Oord et al. 2016, figure 2), built from
registered primitive layers in a functional graph."""

from keras import layers

from keras_pixelcnn.layers.gated_activation import GatedActivation
from keras_pixelcnn.layers.masked_conv import MaskedConv2D
from keras_pixelcnn.layers.stack_conv import HorizontalStackConv2D, VerticalStackConv2D


def pointwise(filters, name, channel_groups=1):
    """A 1×1 convolution of the horizontal stack or the head: a plain
    `Conv2D`, or with ordered channel groups a 1×1 `MaskedConv2D` of mask B
    (group k reads groups <= k)."""
    if channel_groups == 1:
        return layers.Conv2D(filters, 1, name=name)
    return MaskedConv2D(filters, 1, mask_type="B", channel_groups=channel_groups, name=name)


def gated_block(
    v, h, filters, kernel_size=3, condition=None, first=False, name="gated", channel_groups=1
):
    """Applies one gated layer to the vertical and horizontal stacks.

    - vertical: v' = gate(V ∗ v + Vᵀc)
    - horizontal: h' = h + 1×1(gate(H ∗ h + 1×1(V ∗ v) + Hᵀc))
      (no residual in the first layer, whose input is the image)

    The vertical stack feeds the horizontal one through a 1×1 convolution,
    never the other way. `condition` is the label embedding `(batch, d)`: each
    stack adds its own learned projection of it as a bias before the gate.

    Args:
        v: the vertical-stack tensor `(batch, h, w, c)` (the image if first).
        h: the horizontal-stack tensor (the image if first).
        filters: int, the number p of output channels of each stack.
        kernel_size: int, the odd nominal kernel size.
        condition: optional tensor `(batch, d)`, the class embedding.
        first: bool, True for the first layer (hides the current pixel).
        name: str, the prefix of the layer names.
        channel_groups: int, the ordered channel groups of a colour pixel
            (1: none): the horizontal stack's convolutions then read the
            current pixel's earlier groups (`HorizontalStackConv2D`,
            `MaskedConv2D`); the vertical stack sees rows above only and
            needs none.

    Returns:
        `(v', h', skip)`: the new stacks and the gated horizontal features
        (before the residual 1×1) for skip connections.
    """
    v_pre = VerticalStackConv2D(2 * filters, kernel_size, first=first, name=f"{name}_v_conv")(v)
    h_pre = HorizontalStackConv2D(
        2 * filters, kernel_size, first=first, channel_groups=channel_groups, name=f"{name}_h_conv"
    )(h)
    link = layers.Conv2D(2 * filters, 1, name=f"{name}_v_to_h")(v_pre)
    h_terms = [h_pre, link]
    if condition is not None:
        v_bias = layers.Dense(2 * filters, use_bias=False, name=f"{name}_v_cond")(condition)
        h_bias = layers.Dense(2 * filters, use_bias=False, name=f"{name}_h_cond")(condition)
        v_bias = layers.Reshape((1, 1, 2 * filters), name=f"{name}_v_cond_bias")(v_bias)
        h_bias = layers.Reshape((1, 1, 2 * filters), name=f"{name}_h_cond_bias")(h_bias)
        v_pre = layers.Add(name=f"{name}_v_add_cond")([v_pre, v_bias])
        h_terms.append(h_bias)
    v_out = GatedActivation(name=f"{name}_v_gate")(v_pre)
    h_gated = GatedActivation(name=f"{name}_h_gate")(layers.Add(name=f"{name}_h_sum")(h_terms))
    h_out = pointwise(filters, f"{name}_h_out", channel_groups)(h_gated)
    if not first:
        h_out = layers.Add(name=f"{name}_h_residual")([h, h_out])
    return v_out, h_out, h_gated
