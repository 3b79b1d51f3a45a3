"""Exact-NLL evaluation time per backend, side by side in one run.

    python benchmarks/evaluate_speed.py [--images 1000] [--before REV]

Times `evaluate_nll` of the shipped models on the first `--images` test
digits (real MNIST from ../shared/data/mnist.npz, thresholded; random digits
when it is absent: the time does not depend on the pixels), after one
warm-up call, each backend in its own process, one after the other. With
`--before REV` the package of commit REV is timed first, the same way. Keep
the machine otherwise idle.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.before import VARIABLE, extract, package_root  # noqa: E402

sys.path.insert(0, package_root())
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
MODELS = ("pixelcnn.keras", "gated_pixelcnn_conditional.keras")
BACKENDS = ("tensorflow", "jax")


def _worker(model_name, images):
    import numpy as np

    from keras_pixelcnn import evaluate_nll, load_model

    if MNIST.exists():
        with np.load(MNIST) as data:
            x = (data["x_test"][:images] > 127.5).astype("float32")[..., None]
            y = data["y_test"][:images].astype("int32")
    else:
        rng = np.random.default_rng(0)
        x = (rng.random((images, 28, 28, 1)) < 0.13).astype("float32")
        y = rng.integers(0, 10, images).astype("int32")
    model = load_model(str(ROOT / "saved_models" / model_name))
    evaluate_nll(model, x[:64], y[:64])  # warm-up: compilation
    start = time.perf_counter()
    summary = evaluate_nll(model, x, y)
    return {"seconds": time.perf_counter() - start, "nats_per_image": summary["nats_per_image"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--before", default=None, help="also time the package of this commit")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.images)))
        return
    packages = [(None, "this checkout")]
    if args.before:
        folder, commit = extract(args.before)
        packages.insert(0, (folder, f"@{commit}"))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(f"evaluate_nll on {args.images} test digits, commit {commit}, {os.cpu_count()} CPUs\n")
    print("| model | code | TensorFlow s | JAX s | JAX / TF | nats/image TF | nats/image JAX |")
    print("|---|---|---|---|---|---|---|")
    for model_name in MODELS:
        for folder, label in packages:
            out = {}
            for backend in BACKENDS:
                env = dict(os.environ, KERAS_BACKEND=backend)
                if folder:
                    env[VARIABLE] = folder
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--worker",
                        model_name,
                        "--images",
                        str(args.images),
                    ],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    sys.exit(done.stderr.strip().splitlines()[-1])
                out[backend] = json.loads(done.stdout.strip().splitlines()[-1])
            tf, jx = out["tensorflow"], out["jax"]
            print(
                f"| {model_name} | {label} | {tf['seconds']:.1f} | {jx['seconds']:.1f} | "
                f"{jx['seconds'] / tf['seconds']:.1f}× | {tf['nats_per_image']:.4f} | "
                f"{jx['nats_per_image']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
