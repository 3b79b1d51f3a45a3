"""What a fast sampler's first call is made of, on TensorFlow: tracing, then
the first call (XLA compiling it), and the traced program's ops by type.

    python benchmarks/sampler_trace.py saved_models/pixelcnn_pp.keras
    python benchmarks/sampler_trace.py saved_models/pixelcnn_pp.keras --no-xla
    python benchmarks/sampler_trace.py saved_models/pixelcnn_pp.keras --lines 20

The cached sampler's loop bodies unroll `rows_per_step` rows of pixel steps,
so its first call costs seconds per model (README, "first call s"); the ops
count says where. `--no-xla` compiles the same function without XLA, to tell
the trace and graph set-up from XLA's compilation. One image; run it on an
otherwise idle machine.
"""

import argparse
import collections
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--no-xla", action="store_true", help="compile without XLA")
    parser.add_argument("--top", type=int, default=10, help="op types to list")
    parser.add_argument(
        "--lines",
        type=int,
        default=0,
        help="also list the package's source lines that made most ops",
    )
    args = parser.parse_args()

    import keras_pixelcnn  # noqa: F401, I001  (first: its runtime options, as in the CLI)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_pixelcnn.models.contract import noise_shape
    from keras_pixelcnn.sampling import cached
    from keras_pixelcnn.sampling.compile import compile_model_function

    model = keras.models.load_model(args.model)
    sampler = cached.CachedSampler(model)
    if args.no_xla:
        sampler._fill = compile_model_function(model, sampler.loop.fill_rows, jit_compile=False)
    noise = np.random.default_rng(0).random((1, *noise_shape(model)), dtype=np.float32)
    c = sampler.plan.image_channels
    initial = np.zeros((*noise.shape[:3], c), "float32")
    call = (
        tf.constant(sampler._canvas(initial, 1)),
        tuple(tf.constant(sampler._zeros(t, 1)) for t in sampler.loop.buffers()),
        tf.constant(noise),
        tf.constant(initial),
        tf.constant([3], "int32") if len(model.inputs) == 2 else None,
        tf.constant(0),
        tf.constant(0),
        tf.constant(sampler.height),
    )
    # every op created while tracing: the function's and its loop bodies'
    from tensorflow.python.framework import ops as framework_ops

    ops, create = collections.Counter(), framework_ops.Graph._create_op_internal
    lines = collections.Counter()

    def counting(graph, op_type, *rest, **kwargs):
        ops[op_type] += 1
        if args.lines:  # the innermost frame of the package (slows the trace down)
            ours = [f for f in traceback.extract_stack(limit=40) if "keras_pixelcnn" in f.filename]
            where = (
                f"{Path(ours[-1].filename).name}:{ours[-1].lineno} {ours[-1].name}" if ours else "?"
            )
            lines[where] += 1
        return create(graph, op_type, *rest, **kwargs)

    framework_ops.Graph._create_op_internal = counting
    start = time.perf_counter()
    sampler._fill.get_concrete_function(*call)
    trace = time.perf_counter() - start
    framework_ops.Graph._create_op_internal = create
    start = time.perf_counter()
    sampler._fill(*call)
    first = time.perf_counter() - start
    start = time.perf_counter()
    sampler._fill(*call)
    second = time.perf_counter() - start
    print(f"{Path(args.model).name} · TensorFlow {'without' if args.no_xla else 'with'} XLA")
    print(f"trace {trace:.2f} s · first call {first:.2f} s · second call {second:.3f} s")
    print(
        f"{sum(ops.values()):,} ops: " + ", ".join(f"{k} {v}" for k, v in ops.most_common(args.top))
    )
    for where, count in lines.most_common(args.lines):
        print(f"{count:6d}  {where}")


if __name__ == "__main__":
    main()
