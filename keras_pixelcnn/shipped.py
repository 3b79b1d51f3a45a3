"""The models shipped with keras-pixelcnn, wherever the package is installed.

A wheel installs them as package data (`keras_pixelcnn/saved_models/`); a
checkout or an editable install reads the repository's `saved_models/`.
"""

from pathlib import Path

PIXELCNN = "pixelcnn.keras"
GATED_CONDITIONAL = "gated_pixelcnn_conditional.keras"
PIXELCNN_DYNAMIC = "pixelcnn_dynamic.keras"  # trained on stochastically binarized MNIST
PIXELCNN_PP = "pixelcnn_pp.keras"  # 256 levels, discretized logistic mixture
# PixelCNN++ with a Bernoulli likelihood on stochastically binarized MNIST: the
# best of the standard-benchmark models
PIXELCNN_PP_DYNAMIC = "pixelcnn_pp_dynamic.keras"
CLASSIFIER = "mnist_classifier.keras"
# A colour PixelCNN++ on 32×32 crops of photographs (256 levels, the colour mixture)
PHOTOS = "photos/pixelcnn_pp_photos.keras"
# What `generate`, `complete`, `evaluate` and `show progress` use without
# --model: the best model shipped (test NLL 0.0704 nats/pixel; 96% of its
# conditional samples are recognized as their label). The reference
# PixelCNN is `--model` PIXELCNN away.
DEFAULT = GATED_CONDITIONAL


def shipped_dir():
    """The directory holding the shipped `.keras` files."""
    package = Path(__file__).resolve().parent
    installed = package / "saved_models"
    if installed.is_dir():
        return installed
    return package.parent / "saved_models"


def shipped_model(name):
    """The path of the shipped model file `name` (e.g. `"pixelcnn.keras"`)."""
    return shipped_dir() / name
