"""Evaluation: exact likelihoods and sample quality.

- `nll.py`: the exact test NLL (nats/image, nats/pixel, bits/dim), and the
  label-marginalized NLL of conditional models.
- `classifier.py`: the MNIST classifier that is the yardstick for samples.
- `sample_quality.py`: classifier score, Fréchet distance, label accuracy,
  and `evaluate_samples`, which draws the samples and scores them.
"""

from keras_pixelcnn.evaluation.nll import (
    bernoulli_nll,
    evaluate_model,
    evaluate_nll,
    marginal_nll,
    per_image_nll,
    summarize_nll,
)

__all__ = [
    "bernoulli_nll",
    "evaluate_model",
    "evaluate_nll",
    "marginal_nll",
    "per_image_nll",
    "summarize_nll",
]
