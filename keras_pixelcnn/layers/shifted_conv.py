"""PixelCNN++'s shifted convolutions (Salimans et al. 2017; openai/pixel-cnn
`nn.py`): down-shifted and down-right-shifted, plain, strided and
transposed, and the one-pixel shifts that make the two streams causal.

A down-shifted convolution pads its input with `kh - 1` rows on top and
`(kw - 1) // 2` columns on each side: output (i, j) sees rows i - kh + 1 .. i
and columns j - (kw - 1) // 2 .. j + (kw - 1) // 2. The down-right-shifted one
pads `kh - 1` rows on top and `kw - 1` columns on the left: it sees rows up
to i and columns up to j. Followed by `DownShift` / `RightShift` they see
strictly earlier pixels only.
"""

from keras import layers, ops
from keras.saving import register_keras_serializable

from keras_pixelcnn.layers.causal_conv import CausalConv2D, CausalConv2DTranspose


def _pads(kernel_size, right):
    kh, kw = kernel_size
    if right:
        return (kh - 1, 0), (kw - 1, 0)
    return (kh - 1, 0), ((kw - 1) // 2, (kw - 1) // 2)


class _ShiftedConv2D(CausalConv2D):
    right = False

    def __init__(self, filters, kernel_size, strides=1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)
        if self.data_format != "channels_last":
            raise ValueError(
                f"{type(self).__name__} supports channels_last only. "
                f"Received: data_format={self.data_format}"
            )
        if not self.right and self.kernel_size[1] % 2 == 0:
            raise ValueError(
                f"{type(self).__name__} needs an odd kernel width. "
                f"Received: kernel_size={self.kernel_size}"
            )

    @property
    def causal_geometry(self):
        (top, _), (left, right) = _pads(self.kernel_size, self.right)
        return top + 1, 0, left, right

    def call(self, inputs):
        rows, cols = _pads(self.kernel_size, self.right)
        return super().call(ops.pad(inputs, ((0, 0), rows, cols, (0, 0))))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        rows, cols = _pads(self.kernel_size, self.right)
        padded = (b, None if h is None else h + sum(rows), None if w is None else w + sum(cols), c)
        return super().compute_output_shape(padded)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return config


@register_keras_serializable(package="keras_pixelcnn")
class DownShiftedConv2D(_ShiftedConv2D):
    """A convolution whose output (i, j) sees rows <= i, columns within
    `(kw - 1) // 2` of j (PixelCNN++'s vertical "up" stream).

    Args:
        filters: int, the output channels.
        kernel_size: int or tuple `(kh, kw)` with odd kw; (2, 3) in the paper.
        strides: int or tuple, 2 to downsample.
        **kwargs: the other `keras.layers.Conv2D` arguments.

    Input shape:
        `(batch, h, w, c)`.

    Output shape:
        `(batch, ceil(h / s), ceil(w / s), filters)`.

    Example:

    >>> DownShiftedConv2D(8, (2, 3))(np.zeros((1, 28, 28, 1))).shape
    (1, 28, 28, 8)
    """


@register_keras_serializable(package="keras_pixelcnn")
class DownRightShiftedConv2D(_ShiftedConv2D):
    """A convolution whose output (i, j) sees rows <= i and columns <= j
    (PixelCNN++'s "up-left" stream).

    Args:
        filters: int, the output channels.
        kernel_size: int or tuple `(kh, kw)`; (2, 2) in the paper.
        strides: int or tuple, 2 to downsample.
        **kwargs: the other `keras.layers.Conv2D` arguments.

    Example:

    >>> DownRightShiftedConv2D(8, (2, 2))(np.zeros((1, 28, 28, 1))).shape
    (1, 28, 28, 8)
    """

    right = True


class _ShiftedConv2DTranspose(CausalConv2DTranspose):
    def __init__(self, filters, kernel_size, strides=2, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="valid", **kwargs)
        if self.data_format != "channels_last":
            raise ValueError(
                f"{type(self).__name__} supports channels_last only. "
                f"Received: data_format={self.data_format}"
            )

    def _crop(self, h, w):
        """The rows and columns of the valid transposed output to keep."""
        sh, sw = self.strides
        left = 0 if self.right else (self.kernel_size[1] - 1) // 2
        return (0, h * sh), (left, left + w * sw)

    def call(self, inputs):
        out = super().call(inputs)
        h, w = ops.shape(inputs)[1], ops.shape(inputs)[2]
        (r0, r1), (c0, c1) = self._crop(h, w)
        return out[:, r0:r1, c0:c1, :]

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        sh, sw = self.strides
        return (b, None if h is None else h * sh, None if w is None else w * sw, self.filters)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return config


@register_keras_serializable(package="keras_pixelcnn")
class DownShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """The upsampling counterpart of `DownShiftedConv2D`: a valid transposed
    convolution cropped to `(h * s, w * s)` so that no output row sees a
    later input row (openai/pixel-cnn `down_shifted_deconv2d`).

    Args:
        filters: int, the output channels.
        kernel_size: int or tuple `(kh, kw)` with odd kw; (2, 3) in the paper.
        strides: int or tuple, 2 to upsample.
        **kwargs: the other `keras.layers.Conv2DTranspose` arguments.

    Example:

    >>> DownShiftedConv2DTranspose(8, (2, 3))(np.zeros((1, 7, 7, 4))).shape
    (1, 14, 14, 8)
    """


@register_keras_serializable(package="keras_pixelcnn")
class DownRightShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """The upsampling counterpart of `DownRightShiftedConv2D`
    (openai/pixel-cnn `down_right_shifted_deconv2d`).

    Args:
        filters: int, the output channels.
        kernel_size: int or tuple `(kh, kw)`; (2, 2) in the paper.
        strides: int or tuple, 2 to upsample.
        **kwargs: the other `keras.layers.Conv2DTranspose` arguments.

    Example:

    >>> DownRightShiftedConv2DTranspose(8, (2, 2))(np.zeros((1, 7, 7, 4))).shape
    (1, 14, 14, 8)
    """

    right = True


@register_keras_serializable(package="keras_pixelcnn")
class DownShift(layers.Layer):
    """Moves the image one row down (a zero row on top): output row i holds
    input row i - 1.

    Example:

    >>> DownShift()(np.ones((1, 3, 3, 1)))[0, :, :, 0]  # first row zeros
    """

    def call(self, inputs):
        return ops.pad(inputs, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]

    def compute_output_shape(self, input_shape):
        return input_shape


@register_keras_serializable(package="keras_pixelcnn")
class RightShift(layers.Layer):
    """Moves the image one column right (a zero column on the left).

    Example:

    >>> RightShift()(np.ones((1, 3, 3, 1)))[0, :, :, 0]  # first column zeros
    """

    def call(self, inputs):
        return ops.pad(inputs, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]

    def compute_output_shape(self, input_shape):
        return input_shape


@register_keras_serializable(package="keras_pixelcnn")
class BorderIndicator(layers.Layer):
    """Appends a channel of ones to the image. Zero padding then marks the
    image border in that channel, which the data channels (scaled to
    [-1, 1], where 0 is mid-grey) cannot (openai/pixel-cnn's `x_pad`).

    Example:

    >>> BorderIndicator()(np.zeros((2, 28, 28, 1))).shape
    (2, 28, 28, 2)
    """

    def call(self, inputs):
        return ops.concatenate([inputs, ops.ones_like(inputs[..., :1])], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] + 1)
