"""A small MNIST classifier on binarized digits, the yardstick for samples.

It plays the role Inception plays for natural images: its class posterior
gives the classifier score and the label accuracy of conditional samples, and
its penultimate layer ("features", 128 units) gives the Fréchet distance.
The shipped weights are `saved_models/mnist_classifier.keras`; retrain with

    python benchmarks/train_classifier.py --data ../shared/data/mnist.npz
"""

import os
import zipfile

import keras
import numpy as np
from keras import layers

from keras_pixelcnn import shipped
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.errors import reason as error_reason

CLASSIFIER_PATH = str(shipped.shipped_model(shipped.CLASSIFIER))
FEATURES_LAYER = "features"
_HEAD = "_keras_pixelcnn_features_head"


def build_classifier(input_shape=(28, 28, 1), num_classes=10, name="mnist_classifier"):
    """Builds the classifier: two conv-conv-pool stages, a 128-unit feature
    layer and `num_classes` logits. Random shifts of up to 2 pixels and small
    rotations augment the training batches (inactive at inference)."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.RandomTranslation(
        2 / 28, 2 / 28, fill_mode="constant", interpolation="nearest", name="shift"
    )(inputs)
    x = layers.RandomRotation(0.03, fill_mode="constant", interpolation="nearest", name="rotate")(x)
    for n, filters in enumerate((32, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{n}a")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv_{n}b")(x)
        x = layers.MaxPooling2D(name=f"pool_{n}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout_1")(x)
    x = layers.Dense(128, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3, name="dropout_2")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def train_classifier(mnist, epochs=8, batch_size=128, learning_rate=1e-3, seed=0, verbose=2):
    """Trains the classifier on `mnist.train` (binarized) with a cosine-decayed
    Adam; returns `(model, test_accuracy)`."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(mnist.train.images.shape[1:])
    steps = epochs * int(np.ceil(len(mnist.train.images) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(
        keras.optimizers.Adam(schedule),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        mnist.train.images,
        mnist.train.labels,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(mnist.validation.images, mnist.validation.labels),
        verbose=verbose,
    )
    return model, accuracy(model, mnist.test.images, mnist.test.labels)


def load_classifier(path=None):
    """Loads the classifier (default: the shipped one), checked to be one:
    28×28×1 images in, one logit per class out, and the `FEATURES_LAYER`
    the Fréchet distance reads (`PixelCNNError` otherwise)."""
    path = os.fspath(path or CLASSIFIER_PATH)
    if not os.path.exists(path):
        raise PixelCNNError(
            f"classifier not found: {path} (train one with benchmarks/train_classifier.py)"
        )
    if os.path.isdir(path) or not zipfile.is_zipfile(path):
        raise PixelCNNError(f"classifier {path} is not a .keras archive")
    try:
        model = keras.saving.load_model(path)
    except Exception as e:  # Keras raises many types for bad archives
        reason = error_reason(e)
        raise PixelCNNError(f"could not load classifier {path}: {reason}") from None
    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    names = {layer.name for layer in getattr(model, "layers", [])}
    if (
        len(inputs) != 1
        or tuple(inputs[0].shape[1:]) != (28, 28, 1)
        or len(outputs) != 1
        or len(outputs[0].shape) != 2
        or FEATURES_LAYER not in names
    ):
        raise PixelCNNError(
            f"{path} is not an MNIST classifier like benchmarks/train_classifier.py's "
            f"(28×28×1 images → class logits, with a {FEATURES_LAYER!r} layer)"
        )
    return model


class _ImagesDone(keras.callbacks.Callback):
    """Reports `progress(done + offset, total)` after each predicted batch."""

    def __init__(self, progress, offset, count, total, batch_size):
        super().__init__()
        self._report = progress
        self._offset, self._count, self._total = offset, count, total
        self._batch_size = batch_size

    def on_predict_batch_end(self, batch, logs=None):
        done = min((batch + 1) * self._batch_size, self._count)
        self._report(self._offset + done, self._total)


def predict(classifier, images, batch_size=500, progress=None, offset=0, total=None):
    """Returns `(probabilities (n, classes), features (n, 128))` as float64.

    `progress(done, total)` is called after every batch; `offset` and `total`
    let several calls report as one task (default: this call alone)."""
    head = getattr(classifier, _HEAD, None)
    if head is None:  # made once per classifier: a new model per call would retrace
        head = keras.Model(
            classifier.input,
            [classifier.output, classifier.get_layer(FEATURES_LAYER).output],
        )
        object.__setattr__(classifier, _HEAD, head)  # not a tracked Keras attribute
    images = np.asarray(images, "float32")
    callbacks = []
    if progress is not None:
        total = len(images) + offset if total is None else total
        callbacks = [_ImagesDone(progress, offset, len(images), total, batch_size)]
    logits, features = head.predict(images, batch_size=batch_size, verbose=0, callbacks=callbacks)
    logits = np.asarray(logits, "float64")
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True), np.asarray(features, "float64")


def accuracy(classifier, images, labels):
    probs, _ = predict(classifier, images)
    return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))
