"""The likelihood-dependent ends of every architecture: how the image enters
the network and what the network's output means."""

from keras import layers

from keras_pixelcnn.layers.output_distribution import OutputDistribution
from keras_pixelcnn.likelihoods import Bernoulli


def resolve_likelihood(likelihood):
    """None → `Bernoulli()`; a likelihood object is returned as it is."""
    return Bernoulli() if likelihood is None else likelihood


def network_input(image, likelihood):
    """0/1 images enter as they are; 256-level images (0..255) are scaled to
    [-1, 1] by a `Rescaling` layer inside the model, so that the model reads
    pixel values in data units, like its samples."""
    if likelihood.levels == 2:
        return image
    return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_input")(image)


def output_parameters(params, likelihood):
    """Bernoulli models end in their logits (the graphs of the shipped
    models); other likelihoods end in an `OutputDistribution` layer that
    records them in the saved model."""
    if isinstance(likelihood, Bernoulli):
        return params
    return OutputDistribution(likelihood, name="output_distribution")(params)
