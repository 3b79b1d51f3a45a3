"""Why JAX trains slower than TensorFlow on a CPU: one masked 3×3 convolution
(the PixelCNN's, cropped to its 5 live taps) forward and backward, timed in
one process per backend, in three formulations for JAX.

    python benchmarks/conv_formulations.py [--batch 64] [--channels 64]

- TensorFlow: `tf.nn.conv2d` (oneDNN kernels when oneDNN is on, as the
  package sets it).
- JAX `conv`: `lax.conv_general_dilated`, what `keras.ops.conv` lowers to.
- JAX `im2col`: the live taps as shifted copies concatenated on the channel
  axis, then one matrix product.
- JAX `shifted_sum`: one matrix product per tap, summed.
- JAX `dot_then_shift`: one matrix product to every tap's output channels,
  then the shifted outputs summed.
- The residual blocks' 1×1 convolution (C → C/2) as a convolution and as a
  matrix product (`pointwise_*`, compared with TensorFlow's 1×1 conv2d).

Each JAX variant also runs with the XLA:CPU flags that route work to oneDNN
or XNNPACK, and with the flag that keeps convolutions out of YNNPACK (what
importing keras_pixelcnn sets on JAX; the JAX process here does not import
it, so the other rows are XLA's defaults). Run it on an otherwise idle
machine.
"""

import argparse
import json
import os
import subprocess
import sys

JAX_CODE = r"""
import json, sys, time, numpy as np, jax, jax.numpy as jnp
B, C = int(sys.argv[1]), int(sys.argv[2]); H = W = 28
rng = np.random.default_rng(0)
x = jnp.asarray(rng.random((B, H, W, C), dtype=np.float32))
k = jnp.asarray(rng.random((2, 3, C, C), dtype=np.float32))
mask = np.ones((2, 3), np.float32); mask[1, 2] = 0  # mask B, top two rows
taps = [(a, b) for a in range(2) for b in range(3) if mask[a, b]]
pad = lambda x: jnp.pad(x, ((0, 0), (1, 0), (1, 1), (0, 0)))
def conv(x, k):
    return jax.lax.conv_general_dilated(pad(x), k * mask[:, :, None, None], (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
def im2col(x, k):
    xp = pad(x)
    cols = jnp.concatenate([xp[:, a:a + H, b:b + W, :] for a, b in taps], -1)
    kk = jnp.concatenate([k[a, b] for a, b in taps], 0)
    return (cols.reshape(-1, len(taps) * C) @ kk).reshape(B, H, W, C)
def shifted_sum(x, k):
    xp = pad(x)
    return sum(jnp.einsum("bhwc,cf->bhwf", xp[:, a:a + H, b:b + W, :], k[a, b]) for a, b in taps)
def best(f, *args):
    jax.block_until_ready(f(*args)); t = []
    for _ in range(5):
        s = time.perf_counter(); jax.block_until_ready(f(*args)); t.append(time.perf_counter() - s)
    return min(t) * 1e3
out = {}
def dot_then_shift(x, k):  # one product to every tap's output, then the shifted sum
    xp = pad(x)
    y = jnp.einsum("bhwc,tcf->bhwtf", xp, jnp.stack([k[a, b] for a, b in taps]))
    return sum(y[:, a:a + H, b:b + W, t, :] for t, (a, b) in enumerate(taps))
for name, f in (("conv", conv), ("im2col", im2col), ("shifted_sum", shifted_sum),
                ("dot_then_shift", dot_then_shift)):
    g = jax.jit(jax.grad(lambda x, k: f(x, k).sum(), argnums=(0, 1)))
    out[name] = (best(jax.jit(f), x, k), best(g, x, k))
# the 1x1 convolutions of the residual blocks (C -> C/2): as a convolution, as a product
k1 = jnp.asarray(rng.random((1, 1, C, C // 2), dtype=np.float32))
def pointwise_conv(x, k):
    return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
def pointwise_matmul(x, k):
    return x @ k[0, 0]
for name, f in (("pointwise_conv", pointwise_conv), ("pointwise_matmul", pointwise_matmul)):
    g = jax.jit(jax.grad(lambda x, k: f(x, k).sum(), argnums=(0, 1)))
    out[name] = (best(jax.jit(f), x, k1), best(g, x, k1))
print(json.dumps(out))
"""

TF_CODE = r"""
import json, sys, time, numpy as np
import keras_pixelcnn  # sets the package's runtime options (oneDNN) first
import tensorflow as tf
B, C = int(sys.argv[1]), int(sys.argv[2]); H = W = 28
rng = np.random.default_rng(0)
x = tf.constant(rng.random((B, H, W, C), dtype=np.float32))
k = tf.Variable(rng.random((2, 3, C, C), dtype=np.float32))
mask = np.ones((2, 3), np.float32); mask[1, 2] = 0
@tf.function
def fwd(x):
    return tf.nn.conv2d(tf.pad(x, ((0, 0), (1, 0), (1, 1), (0, 0))), k * mask[:, :, None, None],
                        1, "VALID")
@tf.function
def grad(x):
    with tf.GradientTape() as t:
        t.watch(x); y = tf.reduce_sum(fwd(x))
    return t.gradient(y, [x, k])
def best(f):
    f(x); t = []
    for _ in range(5):
        s = time.perf_counter(); tf.nest.map_structure(lambda v: v.numpy(), f(x))
        t.append(time.perf_counter() - s)
    return min(t) * 1e3
k1 = tf.Variable(rng.random((1, 1, C, C // 2), dtype=np.float32))
@tf.function
def fwd1(x):
    return tf.nn.conv2d(x, k1, 1, "VALID")
@tf.function
def grad1(x):
    with tf.GradientTape() as t:
        t.watch(x); y = tf.reduce_sum(fwd1(x))
    return t.gradient(y, [x, k1])
print(json.dumps({"conv": (best(fwd), best(grad)), "pointwise": (best(fwd1), best(grad1))}))
"""

FLAGS = (
    "",
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_use_xnnpack=true",
    # what importing keras_pixelcnn sets on JAX (runtime.fast_xla_cpu_convolutions)
    "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",
)


def _run(code, args, env):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=root, **env)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=64)
    a = parser.parse_args()
    args = [str(a.batch), str(a.channels)]
    tf_times = _run(TF_CODE, args, {})
    print(f"batch {a.batch}, {a.channels} channels, 28x28; times in ms (best of 5)")
    print("| backend | formulation | XLA_FLAGS | forward | backward | vs TF fwd | vs TF bwd |")
    print("|---|---|---|---|---|---|---|")
    for name, (fwd, grad) in tf_times.items():
        print(f"| tensorflow | {name} (conv2d) | - | {fwd:.1f} | {grad:.1f} | 1.0x | 1.0x |")
    for flags in FLAGS:
        for name, (fwd, grad) in _run(JAX_CODE, args, {"XLA_FLAGS": flags}).items():
            # the 1x1 rows compare with TensorFlow's 1x1 convolution
            tf_fwd, tf_grad = tf_times["pointwise" if name.startswith("pointwise") else "conv"]
            print(
                f"| jax | {name} | {flags or '-'} | {fwd:.1f} | {grad:.1f} | "
                f"{fwd / tf_fwd:.1f}x | {grad / tf_grad:.1f}x |"
            )


if __name__ == "__main__":
    main()
