"""SavedModel export: a model served by TensorFlow alone, no keras_pixelcnn.

The SavedModel has three signatures (batch dimension free):

- `sample(noise[, labels]) → {"images"}`: images from uniform [0, 1) noise
  of shape (batch, h, w, k) (k = 1 for binary models, 2 for the logistic
  mixture; and int32 labels (batch,) for conditional models), drawn by the
  fast cached sampler (every family has one). The same noise gives the
  same images as `keras_pixelcnn` (`draw_noise(n, shape, seed)` is NumPy's
  `default_rng(seed).random((n, h, w, k), dtype=float32)`). 0/1 images, or
  0..255 for 256-level models.
- `log_prob(images[, labels]) → {"log_prob", "nll_nats"}`: the exact
  log-likelihood of each image under the model's likelihood, and its
  negative, the NLL in nats.
- `serve(images[, labels]) → {"logits"}`: the per-pixel output (logits, or
  the likelihood's parameters).

Export runs on the TensorFlow backend. A `.keras` file trained under JAX or
torch loads unchanged under TensorFlow, so export it there.
"""

import json
import os
import shutil
import tempfile

from keras_pixelcnn.atomic import (
    check_output_directory,
    current_umask,
    remove_stale_temps,
    temp_prefix,
)
from keras_pixelcnn.errors import UsageError


def export_saved_model(model, path, overwrite=False):
    """Writes `model` as a TF SavedModel at `path` (atomically).

    Args:
        model: a PixelCNN-family `keras.Model`.
        path: str, the SavedModel directory to create.
        overwrite: bool, replace an existing directory at `path`.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(
            "SavedModel export runs on the TensorFlow backend; run it with "
            "--backend tensorflow (the .keras file loads there unchanged)"
        )
    import tensorflow as tf
    from keras import ops

    from keras_pixelcnn.models.contract import (
        image_shape,
        is_conditional,
        levels,
        likelihood,
        noise_shape,
        num_classes,
    )
    from keras_pixelcnn.sampling import make_sampler
    from keras_pixelcnn.serving import METADATA, check_export_target

    path = os.path.abspath(os.fspath(path))
    check_export_target(path, overwrite)
    parent = check_output_directory(path)

    h, w, c = model.inputs[0].shape[1:]
    conditional = is_conditional(model)
    sampler = make_sampler(model, "fast")
    lik = likelihood(model)
    images = tf.TensorSpec((None, h, w, c), tf.float32, name="images")
    noise = tf.TensorSpec((None, *noise_shape(model)), tf.float32, name="noise")
    labels = tf.TensorSpec((None,), tf.int32, name="labels")

    def nll(x, params):
        per_pixel = -lik.log_prob(ops.cast(params, "float32"), x)
        value = ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=1)
        return {"log_prob": -value, "nll_nats": value}

    archive = keras.export.ExportArchive()
    archive.track(model)
    if conditional:
        archive.add_endpoint(
            "sample",
            lambda noise, labels: {"images": sampler.sample_tensor(noise, labels)},
            input_signature=[noise, labels],
        )
        archive.add_endpoint(
            "log_prob",
            lambda images, labels: nll(images, model([images, labels], training=False)),
            input_signature=[images, labels],
        )
        archive.add_endpoint(
            "serve",
            lambda images, labels: {"logits": model([images, labels], training=False)},
            input_signature=[images, labels],
        )
    else:
        archive.add_endpoint(
            "sample",
            lambda noise: {"images": sampler.sample_tensor(noise)},
            input_signature=[noise],
        )
        archive.add_endpoint(
            "log_prob",
            lambda images: nll(images, model(images, training=False)),
            input_signature=[images],
        )
        archive.add_endpoint(
            "serve",
            lambda images: {"logits": model(images, training=False)},
            input_signature=[images],
        )
    remove_stale_temps(path)
    tmp = tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        with open(os.path.join(tmp, METADATA), "w") as f:
            json.dump(
                {
                    "format": "keras-pixelcnn SavedModel",
                    "image_shape": list(image_shape(model)),
                    "levels": levels(model),
                    "num_classes": num_classes(model) if conditional else None,
                },
                f,
                indent=2,
            )
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes a 0700 directory
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".old.tmp", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
