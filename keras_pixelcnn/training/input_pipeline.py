"""An epoch's arrays as `fit` reads them, in their fixed order.

On TensorFlow, `fit` turns NumPy arrays into a `tf.data` pipeline that
gathers each batch in a parallel map, with tf.data's autotuning. On a 2-core
Intel Xeon that pipeline held a PixelCNN's training steps to 172 ms in most
epochs (373-374 images/s, and the same for a model of another cost); fed by
`fit_inputs`'s pipeline no epoch sat there (381-461 images/s in the same
runs; `python benchmarks/train_speed.py`, benchmarks/README.md, "The input
pipeline, and the peer on an Intel Xeon"). The batches are the same, in the
same order.

The other backends read the arrays as they are.
"""

import keras


def fit_inputs(x, y, batch_size):
    """`fit`'s data arguments for the arrays `x` and `y`,
    read in order in batches of `batch_size`: a dict to splat into the call.

    Args:
        x: array, or list of arrays (a conditional model's images and labels).
        y: array, the targets.
        batch_size: int, images per batch (the last batch may be smaller).
    """
    if keras.backend.backend() != "tensorflow":
        return dict(x=x, y=y, batch_size=batch_size)
    import tensorflow as tf

    inputs = tuple(x) if isinstance(x, (list, tuple)) else x
    dataset = tf.data.Dataset.from_tensor_slices((inputs, y)).batch(batch_size).prefetch(1)
    options = tf.data.Options()
    options.autotune.enabled = False
    # as Keras shards arrays between the workers of a multi-worker strategy
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dict(x=dataset.with_options(options))


def validation_inputs(x, y, batch_size):
    """`fit`'s validation arguments for the arrays `x` and `y`, as
    `fit_inputs` reads them: a dict to splat into the call."""
    data = fit_inputs(x, y, batch_size)
    if "y" in data:
        return dict(validation_data=(x, y), validation_batch_size=batch_size)
    return dict(validation_data=data["x"])
