"""Compiling a function of a Keras model on the current backend.

`compile_model_function(model, fn)` returns `compiled(*args)` that computes
`fn(call, *args)`, where `call(inputs)` runs the model in inference mode. The
model's *current* weights are used at every call:

- JAX: `jax.jit` over `model.stateless_call`, with the weights passed as
  arguments (a closure would freeze them at trace time);
- TensorFlow: `tf.function`, which reads the model's variables live;
- torch: eager, under `torch.no_grad()`.

`fn` itself must use only `keras.ops`.
"""

import keras


def compile_model_function(model, fn, jit_compile=None):
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def pure(trainable, non_trainable, *args):
            def call(inputs):
                outputs, _ = model.stateless_call(
                    trainable, non_trainable, inputs, training=False
                )
                return outputs

            return fn(call, *args)

        jitted = jax.jit(pure)

        def run(*args):
            return jitted(
                [v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                *args,
            )

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        def call(inputs):
            return model(inputs, training=False)

        return tf.function(
            lambda *args: fn(call, *args),
            jit_compile=bool(jit_compile),
            reduce_retracing=True,
        )
    if backend == "torch":
        import torch

        def run(*args):
            with torch.no_grad():
                return fn(lambda inputs: model(inputs, training=False), *args)

        return run
    raise RuntimeError(f"unsupported Keras backend {backend!r}")
