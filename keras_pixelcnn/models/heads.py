"""The likelihood-dependent ends of every architecture: how the image enters
the network and what the network's output means."""

from keras import layers

from keras_pixelcnn.layers.output_distribution import OutputDistribution
from keras_pixelcnn.likelihoods import Bernoulli


def resolve_likelihood(likelihood):
    """None → `Bernoulli()`; a likelihood object is returned as it is."""
    return Bernoulli() if likelihood is None else likelihood


def channel_groups(likelihood):
    """The ordered channel groups the network's masks need: one per channel
    for a likelihood that reads a pixel's channels one after another
    (`sequential_channels`), else 1 (the network never sees the current
    pixel)."""
    return likelihood.channels if likelihood.sequential_channels else 1


def check_unordered_channels(likelihood, architecture, why):
    """Raises `ValueError` when `likelihood` needs channel-group masks
    (`sequential_channels`) that `architecture` does not have."""
    if likelihood.sequential_channels:
        raise ValueError(
            f"{architecture} cannot model {likelihood!r}: {why}. Use "
            f"DiscretizedLogisticMixture(channels={likelihood.channels}), whose coupling orders "
            "the channels inside the pixel, or build_pixelcnn or build_gated_pixelcnn, whose masks do"
        )


def network_input(image, likelihood):
    """0/1 images enter as they are; L-level images (0 .. L - 1) are scaled
    to [-1, 1] by a `Rescaling` layer inside the model, so that the model
    reads pixel values in data units, like its samples."""
    if likelihood.levels == 2:
        return image
    scale = 1.0 / 127.5 if likelihood.levels == 256 else 2.0 / (likelihood.levels - 1)
    return layers.Rescaling(scale, offset=-1.0, name="scale_input")(image)


def output_parameters(params, likelihood):
    """Bernoulli models end in their logits (the graphs of the shipped
    models); other likelihoods end in an `OutputDistribution` layer that
    records them in the saved model."""
    if isinstance(likelihood, Bernoulli):
        return params
    return OutputDistribution(likelihood, name="output_distribution")(params)
