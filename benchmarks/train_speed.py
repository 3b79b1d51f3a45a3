"""Training throughput, side by side in one run: images/s of the project's
models against a straightforward Keras baseline and a PyTorch peer.

    python benchmarks/train_speed.py [--steps 60] [--only NAME,NAME]

Every configuration runs in its own process, one after the other (keep the
machine otherwise idle), on batches of 64 binarized MNIST digits
(../shared/data/mnist.npz when present, else random 0/1 images: the speed
does not depend on the pixels), with Adam(1e-3) and BCE with logits. Keras
configurations train through `model.fit` on arrays in a fixed order, as
`train` feeds them (`resume.epoch_data`); each is timed over `--steps` steps
after a warm-up epoch that includes compilation.

FLOPs are the useful ones: 2 per multiply-add of a non-zero kernel tap,
forward; a training step is counted as 3× the forward pass. The same
architecture therefore has the same FLOPs in every implementation, and
GFLOP/s compares implementations fairly.
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
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

# name: (backend, description)
CONFIGS = {
    "torch-peer": ("torch", "PyTorch peer (seed model, full masked kernels)"),
    "keras-baseline-tf": ("tensorflow", "Keras baseline (full kernel × mask), TF"),
    "pixelcnn-tf-noxla": ("tensorflow", "keras-pixelcnn PixelCNN, TF without XLA"),
    "pixelcnn-tf-xla": ("tensorflow", "keras-pixelcnn PixelCNN, TF + XLA (the default)"),
    "pixelcnn-tf-xla-bf16": ("tensorflow", "keras-pixelcnn PixelCNN, TF + XLA, mixed_bfloat16"),
    "pixelcnn-jax": ("jax", "keras-pixelcnn PixelCNN, JAX (jit)"),
    "gated-tf": ("tensorflow", "keras-pixelcnn Gated (5×32, conditional), TF + XLA"),
}


def _images(n):
    import numpy as np

    if MNIST.exists():  # plain NumPy: the torch worker must not import TensorFlow
        with np.load(MNIST) as data:
            x = data["x_train"][:n]
        return (x > 127.5).astype("float32")[..., None], True
    rng = np.random.default_rng(0)
    return (rng.random((n, 28, 28, 1)) < 0.13).astype("float32"), False


def useful_flops_per_image(model):
    """Forward FLOPs of the non-zero kernel taps of every convolution."""
    import numpy as np
    import keras
    from keras import ops

    total = 0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        kh, kw, cin, cout = layer.kernel.shape
        if hasattr(layer, "window_kernel"):
            taps = int(np.count_nonzero(ops.convert_to_numpy(
                layer.window_kernel(ops.ones((kh, kw, 1, 1))))))
        elif hasattr(layer, "mask"):
            taps = int(np.count_nonzero(layer.mask))
        else:
            taps = kh * kw
        h, w = layer.output.shape[1:3]
        total += 2 * h * w * taps * cin * cout
    return total


def _keras_worker(name, steps, batch_size):
    import numpy as np
    import keras

    from keras_pixelcnn.resume import epoch_data

    if name.endswith("bf16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    labels = None
    if name.startswith("keras-baseline"):
        from benchmarks.peers.keras_baseline import build_baseline

        model = build_baseline()
    elif name.startswith("gated"):
        from keras_pixelcnn import build_gated_pixelcnn

        model = build_gated_pixelcnn(filters=32, num_layers=5, num_classes=10)
    else:
        from keras_pixelcnn import build_pixelcnn

        model = build_pixelcnn()
    jit = ("xla" in name or name.startswith("gated")) and not name.endswith("noxla")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True),
                  jit_compile=jit if keras.backend.backend() == "tensorflow" else "auto")
    # (the JAX backend always compiles with XLA)
    images, real = _images(batch_size * steps)
    if name.startswith("gated"):
        labels = np.arange(len(images)) % 10
    x, y = epoch_data(images, labels, batch_size, seed=0, epoch=0)
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              steps_per_epoch=5)  # warm-up: compile
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    return {"images_per_s": len(images) / seconds, "flops": useful_flops_per_image(model),
            "real_mnist": real}


def _torch_worker(steps, batch_size):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from benchmarks.peers.pixelcnn_torch import train_images_per_second

    # The same architecture as build_pixelcnn(): take its useful FLOPs from
    # the Keras graph in a separate process is overkill; they are computed
    # analytically here (see useful_flops_per_image).
    images, real = _images(batch_size * (steps + 5))
    ips = train_images_per_second(images, batch_size=batch_size, steps=steps)
    return {"images_per_s": ips, "flops": None, "real_mnist": real}


def _run_worker(name, steps, batch_size):
    backend = CONFIGS[name][0]
    if backend == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return {"skipped": "torch is not installed (pip install -e '.[torch]')"}
    env = dict(os.environ, KERAS_BACKEND="tensorflow" if backend == "torch" else backend)
    cmd = [sys.executable, __file__, "--worker", name, "--steps", str(steps),
           "--batch-size", str(batch_size)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {"failed": (result.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", default=None, help="comma-separated configuration names")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if CONFIGS[args.worker][0] == "torch":
            out = _torch_worker(args.steps, args.batch_size)
        else:
            out = _keras_worker(args.worker, args.steps, args.batch_size)
        print(json.dumps(out))
        return

    names = args.only.split(",") if args.only else list(CONFIGS)
    results = {}
    for name in names:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        results[name] = _run_worker(name, args.steps, args.batch_size)
    seed_flops = next((r["flops"] for n, r in results.items()
                       if n.startswith("pixelcnn") and r.get("flops")), None)
    if "torch-peer" in results and "images_per_s" in results["torch-peer"]:
        results["torch-peer"]["flops"] = seed_flops
    torch_ips = results.get("torch-peer", {}).get("images_per_s")
    base_ips = results.get("keras-baseline-tf", {}).get("images_per_s")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"\ntraining throughput, batch {args.batch_size}, {args.steps} timed steps, "
          f"{os.cpu_count()} CPU cores, commit {commit}\n")
    print("| configuration | images/s | vs PyTorch peer | vs Keras baseline | MFLOP/image (train) | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        r = results[name]
        label = CONFIGS[name][1]
        if "images_per_s" not in r:
            print(f"| {label} | {r.get('skipped') or 'failed: ' + r.get('failed', '?')} | | | | |")
            continue
        ips = r["images_per_s"]
        flops = r.get("flops")
        train_flops = 3 * flops if flops else None
        print(f"| {label} | {ips:.0f} | "
              f"{f'{ips / torch_ips:.2f}×' if torch_ips else '–'} | "
              f"{f'{ips / base_ips:.2f}×' if base_ips else '–'} | "
              f"{f'{train_flops / 1e6:.0f}' if train_flops else '–'} | "
              f"{f'{ips * train_flops / 1e9:.1f}' if train_flops else '–'} |")
    if args.json:
        from keras_pixelcnn.io import save_json

        save_json({"commit": commit, "batch_size": args.batch_size, "steps": args.steps,
                   "results": results}, args.json)


if __name__ == "__main__":
    main()
