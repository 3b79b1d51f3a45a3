from keras_pixelcnn.layers.masked_conv import MaskedConv2D, causal_mask
from keras_pixelcnn.layers.residual_block import residual_block

__all__ = ["MaskedConv2D", "causal_mask", "residual_block"]
