"""Peak memory of `generate` against the number of images asked for.

    python benchmarks/generate_memory.py [--sizes 1024 5120] [--model PATH]
                                         [--backend tensorflow] [--before REV]

Runs `cli.py generate --num N --npy ...` once per size, each in a fresh
process, and reads that process's peak resident memory
(`resource.getrusage(RUSAGE_SELF).ru_maxrss` at its end). Sampling works in
equal batches of at most 256 images and a grid shows at most 1,024 of them
(the default sizes both give batches of 256 and a full grid; a request of
300 images runs two batches of 150 and draws a smaller grid, which need
less), so between two sizes the peak may grow by no more than the output arrays (one uint8 image, 784 bytes for MNIST, the
batches' noise aside) plus `--slack` MiB; it exits 1 if it grows more. With
`--before REV` the package of commit REV is measured first, the same way.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.before import VARIABLE, extract  # noqa: E402

# The child runs the CLI in-process and prints its own peak RSS (KiB on Linux).
CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from keras_pixelcnn.cli import main
code = main(sys.argv[1:], prog_name="cli.py")
print("MAXRSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def peak_mib(num, model, backend, root, out_dir):
    out = Path(out_dir)
    args = ["generate", "--num", str(num), "--out", str(out / f"g{num}.png")]
    args += ["--npy", str(out / f"g{num}.npy"), "--overwrite", "--model", model]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(root)), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"generate --num {num} failed:\n{done.stderr[-2000:]}")
    kib = int(done.stdout.split("MAXRSS_KIB")[-1].split()[0])
    return kib / 1024


def measure(label, root, sizes, model, backend):
    with tempfile.TemporaryDirectory() as out_dir:
        peaks = {n: peak_mib(n, model, backend, root, out_dir) for n in sizes}
    small, large = sizes[0], sizes[-1]
    growth = peaks[large] - peaks[small]
    outputs = (large - small) * 784 / 2**20
    print(f"{label}: " + ", ".join(f"{n} images {peaks[n]:.0f} MiB" for n in sizes))
    print(f"  growth {growth:.0f} MiB for {large - small} more images (outputs {outputs:.1f} MiB)")
    return {"peak_mib": peaks, "growth_mib": growth, "outputs_mib": outputs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1024, 5120])
    parser.add_argument(
        "--model",
        default=str(ROOT / "saved_models" / "gated_pixelcnn_conditional.keras"),
        help="default: generate's default model, the conditional Gated PixelCNN",
    )
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--slack", type=float, default=64.0, help="MiB allowed beyond outputs")
    parser.add_argument("--before", default=None, help="also measure commit REV first")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    results = {}
    if args.before:
        folder, short = extract(args.before)
        os.environ[VARIABLE] = folder
        results[short] = measure(f"before ({short})", folder, sizes, args.model, args.backend)
        del os.environ[VARIABLE]
    now = results["now"] = measure("now", ROOT, sizes, args.model, args.backend)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if now["growth_mib"] > now["outputs_mib"] + args.slack:
        print(f"FAIL: peak memory grows by more than the outputs + {args.slack:.0f} MiB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
