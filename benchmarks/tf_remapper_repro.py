"""TensorFlow's grappler remapper fails on the PixelCNN's residual stack.

    python benchmarks/tf_remapper_repro.py

With TensorFlow's C++ log on (TF_CPP_MIN_LOG_LEVEL=0; keras_pixelcnn sets it
to 3 when imported before TensorFlow) a PixelCNN's `predict` logs

    meta_optimizer.cc remapper failed: INVALID_ARGUMENT: Mutation::Apply
    error: fanout '.../Relu' exist for missing node '.../block_1_add/Add'

The cause is not a keras_pixelcnn layer: plain `keras.layers.Conv2D`s give
the same error. It takes two chained residual sums whose branch ends in a
convolution with a bias, `x1 = x0 + conv(relu(x0)) + b`, `x2 = x1 +
conv(relu(x1)) + b`: the oneDNN remapper fuses each sum into its convolution
(Conv2D + BiasAdd + Add) and, rewriting the second, drops the first sum's
node while another op still reads it. Grappler then discards the remapper's
rewrite of the whole graph, so the graph runs as written: the results are
unchanged, and the PixelCNN runs without the remapper's fusions (as it always
has). One residual block, or the same blocks with `use_bias=False`, is
rewritten without error (rows below). The Gated PixelCNN and PixelCNN++
graphs are rewritten without error.

Each case runs in its own process and prints whether the error was logged.
"""

import os
import subprocess
import sys

CASE = """
import sys
import numpy as np
import keras
from keras import layers

blocks, bias = int(sys.argv[1]), sys.argv[2] == "bias"
inputs = keras.Input((28, 28, 1))
x = layers.Conv2D(8, 3, padding="same")(inputs)
for _ in range(blocks):
    h = layers.Conv2D(8, 1, use_bias=bias)(layers.ReLU()(x))
    x = layers.Add()([x, h])
outputs = layers.Conv2D(1, 1)(layers.ReLU()(x))
keras.Model(inputs, outputs).predict_on_batch(np.zeros((4, 28, 28, 1), "float32"))
"""


def main():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", KERAS_BACKEND="tensorflow")
    print("| residual blocks | bias in the block's last conv | remapper error |")
    print("|---|---|---|")
    for blocks, bias in ((1, "bias"), (2, "bias"), (3, "bias"), (2, "nobias")):
        done = subprocess.run(
            [sys.executable, "-c", CASE, str(blocks), bias],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        failed = "remapper failed" in done.stderr
        print(f"| {blocks} | {bias == 'bias'} | {'yes' if failed else 'no'} |")


if __name__ == "__main__":
    main()
