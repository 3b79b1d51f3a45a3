from keras_pixelcnn.layers.causal_conv import CausalConv2D, CausalConv2DTranspose
from keras_pixelcnn.layers.concat_elu import ConcatELU
from keras_pixelcnn.layers.gated_activation import GatedActivation
from keras_pixelcnn.layers.gated_block import gated_block
from keras_pixelcnn.layers.gated_resnet import SigmoidGate, gated_resnet
from keras_pixelcnn.layers.masked_conv import MaskedConv2D, causal_mask
from keras_pixelcnn.layers.output_distribution import OutputDistribution
from keras_pixelcnn.layers.residual_block import residual_block
from keras_pixelcnn.layers.shifted_conv import (
    BorderIndicator,
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShift,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
    RightShift,
)
from keras_pixelcnn.layers.stack_conv import HorizontalStackConv2D, VerticalStackConv2D

__all__ = [
    "BorderIndicator",
    "ConcatELU",
    "DownRightShiftedConv2D",
    "DownRightShiftedConv2DTranspose",
    "DownShift",
    "DownShiftedConv2D",
    "DownShiftedConv2DTranspose",
    "RightShift",
    "SigmoidGate",
    "gated_resnet",
    "CausalConv2D",
    "CausalConv2DTranspose",
    "GatedActivation",
    "HorizontalStackConv2D",
    "MaskedConv2D",
    "OutputDistribution",
    "VerticalStackConv2D",
    "causal_mask",
    "gated_block",
    "residual_block",
]
