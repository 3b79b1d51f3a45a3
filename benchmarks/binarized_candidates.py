"""Which architecture to train for the stochastically binarized benchmark:
short runs of the candidates, side by side, at equal wall-clock time.

    python benchmarks/binarized_candidates.py [--seconds 200] [--only NAME,NAME]

Each candidate trains from scratch through `model.fit` (the trainer's
compile: Adam 1e-3, batch 64) on the first epoch's stochastic binarization
of the training split (`train --binarize dynamic --seed 0` sees the same
images), one after the other in this process, for `--seconds` of wall time
including compilation; then the validation NLL (nats/image) of the fixed
validation draw (the first 1,000 images) is measured. Keep the machine
otherwise idle: the comparison is by time, so a busy CPU favours nobody but
measures nothing. Prints one table and writes benchmarks/binarized_candidates.json.

Short runs favour fast, small models; read the table together with the
images/s column, which says how many epochs each would get in a longer run.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

# name: TrainConfig fields
CANDIDATES = {
    "pixelcnn-64x4": dict(model="pixelcnn", filters=64, num_residual_blocks=4),
    "gated-15x32": dict(model="gated", filters=32, num_layers=15),
    "gated-12x64": dict(model="gated", filters=64, num_layers=12),
    "pixelcnn_pp-32x1": dict(model="pixelcnn_pp", filters=32, num_residual_blocks=1, dropout=0.1),
    "pixelcnn_pp-48x1": dict(model="pixelcnn_pp", filters=48, num_residual_blocks=1, dropout=0.1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=200.0)
    parser.add_argument("--only", default=None)
    parser.add_argument("--validation-images", type=int, default=1000)
    args = parser.parse_args()

    import keras_pixelcnn  # noqa: F401, I001  (before Keras: its runtime options, as in training)
    import keras

    from keras_pixelcnn import data as data_lib
    from keras_pixelcnn.evaluation.nll import evaluate_nll
    from keras_pixelcnn.training.config import TrainConfig
    from keras_pixelcnn.training.resume import epoch_data
    from keras_pixelcnn.training.trainer import build_model, compile_model

    mnist = data_lib.load_mnist(str(MNIST), binarization="dynamic")
    images = data_lib.epoch_split(mnist, mnist.train, 0, 0).images
    validation = mnist.validation.images[: args.validation_images]

    class Deadline(keras.callbacks.Callback):
        def __init__(self, seconds):
            super().__init__()
            self.seconds, self.steps, self.start = seconds, 0, time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if time.perf_counter() - self.start > self.seconds:
                self.model.stop_training = True

    names = args.only.split(",") if args.only else list(CANDIDATES)
    rows = []
    for name in names:
        config = TrainConfig(**CANDIDATES[name], binarize="dynamic")
        keras.utils.set_random_seed(0)
        model = build_model(config)
        compile_model(model, config.learning_rate)
        x, y = epoch_data(images, None, config.batch_size, 0, 0)
        deadline = Deadline(args.seconds)
        model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=[deadline])
        seconds = time.perf_counter() - deadline.start
        nll = evaluate_nll(model, validation)
        row = dict(
            name=name,
            parameters=model.count_params(),
            steps=deadline.steps,
            images_per_second=deadline.steps * 64 / seconds,
            validation_nats_per_image=float(nll["nats_per_image"]),
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
        keras.backend.clear_session()
    print(f"\n{args.seconds:.0f} s each (compilation included), {keras.backend.backend()}")
    print(f"{'candidate':20s} {'params':>9s} {'steps':>6s} {'img/s':>7s} {'val nats/image':>15s}")
    for r in rows:
        print(
            f"{r['name']:20s} {r['parameters']:9d} {r['steps']:6d} "
            f"{r['images_per_second']:7.1f} {r['validation_nats_per_image']:15.2f}"
        )
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(dict(seconds=args.seconds, rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
