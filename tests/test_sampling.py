import keras
import numpy as np
import pytest

from keras_pixelcnn import ReferenceSampler, draw_noise, sample
from keras_pixelcnn.errors import PixelCNNError


def _naive_sample(model, noise):
    """The definition, one predict per pixel, in NumPy."""
    x = np.zeros_like(noise)
    n, h, w, _ = noise.shape
    for i in range(h):
        for j in range(w):
            logits = keras.ops.convert_to_numpy(model(x))
            p = 1.0 / (1.0 + np.exp(-logits[:, i, j, 0]))
            x[:, i, j, 0] = (noise[:, i, j, 0] < p).astype("float32")
    return x


def test_reference_sampler_matches_the_definition(tiny_model):
    model = tiny_model(shape=(6, 6, 1))
    noise = draw_noise(5, (6, 6, 1), seed=3)
    expected = _naive_sample(model, noise)
    got = ReferenceSampler(model).sample(noise)
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) <= {0.0, 1.0}


def test_same_seed_same_images_different_seed_different(tiny_model):
    model = tiny_model()
    a = sample(model, num_images=4, seed=7)
    b = sample(model, num_images=4, seed=7)
    c = sample(model, num_images=4, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (4, 8, 8, 1) and a.dtype == np.float32


def test_sampler_follows_weight_updates(tiny_model):
    """A compiled sampler must read the current weights (not trace-time ones)."""
    model = tiny_model()
    sampler = ReferenceSampler(model)
    noise = draw_noise(4, (8, 8, 1), seed=0)
    first = sampler.sample(noise)
    logits = model.layers[-1]
    logits.bias.assign(np.full(logits.bias.shape, 50.0, "float32"))  # p(1) ~ 1
    np.testing.assert_array_equal(sampler.sample(noise), np.ones_like(first))
    logits.bias.assign(np.full(logits.bias.shape, -50.0, "float32"))
    np.testing.assert_array_equal(sampler.sample(noise), np.zeros_like(first))


def test_progress_is_reported_per_row(tiny_model):
    model = tiny_model()
    calls = []
    ReferenceSampler(model).sample(
        draw_noise(2, (8, 8, 1), 0), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(8 * (r + 1), 64) for r in range(8)]


def test_completion_keeps_known_pixels(tiny_model):
    model = tiny_model()
    rng = np.random.default_rng(0)
    initial = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    out = ReferenceSampler(model).sample(draw_noise(3, (8, 8, 1), 1), initial=initial, start=20)
    flat_in, flat_out = initial.reshape(3, -1), out.reshape(3, -1)
    np.testing.assert_array_equal(flat_out[:, :20], flat_in[:, :20])


def test_labels_rejected_for_unconditional_model(tiny_model):
    with pytest.raises(PixelCNNError, match="unconditional"):
        sample(tiny_model(), num_images=2, labels=[1, 2])


@pytest.mark.parametrize("name", ["reference", "fast"])
def test_large_requests_are_sampled_in_bounded_batches(tiny_model, name):
    """Bug: every image of a request sampled in one batch (memory grew about
    1.2 MB an image until the process was killed). The batches' images are
    the images of one call, and no batch exceeds `max_batch`."""
    from keras_pixelcnn.sampling import CachedSampler

    model = tiny_model(shape=(4, 4, 1))
    noise = draw_noise(11, (4, 4, 1), seed=5)
    kind = {"reference": ReferenceSampler, "fast": CachedSampler}[name]
    whole = kind(model).sample(noise)
    sampler = kind(model)
    sampler.max_batch = 4
    sizes, calls = [], []
    inner = sampler._sample_batch

    def spy(noise, *args):
        sizes.append(len(noise))
        return inner(noise, *args)

    sampler._sample_batch = spy
    got = sampler.sample(noise, progress=lambda d, t: calls.append((d, t)))
    assert sizes == [4, 4, 3]  # equal batches: at most two compiled shapes
    np.testing.assert_array_equal(got, whole)
    # progress counts the pixels of all 11 images and ends at the total
    assert calls[-1] == (11 * 16, 11 * 16)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_sample_draws_the_noise_batch_by_batch_as_one_array(tiny_model):
    """`sample` (and `generate`) draws its noise a batch at a time; the
    images must be those of `draw_noise`'s whole array (bug: a batch's noise
    restarting the seed's stream, so every batch repeats the first)."""
    from keras_pixelcnn.sampling import CachedSampler

    model = tiny_model(shape=(4, 4, 1))
    expected = CachedSampler(model).sample(draw_noise(9, (4, 4, 1), seed=2))
    sampler = CachedSampler(model)
    sampler.max_batch = 2
    got = sample(model, num_images=9, seed=2, sampler=sampler)
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got[:2], got[2:4])  # batches are not repeats
