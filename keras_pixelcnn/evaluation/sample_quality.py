"""Sample-quality metrics computed with the MNIST classifier.

- **Classifier score**, exp E_x KL(p(y|x) || p(y)): the MNIST analogue of the
  Inception score (Salimans et al. 2016). Between 1 and the number of classes;
  higher means confident and diverse samples.
- **Fréchet distance** between Gaussians fitted to the classifier's
  penultimate features of samples and of real test digits (the FID of Heusel
  et al. 2017 with the MNIST classifier in place of Inception). It is biased
  upwards for small sample counts, so it is always reported next to the
  real-vs-real floor: real training digits, as many as there are samples,
  against the same test digits.
- **Label accuracy** of conditional samples: the fraction the classifier
  assigns to the label they were drawn with.
"""

import numpy as np

from keras_pixelcnn.evaluation import classifier as classifier_lib


def classifier_score(probs, eps=1e-12):
    """exp(mean KL(p(y|x) || mean_x p(y|x))) from class probabilities (n, k)."""
    probs = np.asarray(probs, "float64")
    marginal = probs.mean(axis=0, keepdims=True)
    kl = np.sum(probs * (np.log(probs + eps) - np.log(marginal + eps)), axis=1)
    return float(np.exp(kl.mean()))


def _sqrtm_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||² + Tr(C_a + C_b - 2 (C_a C_b)^½) between two feature sets.

    The trace of (C_a C_b)^½ is computed as the sum of the square roots of
    the eigenvalues of the symmetric C_a^½ C_b C_a^½, which is stable for
    singular covariances.
    """
    a = np.asarray(features_a, "float64")
    b = np.asarray(features_b, "float64")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def sample_quality(classifier, samples, test_images, reference_images, labels=None, progress=None):
    """All sample metrics as a dict.

    Args:
        classifier: the MNIST classifier (`classifier.load_classifier()`).
        samples: 0/1 images `(n, 28, 28, 1)` drawn from the model.
        test_images: real test digits, the Fréchet reference.
        reference_images: `n` real digits not in the test set, for the
            real-vs-real floor.
        labels: the labels the samples were drawn with (conditional models).
        progress: `progress(done, total)` over the images the classifier
            reads (samples, test and reference images together).
    """
    total = len(samples) + len(test_images) + len(reference_images)
    outputs, done = [], 0
    for images in (samples, test_images, reference_images):
        outputs.append(classifier_lib.predict(classifier, images, 500, progress, done, total))
        done += len(images)
    (sample_probs, sample_feats), (_, test_feats), (real_probs, real_feats) = outputs
    result = {
        "num_samples": int(len(samples)),
        "classifier_score": classifier_score(sample_probs),
        "classifier_score_real": classifier_score(real_probs),
        "frechet_distance": frechet_distance(sample_feats, test_feats),
        "frechet_distance_real_floor": frechet_distance(real_feats, test_feats),
        "frechet_reference_images": int(len(test_images)),
    }
    if labels is not None:
        predicted = np.argmax(sample_probs, axis=1)
        labels = np.asarray(labels)
        result["label_accuracy"] = float(np.mean(predicted == labels))
        result["label_accuracy_per_class"] = {
            int(c): float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)
        }
    return result


def evaluate_samples(
    model, classifier, mnist, num_samples, seed=0, progress=None, feature_progress=None
):
    """Draws `num_samples` images from `model` with the fast sampler (labels
    0, 1, ..., 9, 0, ... for conditional models) and scores them with
    `sample_quality` against `mnist.test` (the real-vs-real floor uses the
    first `num_samples` training digits). Under dynamic binarization the real
    digits are one seeded stochastic binarization, like the samples.
    `progress` follows the sampling, `feature_progress` the classifier."""
    from keras_pixelcnn.models.contract import is_conditional, noise_shape
    from keras_pixelcnn.sampling import draw_noise, make_sampler

    labels = np.arange(num_samples) % 10 if is_conditional(model) else None
    noise = draw_noise(num_samples, noise_shape(model), seed)
    images = make_sampler(model, "fast").sample(noise, labels=labels, progress=progress)
    reference, test = mnist.train.images[:num_samples], mnist.test.images
    if mnist.levels == 256:  # the classifier reads binary digits: threshold all three
        images, reference, test = ((a > 127.5).astype("float32") for a in (images, reference, test))
    if mnist.binarization == "dynamic":
        from keras_pixelcnn.data import TEST_STREAM, TRAIN_STREAM, binarize_dynamic

        reference = binarize_dynamic(reference, seed, 0, TRAIN_STREAM)
        test = binarize_dynamic(test, seed, 0, TEST_STREAM)
    return sample_quality(classifier, images, test, reference, labels, feature_progress)
