"""The vertical and horizontal stack convolutions of the Gated PixelCNN
(van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders", figure 2).

Both are written as *shifted, cropped* convolutions rather than masked ones:
the kernel holds only the taps that can be non-zero, and the input is padded
(and, for the strict variants, shifted) so that output (i, j) sees exactly

- vertical stack: input rows i - k//2 .. i (or .. i - 1 for the first layer,
  which must not see the current row), every column j - k//2 .. j + k//2;
- horizontal stack: the current row, columns j - k//2 .. j (or .. j - 1 for the
  first layer, which must not see the current pixel).

Vertical features at row i therefore depend on image rows < i only, so the
vertical→horizontal link needs no extra shift and is causal at every layer.
"""

import numpy as np
from keras import ops
from keras.saving import register_keras_serializable

from keras_pixelcnn.layers.causal_conv import CausalConv2D
from keras_pixelcnn.layers.masked_conv import channel_group_mask, check_channel_groups


def _check(kernel_size, first, cls):
    if (
        isinstance(kernel_size, bool)
        or not isinstance(kernel_size, int)
        or kernel_size < 1
        or kernel_size % 2 == 0
    ):
        raise ValueError(
            f"Invalid value for argument `kernel_size` of {cls}. Expected an odd "
            f"int >= 1. Received: kernel_size={kernel_size!r}"
        )
    if not isinstance(first, bool):
        raise ValueError(
            f"Invalid value for argument `first` of {cls}. Expected a bool. "
            f"Received: first={first!r}"
        )


class _CausalStackConv(CausalConv2D):
    """A stride-1 Conv2D whose output (i, j) reads a causal window."""

    def __init__(self, filters, kernel_size, first=False, channel_groups=1, **kwargs):
        for name in ("strides", "padding", "dilation_rate", "groups", "data_format"):
            value = kwargs.pop(name, None)
            allowed = {
                "strides": (None, 1, (1, 1), [1, 1]),
                "padding": (None, "valid"),
                "dilation_rate": (None, 1, (1, 1), [1, 1]),
                "groups": (None, 1),
                "data_format": (None, "channels_last"),
            }[name]
            if value not in allowed:
                raise ValueError(
                    f"{type(self).__name__} does not support `{name}`. Received: {name}={value!r}"
                )
        _check(kernel_size, first, type(self).__name__)
        check_channel_groups(channel_groups, filters, type(self).__name__)
        super().__init__(
            filters=filters,
            kernel_size=self._taps(kernel_size, first, channel_groups),
            padding="valid",
            data_format="channels_last",
            **kwargs,
        )
        self.stack_kernel_size = kernel_size
        self.first = first
        self.channel_groups = channel_groups
        self.mask = None

    def build(self, input_shape):
        if self.channel_groups > 1:
            if input_shape[-1] % self.channel_groups:
                raise ValueError(
                    f"{type(self).__name__} with channel_groups={self.channel_groups} needs input "
                    f"channels that are a multiple of it. Received: input_shape={input_shape}"
                )
            # the kernel's last tap is the current pixel: channel groups, as
            # the centre tap of a masked convolution
            centre = channel_group_mask(
                (1, 1),
                "A" if self.first else "B",
                input_shape[-1],
                self.filters,
                self.channel_groups,
            )
            self.mask = np.ones((*self.kernel_size, input_shape[-1], self.filters), "float32")
            self.mask[:, -1:] = centre
        super().build(input_shape)

    def window_kernel(self, kernel):
        if self.mask is None:
            return kernel
        return kernel * ops.cast(self.mask, kernel.dtype)

    def convolution_op(self, inputs, kernel):
        rows, row_shift, left, right = self.causal_geometry
        height, width = inputs.shape[1], inputs.shape[2]
        if row_shift:
            inputs = inputs[:, : height - row_shift]
        if right < 0:
            inputs = inputs[:, :, : width + right]
        inputs = ops.pad(
            inputs,
            [[0, 0], [rows - 1 + row_shift, 0], [left, max(right, 0)], [0, 0]],
        )
        return ops.conv(inputs, self.window_kernel(kernel), strides=1, padding="valid")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        for name in ("kernel_size", "strides", "padding", "dilation_rate", "groups", "data_format"):
            config.pop(name, None)
        config.update({"kernel_size": self.stack_kernel_size, "first": self.first})
        if isinstance(self, HorizontalStackConv2D):
            config["channel_groups"] = self.channel_groups
        return config


@register_keras_serializable(package="keras_pixelcnn")
class VerticalStackConv2D(_CausalStackConv):
    """The vertical-stack convolution: output (i, j) sees the rows above.

    A `(k//2 + 1) × k` kernel over rows i - k//2 .. i, or, with `first=True`,
    a `(k//2) × k` kernel over rows i - k//2 .. i - 1 (the first layer must not
    see the current row of the image). No tap is always zero.

    Args:
        filters: int, the number of output channels.
        kernel_size: int, the odd nominal size k of the k × k receptive field.
        first: bool, True for the first layer (sees strictly earlier rows).
        **kwargs: other `keras.layers.Conv2D` arguments (`use_bias`,
            initializers, `name`, ...).

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, height, width, filters)`.

    Example:

    >>> VerticalStackConv2D(32, 3, first=True)(np.zeros((1, 28, 28, 1))).shape
    (1, 28, 28, 32)
    """

    def __init__(self, filters, kernel_size, first=False, **kwargs):
        super().__init__(filters, kernel_size, first=first, **kwargs)

    @staticmethod
    def _taps(k, first, channel_groups):
        return (max(k // 2, 1) if first else k // 2 + 1, k)

    @property
    def causal_geometry(self):
        k = self.stack_kernel_size
        rows = self.kernel_size[0]
        return rows, (1 if self.first else 0), k // 2, k // 2


@register_keras_serializable(package="keras_pixelcnn")
class HorizontalStackConv2D(_CausalStackConv):
    """The horizontal-stack convolution: output (i, j) sees its row's left part.

    A `1 × (k//2 + 1)` kernel over columns j - k//2 .. j, or, with
    `first=True`, a `1 × (k//2)` kernel over columns j - k//2 .. j - 1 (the
    first layer must not see the current pixel). No tap is always zero.

    Args:
        filters: int, the number of output channels.
        kernel_size: int, the odd nominal size k.
        first: bool, True for the first layer (sees strictly earlier pixels).
        channel_groups: int, the ordered channel groups of a colour pixel
            (1: none). With more, the kernel also covers the current pixel,
            where an output of group k sees the inputs of groups < k (first
            layer) or <= k, as `MaskedConv2D`'s channel groups.
        **kwargs: other `keras.layers.Conv2D` arguments.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, height, width, filters)`.

    Example:

    >>> HorizontalStackConv2D(32, 3, first=True)(np.zeros((1, 28, 28, 1))).shape
    (1, 28, 28, 32)
    """

    @staticmethod
    def _taps(k, first, channel_groups):
        return (1, max(k // 2, 1) if first and channel_groups == 1 else k // 2 + 1)

    @property
    def causal_geometry(self):
        k = self.stack_kernel_size
        cols = self.kernel_size[1]
        if self.first and self.channel_groups == 1:
            return 1, 0, cols, -1  # columns j - cols .. j - 1: not the current pixel
        return 1, 0, k // 2, 0  # columns j - k//2 .. j
