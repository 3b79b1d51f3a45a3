"""Training on several devices or machines with the engines that exist:
`tf.distribute` on the TensorFlow backend, `keras.distribution` on JAX.

    none           one device (the default)
    mirrored       tf.distribute.MirroredStrategy: every GPU of this host, or
                   every logical CPU device when there is no GPU
    multi-worker   tf.distribute.MultiWorkerMirroredStrategy: several hosts,
                   configured by the TF_CONFIG environment variable
    data-parallel  keras.distribution.DataParallel: every JAX device

The global batch (`--batch-size`) is split across the replicas; the model,
the optimizer, the callbacks and the backups are the usual ones.
"""

import contextlib
import os

from keras_pixelcnn.errors import PixelCNNError, UsageError

# Keras is imported inside the functions: the configuration checks a mode
# before the CLI has chosen the backend.
DISTRIBUTE_MODES = ("none", "mirrored", "multi-worker", "data-parallel")
_BACKEND_OF = {"mirrored": "tensorflow", "multi-worker": "tensorflow", "data-parallel": "jax"}


def check_distribute(mode, backend=None):
    """Raises `PixelCNNError` unless `mode` exists and the backend has it."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if mode not in DISTRIBUTE_MODES:
        raise UsageError(
            f"unknown distribution mode {mode!r}; choose one of {', '.join(DISTRIBUTE_MODES)}"
        )
    needed = _BACKEND_OF.get(mode)
    if needed and needed != backend:
        alternative = {"tensorflow": "mirrored or multi-worker", "jax": "data-parallel"}.get(
            backend, "none"
        )
        raise UsageError(
            f"--distribute {mode} needs the {needed} backend, not {backend}; "
            f"on {backend} use {alternative}"
        )
    if mode == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise PixelCNNError("--distribute multi-worker needs the TF_CONFIG environment variable")


def _mirrored_devices():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def make_strategy(mode):
    """The `tf.distribute` strategy for a TF mode (None for the others)."""
    import tensorflow as tf

    if mode == "mirrored":
        return tf.distribute.MirroredStrategy(devices=_mirrored_devices())
    if mode == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


@contextlib.contextmanager
def distribution_scope(mode):
    """Builds, compiles and fits inside this scope. Yields the number of
    replicas the global batch is split over."""
    check_distribute(mode)
    if mode in ("mirrored", "multi-worker"):
        strategy = make_strategy(mode)
        with strategy.scope():
            yield strategy.num_replicas_in_sync
        return
    if mode == "data-parallel":
        import keras

        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
        return
    yield 1


def prepare_model(model, mode):
    """Works around two Keras 3.15 bugs that stop `fit` under
    `MultiWorkerMirroredStrategy` (tensorflow/tensorflow#72388), only when
    that mode is chosen:

    1. before `fit`, Keras reduces the first (x, y) batch with
       `strategy.reduce("MEAN", batch)` only to learn its shapes, and the
       collective strategy cannot reduce a tuple: the first replica's local
       batch (same shapes) is passed instead;
    2. the per-step logs are reduced with `strategy.reduce("MEAN", v,
       axis=0)`, which fails for the scalar loss: scalars are reduced with
       `axis=None` (the mean over replicas, what axis=0 means for them).

    The gradients and weights are untouched by both: they are all-reduced by
    the optimizer as usual.
    """
    if mode != "multi-worker" or not hasattr(model, "_maybe_symbolic_build"):
        return model
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = model._maybe_symbolic_build

    def first_local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return model.distribute_strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(first_local, next(it))
                break
            return original(data_batch=data_batch)
        return original(iterator=iterator, data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build
    if not getattr(tf_trainer.reduce_per_replica, "_keras_pixelcnn_patched", False):
        reduce_per_replica = tf_trainer.reduce_per_replica

        def patched(values, strategy, reduction):
            if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
                strategy
            ):

                def scalar_safe(v):
                    if isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v):
                        if v.shape.rank == 0:
                            return strategy.reduce("MEAN", v, axis=None)
                    return reduce_per_replica(v, strategy, reduction)

                return tree.map_structure(scalar_safe, values)
            return reduce_per_replica(values, strategy, reduction)

        patched._keras_pixelcnn_patched = True
        tf_trainer.reduce_per_replica = patched
    return model
