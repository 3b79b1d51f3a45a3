"""keras-pixelcnn: PixelCNN-family autoregressive image models in Keras 3.

Importing this package is light (no Keras, no TensorFlow), so the command
line's `--help` and the Keras-free SavedModel path stay fast. The public API
below is imported on first use.

The package's layers are registered with Keras as soon as Keras is imported
(now, if it already is), so `keras.saving.load_model` loads this package's
`.keras` files without `custom_objects` in any process that imported
`keras_pixelcnn`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from keras_pixelcnn.runtime import (
    captured_stderr,
    enable_onednn,
    fast_xla_cpu_convolutions,
    quiet_tensorflow_logs,
)

enable_onednn()  # before anything imports TensorFlow (see runtime.py)
fast_xla_cpu_convolutions()  # before JAX's first computation (see runtime.py)
quiet_tensorflow_logs()

__version__ = "0.1.0"

# public name → the module that defines it
_API = {
    "binarize": "data",
    "load_mnist": "data",
    "PixelCNNError": "errors",
    "bernoulli_nll": "evaluation.nll",
    "evaluate_nll": "evaluation.nll",
    "per_image_nll": "evaluation.nll",
    "CausalConv2D": "layers",
    "GatedActivation": "layers",
    "HorizontalStackConv2D": "layers",
    "MaskedConv2D": "layers",
    "VerticalStackConv2D": "layers",
    "causal_mask": "layers",
    "gated_block": "layers",
    "residual_block": "layers",
    "build_gated_pixelcnn": "models",
    "build_pixelcnn": "models",
    "build_pixelcnn_pp": "models",
    "Bernoulli": "likelihoods",
    "Categorical": "likelihoods",
    "DiscretizedLogisticMixture": "likelihoods",
    "NegativeLogLikelihood": "likelihoods",
    "CachedSampler": "sampling.cached",
    "ReferenceSampler": "sampling.reference",
    "complete": "sampling.completion",
    "draw_noise": "sampling",
    "make_sampler": "sampling",
    "sample": "sampling",
    "export_saved_model": "export",
    "load_model": "keras_file",
    "TrainConfig": "training",
    "train": "training",
}

__all__ = sorted(_API)


def __getattr__(name):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))


def _register_layers():
    importlib.import_module(f"{__name__}.layers")


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers the package's layers right after `keras` is first imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            with captured_stderr():  # the backend's C++ start-up chatter (replayed on failure)
                exec_module(module)
            _register_layers()

        loader.exec_module = exec_then_register
        return spec


if sys.modules.get("keras") is not None:  # Keras is already loaded
    _register_layers()
elif "keras" not in sys.modules and not any(
    isinstance(f, _RegisterWhenKerasLoads) for f in sys.meta_path
):
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
