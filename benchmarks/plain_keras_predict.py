"""`predict` of a shipped model loaded with plain Keras, per backend.

    python benchmarks/plain_keras_predict.py [--rounds 3]

Loads `saved_models/gated_pixelcnn_conditional.keras` with plain
`keras.saving.load_model` (no keras_pixelcnn call but the import that
registers the layers) in one long-lived process per backend, and times
`predict_on_batch` of 500 images, alternating the backends round by round
(the machine's speed drifts). Prints each round and the ratio of the medians.

Bug it watches: the file said `jit_compile=False`, so on JAX `predict` ran op
by op, 12.6x TensorFlow's time; the shipped files say "auto" and JAX compiles
with XLA (1.5x TensorFlow or better was the bar when this was fixed).
"""

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = r"""
import sys, time, numpy as np, keras, keras_pixelcnn
m = keras.saving.load_model("saved_models/gated_pixelcnn_conditional.keras")
x = (np.random.default_rng(0).random((500, 28, 28, 1)) > 0.5).astype("float32")
y = np.arange(500, dtype="int32") % 10
m.predict_on_batch([x, y])  # compile
print("JIT", m.jit_compile, flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    m.predict_on_batch([x, y])
    print(time.perf_counter() - t, flush=True)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workers = {}
    for backend in ("tensorflow", "jax"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        workers[backend] = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=ROOT,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        print(backend, workers[backend].stdout.readline().strip())
    seconds = {backend: [] for backend in workers}
    for r in range(args.rounds):
        for backend, worker in workers.items():
            worker.stdin.write("go\n")
            worker.stdin.flush()
            seconds[backend].append(float(worker.stdout.readline()))
        print(f"round {r + 1}: " + ", ".join(f"{b} {s[-1]:.3f} s" for b, s in seconds.items()))
    for worker in workers.values():
        worker.stdin.close()
        worker.wait()
    median = {b: statistics.median(s) for b, s in seconds.items()}
    print(f"JAX / TensorFlow (medians): {median['jax'] / median['tensorflow']:.2f}x")


if __name__ == "__main__":
    main()
