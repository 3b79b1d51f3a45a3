"""One channel group per pass: the cached loop's pixel steps for a
per-channel `Categorical` colour model.

A model with ordered channels (PixelRNN §3.4) splits the channels of every
pixel tensor into groups, channel i in group `i % groups`: at the current
pixel, group k of a masked layer's output reads groups < k (mask A) or
<= k (mask B) of its input, and the likelihood's parameters for colour
channel k are group k of the last tensor. So in the pass that samples
channel k, group k of each pixel tensor is the only part that changes and
the only part needed: groups < k are final since their own pass, groups
> k are not read yet (their kernel taps at the current pixel are zero).
Each pass computes that group alone (a third of the products for RGB) and
writes it into the tensor's value at the pixel, whose other groups keep the
earlier passes' values. The sampler keeps those values group-major (group k
contiguous, the kernels' input channels permuted to match), so a group is
written as one slice.

`channel_groups(plan, likelihood)` says whether a model's pixel steps allow
it; the loop falls back to whole passes where they do not. Only `keras.ops`.
"""

import numpy as np
from keras import layers, ops

from keras_pixelcnn.layers import CausalConv2D, ConcatELU, SigmoidGate
from keras_pixelcnn.likelihoods import Categorical
from keras_pixelcnn.sampling.plan import POINTWISE_LAYERS

# The pointwise layers whose output channel c reads channel c of each input
# (`GatedActivation`: channels c and c + half, of one group since every
# pixel tensor's channels are a multiple of the groups); a concatenation
# moves channels between groups.
ELEMENTWISE = tuple(
    kind for kind in POINTWISE_LAYERS if kind not in (layers.Concatenate, ConcatELU, SigmoidGate)
)


def channel_groups(plan, likelihood):
    """The number of channel groups when the plan's pixel steps can run one
    group per pass (see the module docstring), else None."""
    if not (isinstance(likelihood, Categorical) and likelihood.channels > 1):
        return None
    groups = likelihood.channels
    transform = plan.input_transform
    if plan.scales != [1] or plan.border:
        return None
    if transform is not None and (np.ndim(transform.scale) or np.ndim(transform.offset)):
        return None  # a per-channel rescaling: kept for the whole passes
    pixel = {step.out for step in plan.pixel_steps}
    for step in plan.row_steps:  # a row step reading a cache would see its group-major order
        if pixel & {*step.inputs, step.source}:
            return None
    for step in plan.pixel_steps:
        layer = step.layer
        if step.channels % groups:
            return None
        if step.op == "conv" or pointwise_conv(step, groups):
            if getattr(layer, "channel_groups", 1) != groups:
                return None
        elif step.op != "point" or not isinstance(layer, ELEMENTWISE):
            return None
        elif plan.image_id in step.inputs:
            return None
    return groups


def pointwise_conv(step, groups):
    """Whether a point step is a 1×1 causal convolution with channel groups
    (it mixes channels: group k of its output reads groups <= k)."""
    layer = step.layer
    return (
        step.op == "point"
        and isinstance(layer, CausalConv2D)
        and tuple(layer.kernel_size) == (1, 1)
        and getattr(layer, "channel_groups", 1) == groups
    )


def group_indices(channels, groups, k):
    """The channels of group k: k, k + groups, k + 2 * groups, ..."""
    return np.arange(k, channels, groups)


def take_group(value, groups, k):
    """Group k of a tensor's channels (its last axis)."""
    return ops.take(value, group_indices(value.shape[-1], groups, k), axis=-1)


def group_major(channels, groups):
    """The channels in group-major order (group 0's, then group 1's, ...):
    the order of the sampler's caches, where a group is one slice."""
    return np.concatenate([group_indices(channels, groups, k) for k in range(groups)])


def sample_channel(likelihood, params, noise):
    """Channel k's value from its own parameters (group k of the
    `Categorical`'s, its `levels` logits in order) and its uniform: the
    inverse CDF that `Categorical.sample` computes for every channel."""
    return Categorical(likelihood.levels, channels=1).sample(params, noise)
