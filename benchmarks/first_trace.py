"""The cost of tracing the first training step twice, alternated in one run.

    python benchmarks/first_trace.py [--rounds 2]

On TensorFlow, a `tf.function` whose first trace creates variables is traced
a second time. Keras builds Adam's slots inside the first training step, so
every fresh `fit` traced its step twice; `trainer.compile_model` builds the
optimizer at compile time instead. This times one small PixelCNN++ `train`
run (2 epochs of 6 steps, `--filters 8 --blocks 1 --dropout 0.3`, as the
suite's kill-and-resume test trains it) both ways, each run in its own
process, alternating, and prints the seconds of each.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = r"""
import os, sys, time
import numpy as np
sys.path.insert(0, {root!r})
rng = np.random.default_rng(0)
x = np.zeros((96, 28, 28), np.uint8)
for image in x:  # strokes, as tests/conftest.py draws them
    r, c = rng.integers(4, 10, 2)
    image[r : r + 14, c : c + 3] = 255
    image[r : r + 3, c : c + 12] = 200
data = os.path.join({tmp!r}, "digits.npz")
np.savez(data, x_train=x[:64], y_train=np.zeros(64, np.uint8), x_test=x[64:],
         y_test=np.zeros(32, np.uint8))
from keras_pixelcnn.training import trainer
if os.environ["BUILD"] == "in-first-step":  # Keras's default: Adam built when first applied
    import keras
    package_compile = trainer.compile_model
    def compile_model(model, *args, **kwargs):
        build = keras.optimizers.Adam.build
        keras.optimizers.Adam.build = lambda self, variables: None
        try:
            package_compile(model, *args, **kwargs)
        finally:
            keras.optimizers.Adam.build = build
    trainer.compile_model = compile_model
from keras_pixelcnn.cli import main
run_dir = os.path.join({tmp!r}, "run-" + os.environ["BUILD"] + "-" + os.environ["ROUND"])
sys.argv = ["cli.py", "train", "--data", data, "--epochs", "2", "--filters", "8", "--blocks", "1",
            "--samples", "0", "--validation-size", "16", "--batch-size", "8", "--model",
            "pixelcnn_pp", "--dropout", "0.3", "--no-test-nll", "--run-dir", run_dir]
start = time.perf_counter()
code = main()
assert not code, code
print("SECONDS", time.perf_counter() - start)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    seconds = {"in-first-step": [], "at-compile": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            for build in seconds:
                env = dict(
                    os.environ,
                    BUILD=build,
                    ROUND=str(k),
                    KERAS_BACKEND="tensorflow",
                    TF_CPP_MIN_LOG_LEVEL="3",
                )
                out = subprocess.run(
                    [sys.executable, "-c", RUN.format(root=str(ROOT), tmp=tmp)],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=ROOT,
                )
                lines = [line for line in out.stdout.splitlines() if line.startswith("SECONDS")]
                if out.returncode or not lines:
                    sys.exit(f"{build} failed:\n{out.stderr[-3000:]}")
                seconds[build].append(float(lines[0].split()[1]))
                print(f"round {k + 1}, Adam built {build}: {seconds[build][-1]:.1f} s", flush=True)
    for build, values in seconds.items():
        print(f"Adam built {build}: " + ", ".join(f"{v:.1f}" for v in values) + " s")


if __name__ == "__main__":
    main()
