"""The fast sampler's fixed and per-image cost: one thread, one compiled call.

    python benchmarks/sampler_fixed_cost.py saved_models/pixelcnn.keras
    python benchmarks/sampler_fixed_cost.py saved_models/pixelcnn.keras --batches 8 32 128

Times one whole-image call of the cached sampler (no split over the cores)
for each batch size, best of `--repeats` after a warm-up call. A line through
the times gives what every call pays whatever its batch (per-step operation
dispatch, 784 steps) and what each image adds. `sample` splits a batch of 64
over two cores, so each thread pays the fixed part with 32 images. Run it on
an otherwise idle machine.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 16, 32, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras_pixelcnn  # noqa: F401, I001  (first: its runtime options, oneDNN on, as in the CLI)
    import keras
    import numpy as np

    from keras_pixelcnn.models.contract import noise_shape
    from keras_pixelcnn.sampling import make_sampler

    model = keras.models.load_model(args.model)
    sampler = make_sampler(model, "fast")
    print(f"backend {keras.backend.backend()} · {Path(args.model).name} · one thread, one call")
    print(f"{'batch':>6}  {'ms / call':>10}  {'ms / image':>10}")
    times = []
    for batch in args.batches:
        rng = np.random.default_rng(0)
        noise = rng.random((batch, *noise_shape(model)), dtype=np.float32)
        labels = rng.integers(0, 10, batch) if len(model.inputs) == 2 else None
        initial = np.zeros((*noise.shape[:3], 1), "float32")
        sampler._sample_chunk(noise, labels, initial, 0, None)  # compile / warm up
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            sampler._sample_chunk(noise, labels, initial, 0, None)
            best = min(best, time.perf_counter() - start)
        times.append(best)
        print(f"{batch:>6}  {1e3 * best:>10.1f}  {1e3 * best / batch:>10.3f}", flush=True)
    if len(times) > 1:
        per_image, fixed = np.polyfit(args.batches, times, 1)
        print(f"least squares: {1e3 * fixed:.1f} ms a call + {1e3 * per_image:.3f} ms an image")


if __name__ == "__main__":
    main()
