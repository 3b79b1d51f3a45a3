"""A straightforward Keras 3 PixelCNN: the seed architecture with every
masked convolution a full `Conv2D` kernel multiplied by its mask (no
cropping), float32, `padding="same"`. The baseline of
`benchmarks/train_speed.py`."""

import keras
import numpy as np
from keras import layers, ops


class FullMaskedConv2D(layers.Conv2D):
    def __init__(self, filters, kernel_size, mask_type, **kwargs):
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        k = kernel_size
        mask = np.ones((k, k), "float32")
        mask[k // 2, k // 2 + (mask_type == "B") :] = 0
        mask[k // 2 + 1 :] = 0
        self.mask = mask

    def convolution_op(self, inputs, kernel):
        return ops.conv(
            inputs, kernel * ops.cast(self.mask[:, :, None, None], kernel.dtype), padding="same"
        )


def build_baseline(h=64, blocks=4):
    inputs = keras.Input((28, 28, 1))
    x = FullMaskedConv2D(h, 7, "A")(inputs)
    for _ in range(blocks):
        y = layers.ReLU()(x)
        y = layers.Conv2D(h // 2, 1)(y)
        y = layers.ReLU()(y)
        y = FullMaskedConv2D(h // 2, 3, "B")(y)
        y = layers.ReLU()(y)
        y = layers.Conv2D(h, 1)(y)
        x = layers.Add()([x, y])
    x = layers.ReLU()(x)
    x = FullMaskedConv2D(h, 1, "B")(x)
    x = layers.ReLU()(x)
    return keras.Model(inputs, layers.Conv2D(1, 1)(x), name="keras_baseline")
