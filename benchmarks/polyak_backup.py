"""The raw and the averaged weights of a `--ema` run's backup, on validation.

    python benchmarks/polyak_backup.py --run-dir runs/pp256 \
        [--start runs/pp256_init.keras] [--images 1000] [--save-raw raw.keras]

Rebuilds the run's model from its `config.json`, restores its backup (the
raw weights, and Keras's moving averages as optimizer variables) and prints
the validation loss (nats per dimension, the run's first validation images)
of: the raw weights, their average, and, with `--start`, the model the run
started from and the point halfway between it and the raw weights (a loss
above both ends means the straight line between them crosses a barrier, so
an average of weights along the path can be worse than every one of them).

`--save-raw` writes the raw weights as a `.keras` model with a fresh
Adam(1e-3) (zero slots, no averaging): how `saved_models/pixelcnn_pp.keras`
was taken from its run.
"""

import argparse
import json
import os

import keras_pixelcnn  # noqa: F401  (registers the layers; before keras, for oneDNN)
from keras_pixelcnn import data as data_lib
from keras_pixelcnn import load_model
from keras_pixelcnn.keras_file import save_model
from keras_pixelcnn.training import trainer
from keras_pixelcnn.training.config import TrainConfig
from keras_pixelcnn.training.resume import load_state, restore


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--start", help="the model the run started from (--init-from)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--save-raw", help="write the raw weights to this .keras file")
    args = parser.parse_args()

    with open(os.path.join(args.run_dir, "config.json")) as f:
        config = TrainConfig(**json.load(f)["config"])
    if not config.ema:
        parser.error(f"{args.run_dir} was trained without --ema: it holds no averages")
    mnist = trainer.load_data(config)
    x = mnist.validation.images[: args.images]
    model = trainer.build_model(config, x.shape[1:], data_lib.NUM_CLASSES)
    trainer.compile_model(model, config.learning_rate, config.lr_decay, config.ema)
    state = load_state(os.path.join(args.run_dir, "backup"))
    restore(model, state)
    raw = [v.numpy() for v in model.trainable_variables]
    average = [a.numpy() for a in model.optimizer._model_variables_moving_average]

    def put(weights):
        for variable, value in zip(model.trainable_variables, weights):
            variable.assign(value)

    def loss(weights):
        put(weights)
        return model.evaluate(x, x, batch_size=250, verbose=0)

    print(f"backup at global step {state['global_step']}, {len(x)} validation images")
    print(f"raw weights        {loss(raw):.4f} nats/dim")
    print(f"averaged weights   {loss(average):.4f} nats/dim")
    if args.start:
        start = [w.numpy() for w in load_model(args.start).trainable_variables]
        print(f"starting model     {loss(start):.4f} nats/dim")
        middle = [(a + b) / 2 for a, b in zip(start, raw)]
        print(f"halfway start-raw  {loss(middle):.4f} nats/dim")
    if args.save_raw:
        put(raw)
        trainer.compile_model(model, 1e-3)  # a fresh Adam: no averaging, no decay
        model.optimizer.build(model.trainable_variables)  # zero slots: loads silently
        save_model(model, args.save_raw)
        print(f"wrote {args.save_raw}")


if __name__ == "__main__":
    main()
