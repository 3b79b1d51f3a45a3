"""The floor of the PixelCNN's cached sampler: its pixel step's products alone.

    python benchmarks/pixel_step_products.py                # batches 8 32 128
    python benchmarks/pixel_step_products.py --batches 32

One pixel step of the shipped PixelCNN's cached sampler multiplies 14 times
(per residual block: 1×1 64→32, the masked 3×3's current-row taps 64→32,
1×1 32→64; then the 1×1 head 64→64 and 64→1), at a batch of one thread's
images. This times those 14 products with their ReLUs, chained, in a
compiled loop of 784 steps (TensorFlow, `jit_compile=True`), with no caches,
windows or sampling: the part of `benchmarks/sampler_fixed_cost.py`'s time
that is arithmetic. Run it on an otherwise idle machine.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = [(64, 32), (64, 32), (32, 64)] * 4 + [(64, 64), (64, 1)]
STEPS = 28 * 28


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 32, 128])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import keras_pixelcnn  # noqa: F401, I001  (first: its runtime options, oneDNN on, as in the CLI)
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernels = [tf.constant(0.1 * rng.normal(size=s).astype("float32")) for s in SHAPES]

    @tf.function(jit_compile=True)
    def run(x):
        def body(i, x):
            h = x
            for b in range(4):
                a = tf.nn.relu(tf.matmul(tf.nn.relu(h), kernels[3 * b]))
                a = tf.nn.relu(tf.matmul(tf.concat([a, a], -1), kernels[3 * b + 1]))
                h = h + tf.matmul(a, kernels[3 * b + 2])
            out = tf.matmul(tf.nn.relu(tf.matmul(tf.nn.relu(h), kernels[12])), kernels[13])
            return i + 1, x + 0.001 * out

        return tf.while_loop(lambda i, x: i < STEPS, body, (0, x))[1]

    print(f"{'batch':>6}  {'ms for 784 steps':>16}")
    for batch in args.batches:
        x = tf.constant(rng.normal(size=(batch, 64)).astype("float32"))
        run(x).numpy()  # compile / warm up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(x).numpy()
            best = min(best, time.perf_counter() - start)
        print(f"{batch:>6}  {1e3 * best:>16.1f}", flush=True)


if __name__ == "__main__":
    main()
