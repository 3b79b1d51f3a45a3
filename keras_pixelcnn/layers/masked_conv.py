"""MaskedConv2D: the causal convolution of PixelCNN (van den Oord et al. 2016)."""

import numpy as np
from keras import ops
from keras.saving import register_keras_serializable

from keras_pixelcnn.layers.causal_conv import CausalConv2D
from keras_pixelcnn.layers.pointwise import pointwise_conv
from keras_pixelcnn.runtime import jax_on_cpu

MASK_TYPES = ("A", "B")


def causal_mask(kernel_size, mask_type):
    """Returns the (kh, kw) 0/1 raster-order mask of a masked convolution.

    Args:
        kernel_size: tuple of two odd ints, the kernel height and width.
        mask_type: str, `"A"` hides the centre tap and every later tap in raster
            order; `"B"` shows the centre tap and hides every later tap.

    Returns:
        A float32 NumPy array of shape `kernel_size`.
    """
    kh, kw = kernel_size
    mask = np.zeros((kh, kw), dtype="float32")
    mask[: kh // 2, :] = 1.0
    mask[kh // 2, : kw // 2 + (1 if mask_type == "B" else 0)] = 1.0
    return mask


def check_channel_groups(channel_groups, filters, layer):
    """Raises `ValueError` (Keras style) unless `channel_groups` is an int
    >= 1 that divides `filters`."""
    if (
        isinstance(channel_groups, bool)
        or not isinstance(channel_groups, int)
        or channel_groups < 1
        or (isinstance(filters, int) and filters % channel_groups)
    ):
        raise ValueError(
            f"Invalid value for argument `channel_groups` of {layer}. Expected an int >= 1 "
            f"that divides `filters`. Received: channel_groups={channel_groups!r}, "
            f"filters={filters!r}"
        )


def channel_group_mask(kernel_size, mask_type, in_channels, filters, groups):
    """Returns the (kh, kw, in_channels, filters) 0/1 mask of a masked
    convolution whose channels are split into `groups` ordered groups
    (PixelRNN §3.4): channel i belongs to group i % groups. Taps before the
    centre see every channel; at the centre an output of group k sees the
    inputs of groups < k (mask `"A"`) or <= k (mask `"B"`)."""
    kh, kw = kernel_size
    mask = np.repeat(
        np.repeat(causal_mask(kernel_size, "A")[:, :, None, None], in_channels, 2), filters, 3
    )
    seen = np.arange(in_channels)[:, None] % groups
    group = np.arange(filters)[None, :] % groups
    mask[kh // 2, kw // 2] = (seen < group) if mask_type == "A" else (seen <= group)
    return mask


@register_keras_serializable(package="keras_pixelcnn")
class MaskedConv2D(CausalConv2D):
    """2D convolution whose kernel only sees earlier pixels in raster order.

    Output pixel (i, j) depends on input pixels (i', j') with i' < i, or
    i' == i and j' < j (mask `"A"`, used on the image in the first layer) or
    j' <= j (mask `"B"`, used in every later layer). The mask is a constant
    applied in `convolution_op`; it is neither a weight nor written into the
    kernel, so the kernel keeps its full `kernel_size` shape and loads like a
    `Conv2D` kernel.

    The rows below the centre are always masked out, so the convolution is
    computed with the kernel cropped to its top `kh // 2 + 1` rows and the
    input padded on top only: no FLOPs are spent on those always-zero taps.

    Args:
        filters: int, the number of output channels.
        kernel_size: int or tuple of 2 odd ints, the kernel height and width.
        mask_type: str, `"A"` (the pixel cannot see itself) or `"B"`.
        strides: must be 1; masked convolutions keep the image size.
        padding: must be `"same"`.
        data_format: str, `"channels_last"` or `"channels_first"`.
        dilation_rate: int or tuple of 2 ints, the dilation of the kernel.
        groups: must be 1.
        channel_groups: int, the ordered channel groups of a colour pixel
            (1: none). Input and output channel i belong to group
            i % channel_groups; at the centre tap an output of group k sees
            the inputs of groups < k (mask `"A"`) or <= k (mask `"B"`), so
            that channel k of a pixel is predicted from its channels < k.
            `filters` and the input channels must be multiples of it.
        **kwargs: the other `keras.layers.Conv2D` arguments (`activation`,
            `use_bias`, initializers, regularizers, constraints, `name`, ...).

    Input shape:
        4D tensor `(batch, height, width, channels)` (channels last).

    Output shape:
        4D tensor `(batch, height, width, filters)` (channels last).

    Example:

    >>> x = np.random.rand(2, 28, 28, 1).astype("float32")
    >>> MaskedConv2D(64, 7, mask_type="A")(x).shape
    (2, 28, 28, 64)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        mask_type="B",
        strides=1,
        padding="same",
        data_format=None,
        dilation_rate=1,
        groups=1,
        channel_groups=1,
        **kwargs,
    ):
        if mask_type not in MASK_TYPES:
            raise ValueError(
                "Invalid value for argument `mask_type`. Expected 'A' or 'B'. "
                f"Received: mask_type={mask_type!r}"
            )
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, tuple, list)):
            raise ValueError(
                "Invalid value for argument `kernel_size`. Expected an odd int "
                f"or a tuple of 2 odd ints. Received: kernel_size={kernel_size!r}"
            )
        sizes = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(sizes) != 2 or not all(
            isinstance(k, int) and not isinstance(k, bool) and k > 0 and k % 2 == 1 for k in sizes
        ):
            raise ValueError(
                "Invalid value for argument `kernel_size`. Expected an odd int "
                f"or a tuple of 2 odd ints. Received: kernel_size={kernel_size!r}"
            )
        if strides not in (1, (1, 1), [1, 1]):
            raise ValueError(
                f"MaskedConv2D only supports `strides=1`. Received: strides={strides!r}"
            )
        if str(padding).lower() != "same":
            raise ValueError(
                f"MaskedConv2D only supports `padding='same'`. Received: padding={padding!r}"
            )
        if groups != 1:
            raise ValueError(f"MaskedConv2D only supports `groups=1`. Received: groups={groups!r}")
        check_channel_groups(channel_groups, filters, "MaskedConv2D")
        super().__init__(
            filters=filters,
            kernel_size=sizes,
            strides=1,
            padding="same",
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=1,
            **kwargs,
        )
        self.mask_type = mask_type
        self.channel_groups = channel_groups
        self.mask = causal_mask(self.kernel_size, mask_type)

    def build(self, input_shape):
        if self.channel_groups > 1:
            in_channels = input_shape[-1 if self.data_format == "channels_last" else 1]
            if in_channels % self.channel_groups:
                raise ValueError(
                    f"MaskedConv2D with channel_groups={self.channel_groups} needs input "
                    f"channels that are a multiple of it. Received: input_shape={input_shape}"
                )
            self.mask = channel_group_mask(
                self.kernel_size, self.mask_type, in_channels, self.filters, self.channel_groups
            )
        super().build(input_shape)

    @property
    def causal_geometry(self):
        """(rows, row_shift, left, right) of the taps that can be non-zero:
        output (i, j) reads input rows i - row_shift - rows + 1 .. i - row_shift
        and columns j - left .. j + right (before dilation)."""
        kh, kw = self.kernel_size
        return kh // 2 + 1, 0, kw // 2, kw // 2

    @property
    def bottom_row_reach(self):
        row = self.mask[self.kernel_size[0] // 2]
        bottom = np.nonzero(row if row.ndim == 1 else row.any(axis=(1, 2)))[0]
        return (
            int(bottom.max()) - self.kernel_size[1] // 2
            if len(bottom)
            else -(self.kernel_size[1] // 2) - 1
        )

    def window_kernel(self, kernel):
        """The kernel over the causal window: the top rows, masked."""
        rows = self.kernel_size[0] // 2 + 1
        mask = self.mask[:rows] if self.mask.ndim == 4 else self.mask[:rows, :, None, None]
        return kernel[:rows] * ops.cast(mask, kernel.dtype)

    def convolution_op(self, inputs, kernel):
        kh, kw = self.kernel_size
        dh, dw = self.dilation_rate
        cropped = self.window_kernel(kernel)
        if (kh, kw) == (1, 1) and self.data_format == "channels_last" and jax_on_cpu():
            # XLA:CPU's 1×1 convolution is slower than the same matrix
            # product (layers/pointwise.py). TensorFlow keeps its oneDNN
            # convolution.
            return pointwise_conv(inputs, cropped)
        pad_top, pad_side = dh * (kh // 2), dw * (kw // 2)
        if self.data_format == "channels_last":
            pads = [[0, 0], [pad_top, 0], [pad_side, pad_side], [0, 0]]
        else:
            pads = [[0, 0], [0, 0], [pad_top, 0], [pad_side, pad_side]]
        if pad_top or pad_side:
            inputs = ops.pad(inputs, pads)
        return ops.conv(
            inputs,
            cropped,
            strides=1,
            padding="valid",
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"mask_type": self.mask_type, "channel_groups": self.channel_groups})
        return config
