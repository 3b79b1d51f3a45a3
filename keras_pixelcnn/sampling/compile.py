"""Compiling a function that uses a Keras model, on the current backend.

`compile_model_function(model, fn)` returns `compiled(*args)` computing
`fn(*args)`, where `fn` may call the model or any of its layers and reads
the model's *current* weights at every call:

- JAX: `jax.jit` of a pure function that takes the weights as arguments and
  runs `fn` inside a `keras.StatelessScope` (a closure over the model would
  freeze the weights at trace time);
- TensorFlow: `tf.function`, which reads the model's variables live
  (without AutoGraph: the loops are `ops.fori_loop` already, and AutoGraph
  would re-read the source files and write temporary modules at trace time);
- torch: eager, under `torch.no_grad()`.

`fn` itself must use only `keras.ops`.
"""

import keras


def compile_model_function(model, fn, jit_compile=None):
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        variables = list(model.variables)

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)

        def run(*args):
            return jitted([v.value for v in variables], *args)

        return run
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(
            fn, jit_compile=bool(jit_compile), reduce_retracing=True, autograph=False
        )
    if backend == "torch":
        import torch

        def run(*args):
            with torch.no_grad():
                return fn(*args)

        return run
    raise RuntimeError(f"unsupported Keras backend {backend!r}")
