"""Are conditional samples recognizable as their label?

    python benchmarks/label_accuracy.py --data ../shared/data/mnist.npz \\
        --model saved_models/gated_pixelcnn_conditional.keras

Trains (once; cached in benchmarks/mnist_classifier.keras) a small CNN on
binarized MNIST, reports its test accuracy, then draws 100 samples per class
from the conditional model and reports the fraction the classifier assigns to
the intended label, per class and overall.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_classifier():
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(10)(x), name="mnist_classifier")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default=str(ROOT / "saved_models" / "gated_pixelcnn_conditional.keras"))
    parser.add_argument("--classifier", default=str(ROOT / "benchmarks" / "mnist_classifier.keras"))
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import keras

    from keras_pixelcnn import load_mnist, load_model, sample

    mnist = load_mnist(args.data)
    if os.path.exists(args.classifier):
        clf = keras.saving.load_model(args.classifier)
    else:
        keras.utils.set_random_seed(args.seed)
        clf = build_classifier()
        clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
        clf.fit(mnist.train.images, mnist.train.labels, batch_size=128, epochs=3,
                validation_data=(mnist.validation.images, mnist.validation.labels), verbose=2)
        clf.save(args.classifier)
    accuracy = float(np.mean(np.argmax(clf.predict(mnist.test.images, verbose=0), 1) == mnist.test.labels))
    print(f"classifier test accuracy on binarized MNIST: {accuracy:.4f}")

    model = load_model(args.model)
    labels = np.repeat(np.arange(10), args.per_class)
    start = time.perf_counter()
    images = sample(model, num_images=len(labels), seed=args.seed, labels=labels)
    print(f"sampled {len(labels)} images in {time.perf_counter() - start:.1f} s")
    predicted = np.argmax(clf.predict(images, verbose=0), 1)
    per_class = [(predicted[labels == c] == c).mean() for c in range(10)]
    print("per class: " + " ".join(f"{c}:{a:.2f}" for c, a in enumerate(per_class)))
    print(f"samples classified as their label: {np.mean(predicted == labels):.3f} "
          f"({int(np.sum(predicted == labels))}/{len(labels)})")


if __name__ == "__main__":
    main()
