"""layers/pointwise.py: the 1×1 convolution as a matrix product, with its own
gradient on JAX with a CPU."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_pixelcnn.layers.pointwise import pointwise_conv


def _arrays(cin=5, cout=3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6, cin)).astype("float32")
    k = rng.normal(size=(1, 1, cin, cout)).astype("float32")
    return x, k


def test_pointwise_conv_is_the_1x1_convolution():
    x, k = _arrays()
    out = ops.convert_to_numpy(pointwise_conv(x, k))
    np.testing.assert_allclose(out, np.einsum("bhwc,cf->bhwf", x, k[0, 0]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the custom gradient is JAX's")
def test_the_jax_gradient_equals_autodiff_of_the_product():
    """Bugs: the kernel gradient transposed or summed over the wrong axes, the
    input gradient not multiplied by the kernel's transpose."""
    import jax
    import jax.numpy as jnp

    x, k = _arrays(cin=5, cout=3)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4, 6, 3)), "float32")

    def loss(f):
        return lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * w)

    custom = jax.jit(jax.grad(loss(pointwise_conv), argnums=(0, 1)))(x, k)
    plain = jax.grad(loss(lambda x, k: jnp.einsum("bhwc,cf->bhwf", x, k[0, 0])), (0, 1))(x, k)
    for got, want in zip(custom, plain):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
