"""Trains the MNIST classifier used by `evaluate --samples` and ships it.

    python benchmarks/train_classifier.py --data ../shared/data/mnist.npz

Writes saved_models/mnist_classifier.keras and mnist_classifier.json (its
test accuracy on the binarized 10,000-image test split).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="local mnist.npz (default: tfds)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "saved_models" / "mnist_classifier.keras"))
    args = parser.parse_args()

    import keras_pixelcnn  # noqa: F401, I001  (before Keras: its runtime options, as in training)
    import keras

    from keras_pixelcnn.data import load_mnist
    from keras_pixelcnn.evaluation.classifier import build_classifier, train_classifier
    from keras_pixelcnn.atomic import save_json
    from keras_pixelcnn.keras_file import save_model

    mnist = load_mnist(args.data)
    start = time.perf_counter()
    model, test_accuracy = train_classifier(mnist, epochs=args.epochs, seed=args.seed)
    print(
        f"test accuracy on binarized MNIST: {test_accuracy:.4f} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    inference = build_classifier(mnist.train.images.shape[1:])  # no optimizer state: 3× smaller
    inference.set_weights(model.get_weights())
    save_model(inference, args.out)
    save_json(
        {
            "test_accuracy": test_accuracy,
            "test_images": int(len(mnist.test.images)),
            "epochs": args.epochs,
            "parameters": int(model.count_params()),
            "binarization": "uint8 pixel > 127.5",
            "backend": keras.backend.backend(),
            "command": "python benchmarks/train_classifier.py " + " ".join(sys.argv[1:]),
        },
        os.path.splitext(args.out)[0] + ".json",
    )


if __name__ == "__main__":
    main()
