"""SavedModel export, the Keras-free SavedModel sampler, and .keras portability."""

import keras
import numpy as np
import pytest
from helpers import ROOT, assert_picture, run_cli, run_python

from keras_pixelcnn import build_gated_pixelcnn, build_pixelcnn, draw_noise, per_image_nll
from keras_pixelcnn.sampling.cached import CachedSampler

# Export and the SavedModel run on TensorFlow whatever this process's backend
# is, so those tests run once, in the TensorFlow pass of the suite.
tf_pass_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="SavedModel tests run in the TensorFlow pass",
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny conditional gated model, its .keras file and its SavedModel
    (exported in a TensorFlow-backend subprocess, whatever this backend is)."""
    tmp = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(8, 8, 1), filters=8, num_layers=2, num_classes=10)
    model.save(tmp / "g.keras")
    result = run_cli(
        "export",
        "--model",
        tmp / "g.keras",
        "--out",
        tmp / "g_sm",
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return model, tmp


@tf_pass_only
def test_saved_model_sampler_never_imports_keras(exported):
    """`generate --saved-model` runs with keras made unimportable (TensorFlow
    itself imports keras when it is installed, so the test blocks it), never
    imports a Keras-side module of keras_pixelcnn, and gives the images of
    the .keras path."""
    model, tmp = exported
    code = f"""
import runpy, sys
sys.modules["keras"] = None  # any import of keras now fails
sys.argv = ["cli.py", "generate", "--saved-model", {str(tmp / "g_sm")!r}, "--label", "1,4",
            "--num", "3", "--seed", "5", "--out", {str(tmp / "sm.png")!r}, "--npy", {str(tmp / "sm.npy")!r}]
