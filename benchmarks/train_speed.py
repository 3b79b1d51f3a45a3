"""Training throughput, side by side in one run: images/s of the project's
models against a straightforward Keras baseline and a PyTorch peer.

    python benchmarks/train_speed.py [--steps 60] [--only NAME,NAME] [--before REV]

With `--before REV` every keras-pixelcnn configuration is also timed with the
package of commit REV, right before the current code (rows marked "@REV").

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
from benchmarks.before import VARIABLE, extract, package_root  # noqa: E402

sys.path.insert(0, package_root())
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

# name: (backend, description)
CONFIGS = {
    "torch-peer": ("torch", "PyTorch peer (seed model, full masked kernels)"),
    "keras-baseline-tf": ("tensorflow", "Keras baseline (full kernel × mask), TF"),
    "pixelcnn-tf": ("tensorflow", "keras-pixelcnn PixelCNN, TF + oneDNN (the default)"),
    "pixelcnn-tf-arrays": ("tensorflow", "keras-pixelcnn PixelCNN, TF + oneDNN, fed NumPy arrays"),
    "pixelcnn-tf-no-onednn": ("tensorflow", "keras-pixelcnn PixelCNN, TF, oneDNN off"),
    "pixelcnn-tf-xla": ("tensorflow", "keras-pixelcnn PixelCNN, TF + XLA"),
    "pixelcnn-tf-bf16": ("tensorflow", "keras-pixelcnn PixelCNN, TF + oneDNN, mixed_bfloat16"),
    "pixelcnn-jax": ("jax", "keras-pixelcnn PixelCNN, JAX (jit)"),
    "gated-tf": ("tensorflow", "keras-pixelcnn Gated (5×32, conditional), TF + oneDNN"),
    "gated-jax": ("jax", "keras-pixelcnn Gated (5×32, conditional), JAX (jit)"),
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
    import keras
    import numpy as np
    from keras import ops

    total = 0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        kh, kw, cin, cout = layer.kernel.shape
        if hasattr(layer, "window_kernel"):
            taps = int(
                np.count_nonzero(
                    ops.convert_to_numpy(layer.window_kernel(ops.ones((kh, kw, 1, 1))))
                )
            )
        elif hasattr(layer, "mask"):
            taps = int(np.count_nonzero(layer.mask))
        else:
            taps = kh * kw
        h, w = layer.output.shape[1:3]
        total += 2 * h * w * taps * cin * cout
    return total


def _keras_worker(name, steps, batch_size, repeats):
    import numpy as np

    if name.endswith("no-onednn"):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import keras_pixelcnn  # noqa: F401, I001  (first: oneDNN on, as in training)
    import keras

    from keras_pixelcnn.runtime import fastest_jit_compile
    from keras_pixelcnn.training.resume import epoch_data

    try:  # a package from before it (--before) feeds `fit` the arrays
        from keras_pixelcnn.training.input_pipeline import fit_inputs
    except ImportError:
        fit_inputs = None

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
    jit = True if name.endswith("-xla") else fastest_jit_compile()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.BinaryCrossentropy(from_logits=True),
        jit_compile=jit,
    )  # (the JAX backend always compiles with XLA)
    images, real = _images(batch_size * steps)
    if name.startswith("gated"):
        labels = np.arange(len(images)) % 10
    x, y = epoch_data(images, labels, batch_size, seed=0, epoch=0)
    data = (
        fit_inputs(x, y, batch_size)
        if fit_inputs and not name.endswith("-arrays")
        else dict(x=x, y=y, batch_size=batch_size)
    )  # as `train` feeds `fit`, or (-arrays) the plain arrays, Keras's own pipeline
    model.fit(**data, epochs=1, shuffle=False, verbose=0)  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(**data, epochs=1, shuffle=False, verbose=0)
        rates.append(len(images) / (time.perf_counter() - start))
    return {
        "images_per_s": float(np.median(rates)),
        "rounds": rates,
        "flops": useful_flops_per_image(model),
        "real_mnist": real,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1",
    }


def _torch_worker(steps, batch_size, repeats):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    # The same architecture as build_pixelcnn(): take its useful FLOPs from
    # the Keras graph in a separate process is overkill; they are computed
    # analytically here (see useful_flops_per_image).
    import numpy as np

    from benchmarks.peers.pixelcnn_torch import train_images_per_second

    images, real = _images(batch_size * steps)
    rates = train_images_per_second(
        images, batch_size=batch_size, steps=steps, warmup=steps, repeats=repeats
    )
    return {
        "images_per_s": float(np.median(rates)),
        "rounds": rates,
        "flops": None,
        "real_mnist": real,
    }


# Matrix products on this CPU with TensorFlow + oneDNN: the ceiling any
# implementation of these models can reach. (m, k, n): the 1×1 convolutions
# of the seed model at batch 64 are (64·28·28, 64, 32) and (64·28·28, 32, 64).
GEMM_SHAPES = {
    "large (2048³)": (2048, 2048, 2048),
    "1×1 conv 64→32, batch 64": (64 * 784, 64, 32),
    "1×1 conv 32→64, batch 64": (64 * 784, 32, 64),
}


def _gemm_worker(repeats):
    import tensorflow as tf

    import keras_pixelcnn  # noqa: F401  (oneDNN on, as in training)

    out = {}
    for label, (m, k, n) in GEMM_SHAPES.items():
        a, b = tf.random.normal((m, k)), tf.random.normal((k, n))
        product = tf.function(tf.matmul)
        product(a, b).numpy()
        loops = max(3, int(2e10 // (2 * m * k * n)))
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(loops):
                c = product(a, b)
            c.numpy()
            rates.append(2 * m * k * n * loops / (time.perf_counter() - start) / 1e9)
        out[label] = max(rates)
    return out


def _run_worker(name, steps, batch_size, repeats, package=None):
    backend = CONFIGS[name][0]
    if backend == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return {"skipped": "torch is not installed (pip install -e '.[torch]')"}
    env = dict(os.environ, KERAS_BACKEND="tensorflow" if backend == "torch" else backend)
    if package:
        env[VARIABLE] = package
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--steps",
        str(steps),
        "--batch-size",
        str(batch_size),
        "--repeats",
        str(repeats),
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {"failed": (result.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed epochs of --steps steps; the median is reported",
    )
    parser.add_argument("--only", default=None, help="comma-separated configuration names")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--before", default=None, help="also time the package of this commit, in the same run"
    )
    args = parser.parse_args()

    if args.worker == "gemm":
        print(json.dumps(_gemm_worker(args.repeats)))
        return
    if args.worker:
        if CONFIGS[args.worker][0] == "torch":
            out = _torch_worker(args.steps, args.batch_size, args.repeats)
        else:
            out = _keras_worker(args.worker, args.steps, args.batch_size, args.repeats)
        print(json.dumps(out))
        return

    names = args.only.split(",") if args.only else list(CONFIGS)
    before = extract(args.before) if args.before else None
    results, labels = {}, dict((n, c[1]) for n, c in CONFIGS.items())
    for name in list(names):
        # the same configuration, earlier code
        if before and name.startswith(("pixelcnn", "gated")):
            old = f"{name}@{before[1]}"
            print(f"timing {old} ...", file=sys.stderr, flush=True)
            results[old] = _run_worker(
                name, args.steps, args.batch_size, args.repeats, package=before[0]
            )
            labels[old] = f"{CONFIGS[name][1]} @{before[1]}"
            names.insert(names.index(name), old)
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        results[name] = _run_worker(name, args.steps, args.batch_size, args.repeats)
    seed_flops = next(
        (r["flops"] for n, r in results.items() if n.startswith("pixelcnn") and r.get("flops")),
        None,
    )
    if "torch-peer" in results and "images_per_s" in results["torch-peer"]:
        results["torch-peer"]["flops"] = seed_flops
    torch_ips = results.get("torch-peer", {}).get("images_per_s")
    base_ips = results.get("keras-baseline-tf", {}).get("images_per_s")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"\ntraining throughput, batch {args.batch_size}: median of {args.repeats} "
        f"timed epochs of {args.steps} steps after a warm-up epoch, "
        f"{os.cpu_count()} CPU cores, commit {commit}\n"
    )
    print(
        "| configuration | images/s | vs PyTorch peer | vs Keras baseline | MFLOP/image (train) | GFLOP/s |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        r = results[name]
        label = labels[name]
        if "images_per_s" not in r:
            print(f"| {label} | {r.get('skipped') or 'failed: ' + r.get('failed', '?')} | | | | |")
            continue
        ips = r["images_per_s"]
        flops = r.get("flops")
        train_flops = 3 * flops if flops else None
        print(
            f"| {label} | {ips:.0f} | "
            f"{f'{ips / torch_ips:.2f}×' if torch_ips else '–'} | "
            f"{f'{ips / base_ips:.2f}×' if base_ips else '–'} | "
            f"{f'{train_flops / 1e6:.0f}' if train_flops else '–'} | "
            f"{f'{ips * train_flops / 1e9:.1f}' if train_flops else '–'} |"
        )
    ceiling = None
    if not args.only:
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        done = subprocess.run(
            [sys.executable, __file__, "--worker", "gemm", "--repeats", str(args.repeats)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            ceiling = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                "\nmatrix-product ceiling on this CPU (TensorFlow + oneDNN, best of "
                f"{args.repeats}):"
            )
            for label, gflops in ceiling.items():
                print(f"  {label}: {gflops:.0f} GFLOP/s")
            if torch_ips and seed_flops:
                need = 2.5 * torch_ips * 3 * seed_flops / 1e9
                print(
                    f"2.5× the PyTorch peer would be {2.5 * torch_ips:.0f} images/s of the "
                    f"seed model = {need:.0f} GFLOP/s of useful work"
                )
    if args.json:
        from keras_pixelcnn.atomic import save_json

        save_json(
            {
                "commit": commit,
                "batch_size": args.batch_size,
                "steps": args.steps,
                "repeats": args.repeats,
                "results": results,
                "gemm_gflops": ceiling,
            },
            args.json,
        )


if __name__ == "__main__":
    main()
