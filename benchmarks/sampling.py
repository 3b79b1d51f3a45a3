"""Sampling throughput: reference vs fast cached sampler, side by side.

    python benchmarks/sampling.py                       # shipped models, batches 1 16 64 256
    python benchmarks/sampling.py --batches 64 --models saved_models/pixelcnn.keras
    python benchmarks/sampling.py --before 2e35cf3     # that commit's samplers first, same run

Prints images/s for both samplers and the speed-up measured in the same run.
The reference sampler is slow (one full forward pass per pixel), so it is
timed on fewer images (`--reference-images`) and reported per image. Run it on
an otherwise idle machine: a benchmark next to a training run measures
nothing.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.before import VARIABLE, extract, package_root, without_before  # noqa: E402

sys.path.insert(0, package_root())


def _time(sampler, noise, labels, repeats, first=None, beside=None):
    """Images/s, best of `repeats` after a warm-up call (whose seconds, with
    the compilation for this batch shape, go into `first` when given).

    `beside`, a function of no arguments, is called (and timed, best of
    `repeats` after a warm-up) after each call of the sampler: the two are
    measured alternately, so a slow spell of a shared machine slows both.
    Returns images/s of the sampler, and of `beside` when given."""
    start = time.perf_counter()
    sampler.sample(noise, labels=labels)  # compile / warm up
    if first is not None:
        first.append(time.perf_counter() - start)
    if beside is not None:
        beside()
    best = best_beside = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sampler.sample(noise, labels=labels)
        best = min(best, time.perf_counter() - start)
        if beside is not None:
            start = time.perf_counter()
            beside()
            best_beside = min(best_beside, time.perf_counter() - start)
    if beside is None:
        return len(noise) / best
    return len(noise) / best, len(noise) / best_beside


def _time_reference_rows(sampler, noise, labels, rows):
    """Images/s of the reference sampler, timed on the last `rows` rows of
    the image (the earlier pixels given): every step of the reference costs
    one full forward pass wherever it is, so the whole image costs h / rows
    times as much. For slow models (PixelCNN++)."""
    import numpy as np

    _, h, w, _ = noise.shape
    initial = np.zeros((len(noise), *sampler.model.inputs[0].shape[1:]), "float32")
    start = (h - rows) * w
    sampler.sample(noise, labels=labels, initial=initial, start=start)  # compile / warm up
    begin = time.perf_counter()
    sampler.sample(noise, labels=labels, initial=initial, start=start)
    return len(noise) / ((time.perf_counter() - begin) * h / rows)


def _forward(model, noise, labels):
    """One plain forward pass of the batch (the cost the fast sampler aims
    at), as a function of no arguments."""
    import numpy as np

    channels = model.inputs[0].shape[-1]
    x = (noise[..., :1] < 0.13).astype("float32") * np.ones(channels, "float32")
    inputs = x if labels is None else [x, np.asarray(labels, "int32")]
    return lambda: model.predict_on_batch(inputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=[
            str(ROOT / "saved_models" / "pixelcnn.keras"),
            str(ROOT / "saved_models" / "gated_pixelcnn_conditional.keras"),
        ],
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64, 256])
    parser.add_argument("--reference-batches", nargs="+", type=int, default=[1, 16, 64])
    parser.add_argument(
        "--reference-rows",
        type=int,
        default=None,
        help="time the reference on the last N rows only and scale to the whole image",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed calls of the fast sampler, each followed by one forward pass (best of each)",
    )
    parser.add_argument(
        "--phases",
        default=None,
        help="PixelCNN++ sampler: ROWSxPIXELS unrolled per loop iteration (e.g. 4x4; "
        "KERAS_PIXELCNN_UNROLL, default 4x2)",
    )
    parser.add_argument(
        "--before",
        default=None,
        help="a commit whose samplers are timed first, in the same run (same arguments)",
    )
    args = parser.parse_args()
    if args.before:
        folder, before = extract(args.before)
        argv = without_before(sys.argv[1:])
        print(f"== before: the package of commit {before} ==", flush=True)
        subprocess.run(
            # the reference sampler is the same code: timed in the "after" run only
            [sys.executable, __file__, *argv, "--reference-batches", "0"],
            env=dict(os.environ, **{VARIABLE: folder}),
        )
        print("== after: this checkout ==", flush=True)

    import keras_pixelcnn  # noqa: I001  (first: its runtime options, oneDNN on, as in the CLI)
    import keras
    from keras_pixelcnn import CachedSampler, ReferenceSampler, draw_noise, load_model
    from keras_pixelcnn.models.contract import is_conditional, noise_shape
    from keras_pixelcnn.sampling import cached, make_sampler

    if args.phases:  # read when a sampler is made
        os.environ["KERAS_PIXELCNN_UNROLL"] = args.phases
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(
        f"backend {keras.backend.backend()} · commit {commit} · {os.cpu_count()} CPUs"
        f" · package {Path(keras_pixelcnn.__file__).parent}"
    )
    print(
        f"{'model':<34} {'batch':>5} {'reference img/s':>16} {'fast 1-thread':>14}"
        f" {'fast img/s':>11} {'speed-up':>9} {'1 forward img/s':>16} {'fast cost / forward':>20}"
        f" {'fast first call s':>18}"
    )
    for path in args.models:
        if not os.path.exists(path):
            print(f"{Path(path).name:<34} (not found, skipped)")
            continue
        model = load_model(path)
        # "fast" is the reference sampler for models with no cached form (PixelCNN++)
        fast, ref = make_sampler(model, "fast"), ReferenceSampler(model)
        for batch in args.batches:
            noise = draw_noise(batch, noise_shape(model), seed=0)
            labels = [i % 10 for i in range(batch)] if is_conditional(model) else None
            first = []  # the warm-up call: compilation (for a new batch shape) and one batch
            # the fast sampler and one forward pass, timed alternately
            fast_ips, fwd = _time(
                fast, noise, labels, args.repeats, first, _forward(model, noise, labels)
            )
            one_text = f"{'—':>14}"
            if isinstance(fast, CachedSampler):  # before the batch was split over the cores
                split = cached.sampling_threads
                cached.sampling_threads = lambda batch: 1
                try:
                    one_text = f"{_time(fast, noise, labels, args.repeats):14.1f}"
                finally:
                    cached.sampling_threads = split
            if batch in args.reference_batches:
                ref_ips = (
                    _time(ref, noise, labels, 1)
                    if args.reference_rows is None
                    else _time_reference_rows(ref, noise, labels, args.reference_rows)
                )
                ratio = f"{fast_ips / ref_ips:8.0f}×"
                ref_text = f"{ref_ips:16.2f}"
            else:
                ref_text, ratio = f"{'—':>16}", f"{'—':>9}"
            print(
                f"{Path(path).name:<34} {batch:>5} {ref_text} {one_text} {fast_ips:11.1f} {ratio}"
                f" {fwd:16.0f} {fwd / fast_ips:19.1f}× {first[0]:18.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