try:
    runpy.run_path({str(ROOT / "cli.py")!r}, run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
keras_side = ("keras_pixelcnn.layers", "keras_pixelcnn.models", "keras_pixelcnn.training.",
              "keras_pixelcnn.evaluation", "keras_pixelcnn.sampling.", "keras_pixelcnn.keras_file")
plain_data = ("keras_pixelcnn.training.config",  # option choices: no Keras
              "keras_pixelcnn.training.distribution",  # the modes; Keras inside functions
              "keras_pixelcnn.sampling.batches")  # batching: NumPy only
bad = sorted(m for m in sys.modules if sys.modules[m] is not None
             and (m.split(".")[0] == "keras" or m.startswith(keras_side)) and m not in plain_data)
print("IMPORTED", bad)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IMPORTED []" in result.stdout, result.stdout
    images = np.load(tmp / "sm.npy").astype("float32")
    noise = draw_noise(6, (8, 8, 1), seed=5)
    expected = CachedSampler(model).sample(noise, labels=[1, 1, 1, 4, 4, 4])
    np.testing.assert_array_equal(images, expected)
    assert_picture(tmp / "sm.png", 2 * 8, 3 * 8)


@tf_pass_only
def test_saved_model_log_prob_equals_evaluate(exported):
    model, tmp = exported
    x = (np.random.default_rng(1).random((4, 8, 8, 1)) > 0.5).astype("float32")
    y = np.array([0, 3, 6, 9], "int32")
    np.save(tmp / "x.npy", x)
    code = f"""
import numpy as np, tensorflow as tf
m = tf.saved_model.load({str(tmp / "g_sm")!r})
x = np.load({str(tmp / "x.npy")!r})
out = m.signatures["log_prob"](images=tf.constant(x), labels=tf.constant([0, 3, 6, 9], tf.int32))
np.save({str(tmp / "nll.npy")!r}, out["nll_nats"].numpy())
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp / "nll.npy"), per_image_nll(model, x, y), rtol=1e-5)


@tf_pass_only
def test_export_refuses_to_overwrite(exported):
    _, tmp = exported
    result = run_cli("export", "--model", tmp / "g.keras", "--out", tmp / "g_sm")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp / 'g_sm'} already exists (pass --overwrite to replace it)"
    )


@tf_pass_only
def test_export_overwrite_replaces_a_saved_model_and_nothing_else(exported):
    """Bug: `export --overwrite` deleted any folder (and its files) it was
    pointed at. It replaces a SavedModel it wrote; a folder with another
    file in it stays untouched, exit 1."""
    model, tmp = exported
    target = tmp / "sm_again"
    first = run_cli("export", "--model", tmp / "g.keras", "--out", target)
    assert first.returncode == 0, first.stderr[-3000:]
    (target / "variables" / "marker").write_text("from the first export")
    again = run_cli("export", "--model", tmp / "g.keras", "--out", target, "--overwrite")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (target / "variables" / "marker").exists()  # replaced, not merged
    assert (target / "saved_model.pb").exists()
    (target / "important.txt").write_text("mine")
    refused = run_cli("export", "--model", tmp / "g.keras", "--out", target, "--overwrite")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {target} is not a SavedModel directory")
    assert (target / "important.txt").read_text() == "mine"
    # nothing of the refused export is left beside it
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".sm_again")) == []


@tf_pass_only
def test_saved_model_draws_labels_from_the_seed_like_the_keras_file(exported, tmp_path):
    """`generate --saved-model` of a conditional export without --label
    draws the labels from the seed, as the .keras path does (it used to
    demand --label), and gives the same images."""
    _, tmp = exported
    common = ["--num", "5", "--seed", "3"]
    keras_run = run_cli(
        "generate",
        "--model",
        tmp / "g.keras",
        *common,
        "--out",
        tmp_path / "k.png",
        "--npy",
        tmp_path / "k.npy",
    )
    saved_run = run_cli(
        "generate",
        "--saved-model",
        tmp / "g_sm",
        *common,
        "--out",
        tmp_path / "s.png",
        "--npy",
        tmp_path / "s.npy",
    )
    assert keras_run.returncode == 0, keras_run.stderr[-3000:]
    assert saved_run.returncode == 0, saved_run.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "k.npy"))
    drawn = keras_run.stdout.split("labels drawn from seed 3:")[1].split()[:5]
    assert drawn == saved_run.stdout.split("labels drawn from seed 3:")[1].split()[:5]


@tf_pass_only
@pytest.mark.parametrize("make", ["missing", "not_saved_model"])
def test_bad_saved_model_directory(tmp_path, make):
    path = tmp_path / "sm"
    if make == "not_saved_model":
        path.mkdir()
    result = run_cli("generate", "--saved-model", path, "--out", tmp_path / "a.png")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.png").exists()


# Each backend's pass saves a file that the next backend in this cycle loads:
# every backend writes one and reads one (the three other pairs repeated the
# same save and load code: 30-50 s of the suite).
NEXT_BACKEND = {"tensorflow": "torch", "torch": "jax", "jax": "tensorflow"}


def test_keras_file_is_portable_across_backends(tmp_path):
    """A .keras saved under this backend gives the same logits under the
    next one (torch only when it is installed); under this backend, in a
    fresh process: test_keras_file.py::test_keras_round_trip_in_a_fresh_process."""
    import importlib.util

    other = NEXT_BACKEND[keras.backend.backend()]

    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} is not installed")
    keras.utils.set_random_seed(0)
    model = build_pixelcnn(input_shape=(8, 8, 1), filters=8, num_residual_blocks=1)
    model.save(tmp_path / "m.keras")
    x = (np.random.default_rng(0).random((3, 8, 8, 1)) > 0.5).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    code = f"""
import numpy as np, keras, keras_pixelcnn
m = keras.saving.load_model({str(tmp_path / "m.keras")!r})
out = keras.ops.convert_to_numpy(m(np.load({str(tmp_path / "x.npy")!r})))
d = np.abs(out - np.load({str(tmp_path / "y.npy")!r})).max()
assert d < 1e-5, d
print("ok", keras.backend.backend())
"""
    result = run_python(code, env={"KERAS_BACKEND": other})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"ok {other}" in result.stdout


@tf_pass_only
def test_export_bad_model_files(tmp_path):
    cut = tmp_path / "cut.keras"
    keras.utils.set_random_seed(0)
    build_pixelcnn(input_shape=(8, 8, 1), filters=8, num_residual_blocks=0).save(
        tmp_path / "m.keras"
    )
    data = (tmp_path / "m.keras").read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    for model, fragment in ((cut, "cut.keras"), (tmp_path / "none.keras", "does not exist")):
        result = run_cli(
            "export",
            "--model",
            model,
            "--out",
            tmp_path / "sm",
            env={"KERAS_BACKEND": "tensorflow"},
        )
        assert result.returncode == 1, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
        assert not (tmp_path / "sm").exists()


@tf_pass_only
def test_saved_model_gets_the_permissions_of_a_normal_write(exported):
    """mkdtemp makes 0700 directories: a serving process of another user could
    not read the export. It must get what the umask gives a normal write."""
    import stat

    from keras_pixelcnn.atomic import current_umask

    _, tmp = exported
    umask = current_umask()
    root = tmp / "g_sm"
    assert stat.S_IMODE(root.stat().st_mode) == 0o777 & ~umask
    assert (root / "saved_model.pb").exists()
    readable, traversable = 0o444 & ~umask, 0o111 & ~umask
    for path in root.rglob("*"):  # what is inside: readable (and directories enterable) by all
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & readable == readable, (path, oct(mode))
        if path.is_dir():
            assert mode & traversable == traversable, (path, oct(mode))


@tf_pass_only
@pytest.mark.slow
def test_256_level_pixelcnn_pp_exports_sample_and_log_prob(tmp_path):
    """The SavedModel of a 256-level PixelCNN++ draws the images of the
    .keras model (2 uniforms per pixel) and scores them with the mixture."""
    from keras_pixelcnn import build_pixelcnn_pp
    from keras_pixelcnn.likelihoods import DiscretizedLogisticMixture
    from keras_pixelcnn.sampling.reference import ReferenceSampler

    keras.utils.set_random_seed(0)
    model = build_pixelcnn_pp(
        (8, 8, 1), filters=4, num_resnets=1, dropout=0.0, likelihood=DiscretizedLogisticMixture(2)
    )
    model.save(tmp_path / "pp.keras")
    result = run_cli(
        "export",
        "--model",
        tmp_path / "pp.keras",
        "--out",
        tmp_path / "pp_sm",
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    x = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = f"""
import numpy as np, tensorflow as tf
from keras_pixelcnn.serving import SavedModelSampler
m = tf.saved_model.load({str(tmp_path / "pp_sm")!r})
out = m.signatures["log_prob"](images=tf.constant(np.load({str(tmp_path / "x.npy")!r})))
np.save({str(tmp_path / "nll.npy")!r}, out["nll_nats"].numpy())
sampler = SavedModelSampler({str(tmp_path / "pp_sm")!r})
assert sampler.noise_shape == (8, 8, 2), sampler.noise_shape
np.save({str(tmp_path / "s.npy")!r}, sampler.sample(2, seed=3))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "nll.npy"), per_image_nll(model, x), rtol=1e-5)
    # the reference sampler's images (= the fast sampler's: test_pixelcnn_pp.py)
    expected = ReferenceSampler(model).sample(draw_noise(2, (8, 8, 2), seed=3))
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), expected)
    assert expected.max() > 1, "256-level images"
