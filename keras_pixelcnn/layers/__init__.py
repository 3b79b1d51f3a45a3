from keras_pixelcnn.layers.causal_conv import CausalConv2D
from keras_pixelcnn.layers.gated_activation import GatedActivation
from keras_pixelcnn.layers.gated_block import gated_block
from keras_pixelcnn.layers.masked_conv import MaskedConv2D, causal_mask
from keras_pixelcnn.layers.output_distribution import OutputDistribution
from keras_pixelcnn.layers.residual_block import residual_block
from keras_pixelcnn.layers.stack_conv import HorizontalStackConv2D, VerticalStackConv2D

__all__ = [
    "CausalConv2D",
    "GatedActivation",
    "HorizontalStackConv2D",
    "MaskedConv2D",
    "OutputDistribution",
    "VerticalStackConv2D",
    "causal_mask",
    "gated_block",
    "residual_block",
]
