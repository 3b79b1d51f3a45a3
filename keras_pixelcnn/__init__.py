"""keras-pixelcnn: PixelCNN-family autoregressive image models in Keras 3.

Importing this package registers its layers, so `keras.saving.load_model`
loads its `.keras` files without `custom_objects`.
"""

from keras_pixelcnn.runtime import enable_onednn

enable_onednn()  # before anything imports TensorFlow (see runtime.py)

from keras_pixelcnn.data import binarize, load_mnist
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.evaluation import bernoulli_nll, evaluate_nll, per_image_nll
from keras_pixelcnn.fast_sampling import CachedSampler
from keras_pixelcnn.layers import (
    GatedActivation,
    HorizontalStackConv2D,
    MaskedConv2D,
    VerticalStackConv2D,
    causal_mask,
    gated_block,
    residual_block,
)
from keras_pixelcnn.models import build_gated_pixelcnn, build_pixelcnn
from keras_pixelcnn.sampling import ReferenceSampler, draw_noise, make_sampler, sample
from keras_pixelcnn.saving import load_model
from keras_pixelcnn.training import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "CachedSampler",
    "GatedActivation",
    "HorizontalStackConv2D",
    "MaskedConv2D",
    "PixelCNNError",
    "ReferenceSampler",
    "TrainConfig",
    "VerticalStackConv2D",
    "bernoulli_nll",
    "binarize",
    "build_gated_pixelcnn",
    "build_pixelcnn",
    "causal_mask",
    "draw_noise",
    "evaluate_nll",
    "gated_block",
    "load_mnist",
    "load_model",
    "make_sampler",
    "per_image_nll",
    "residual_block",
    "sample",
    "train",
]
