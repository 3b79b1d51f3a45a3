"""A folder of the user's image files: listing, classes, the seeded split of
whole files, grid and random crops, bad folders, and a colour model trained
and sampled from one through the command line."""

import json

import keras
import numpy as np
import pytest
from helpers import read_png, run_cli
from PIL import Image
from test_colour import mixture_log_prob64

from keras_pixelcnn import image_folder
from keras_pixelcnn.data import FOLDER_SPLIT, epoch_split, load_mnist
from keras_pixelcnn.errors import PixelCNNError, UsageError


def _photo(seed, h, w, mode="RGB"):
    """A smooth colour picture with some texture (PNG-compressible, not flat)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    channels = [
        (127 + 100 * np.sin(x / (3 + k + seed) + y / (5 + k)) + rng.normal(0, 8, (h, w)))
        for k in range(3)
    ]
    rgb = np.clip(np.stack(channels, -1), 0, 255).astype("uint8")
    return Image.fromarray(rgb).convert(mode)


def make_folder(root, sizes, classes=None, mode="RGB"):
    root.mkdir(parents=True, exist_ok=True)
    for k, (h, w) in enumerate(sizes):
        where = root if classes is None else root / classes[k % len(classes)]
        where.mkdir(exist_ok=True)
        _photo(k, h, w, mode).save(where / f"photo_{k:02d}.png")
    return root


def test_files_classes_and_the_recorded_split(tmp_path):
    root = make_folder(tmp_path / "pets", [(20, 24)] * 12, classes=["cats", "dogs"])
    (root / "cats" / "notes.txt").write_text("not an image")  # skipped: not an image suffix
    paths, labels, classes = image_folder.list_files(root)
    assert classes == ["cats", "dogs"] and len(paths) == 12
    assert [p.split("/")[-2] for p in paths] == ["cats"] * 6 + ["dogs"] * 6
    np.testing.assert_array_equal(labels, [0] * 6 + [1] * 6)
    data = load_mnist(str(root), levels=256, image_size=8)
    # the rule as documented: sorted paths permuted by default_rng(0); 2 test, 1 validation
    order = np.random.default_rng(FOLDER_SPLIT["seed"]).permutation(12)
    names = [p.split("pets/")[1] for p in paths]
    assert data.files["test"] == [names[k] for k in order[:2]]
    assert data.files["validation"] == [names[k] for k in order[2:3]]
    assert sorted(data.files["train"]) == sorted(names[k] for k in order[3:])
    # test images: the 2 × 3 grid tiles of each 20 × 24 test file, pixel for pixel
    assert data.test.images.shape == (12, 8, 8, 3) and data.labeled and data.num_classes == 2
    first = np.asarray(Image.open(root / data.files["test"][0]), "float32")
    np.testing.assert_array_equal(data.test.images[4], first[8:16, 8:16])
    np.testing.assert_array_equal(data.test.labels[:6], labels[order[0]])
    # training crops: as many as the training files' tiles, redrawn per epoch, a pure
    # function of (seed, epoch), each a real window of a training file
    a, b, again = (epoch_split(data, data.train, 3, e) for e in (0, 1, 0))
    assert a.images.shape == (9 * 6, 8, 8, 3)
    np.testing.assert_array_equal(a.images, again.images)
    assert (a.images != b.images).any()
    files = [np.asarray(Image.open(root / n), "float32") for n in data.files["train"]]
    crop = a.images[0]
    assert any(
        (f[y : y + 8, x : x + 8] == crop).all() for f in files
        for y in range(13) for x in range(17)
    )  # fmt: skip


def test_levels_2_thresholds_every_channel_and_grey_files_stay_grey(tmp_path):
    root = make_folder(tmp_path / "grey", [(16, 16)] * 5, mode="L")
    data = load_mnist(str(root), levels=2, image_size=8)
    assert data.test.images.shape[-1] == 1 and set(np.unique(data.test.images)) == {0.0, 1.0}
    assert not data.labeled and data.num_classes is None


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "holds no image files"),
        (lambda root: (root / "a.png").write_bytes(b"not a png"), "a.png is not a readable image"),
        (
            lambda root: make_folder(root, [(6, 40)] * 4),
            r"photo_00.png is 40×6 pixels, smaller than the 8×8 crops",
        ),
        (
            lambda root: (
                make_folder(root, [(16, 16)] * 3),
                _photo(9, 16, 16, "L").save(root / "z.png"),
            ),
            r"mixes grey \(z.png\) and colour \(photo_00.png\) files; pass --channels 1",
        ),
        (lambda root: make_folder(root, [(16, 16)] * 3), "needs at least 4"),
    ],
)
def test_bad_folders_name_the_problem(tmp_path, setup, message):
    root = tmp_path / "bad"
    root.mkdir()
    setup(root)
    with pytest.raises(PixelCNNError, match=message):
        load_mnist(str(root), levels=256, image_size=8)


def test_channels_converts_a_mixed_folder(tmp_path):
    root = make_folder(tmp_path / "mixed", [(16, 16)] * 4)
    _photo(9, 16, 16, "L").save(root / "z.png")
    grey = np.asarray(Image.open(root / "z.png"), "float32")
    data = load_mnist(str(root), levels=256, image_size=8, channels=3)
    assert data.test.images.shape[-1] == 3
    assert data.files["test"] == ["photo_02.png", "z.png"]  # default_rng(0) on 5 files
    # z.png's first tile (after photo_02.png's four): its grey values in R, G and B
    np.testing.assert_array_equal(data.test.images[4], np.repeat(grey[:8, :8, None], 3, -1))
    data = load_mnist(str(root), levels=256, image_size=8, channels=1)
    assert data.test.images.shape[-1] == 1


def test_options_that_do_not_apply_are_refused(tmp_path, fake_npz):
    root = make_folder(tmp_path / "photos", [(16, 16)] * 5)
    with pytest.raises(UsageError, match="--binarize dynamic applies to MNIST"):
        load_mnist(str(root), binarization="dynamic", image_size=8)
    with pytest.raises(UsageError, match="--image-size applies to a folder of images"):
        load_mnist(fake_npz, image_size=8)
    with pytest.raises(UsageError, match="--channels applies to a folder of images"):
        load_mnist(fake_npz, channels=3)


def test_show_data_draws_a_folders_training_crops_in_colour(
    tmp_path, fake_npz, monkeypatch, capsys
):
    """`show data --data FOLDER` shows epoch 0's training crops at
    `--image-size` and their per-channel thresholding, in colour; the folder
    options are refused for other data (exit 2, one line, nothing written)."""
    from test_cli import assert_one_line_error, run

    from keras_pixelcnn import figures

    root = make_folder(tmp_path / "photos", [(24, 32)] * 6)
    shown, real = [], figures.save_data_grid

    def spy(raw, binary, *args, **kwargs):
        shown.append((raw, binary))
        return real(raw, binary, *args, **kwargs)

    monkeypatch.setattr(figures, "save_data_grid", spy)
    out = tmp_path / "d.png"
    code, stdout, err = run(
        capsys, "show", "data", "--data", root, "--num", 5, "--image-size", 8, "--out", out
    )
    assert code == 0, err
    assert "5 8×8 training crops" in stdout
    crops = load_mnist(str(root), levels=256, image_size=8).train.images[:5]
    raw, binary = shown[0]
    np.testing.assert_array_equal(raw, crops)
    np.testing.assert_array_equal(binary, (crops > 127.5).astype("float32"))
    png = read_png(out)
    assert (png[..., 0] != png[..., 2]).any(), "show data drew the colour crops in grey"
    for extra in (["--image-size", 8], ["--channels", 3]):
        bad = tmp_path / "bad.png"
        code, _, err = run(capsys, "show", "data", "--data", fake_npz, *extra, "--out", bad)
        assert_one_line_error(code, err, 2, "--image-size and --channels apply to a folder")
        assert not bad.exists()


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="training plumbing; the other backends run the model, sampler and NLL tests",
)
@pytest.mark.slow
def test_cli_trains_a_colour_model_on_a_folder_and_generates_from_it(tmp_path):
    root = make_folder(tmp_path / "photos", [(24, 32)] * 6 + [(16, 40)] * 4)
    run = tmp_path / "run"
    result = run_cli(
        "train", "--data", root, "--run-dir", run, "--model", "pixelcnn", "--filters", "8",
        "--blocks", "1", "--mixtures", "2", "--image-size", "8", "--epochs", "1",
        "--samples", "4",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    files = metrics["data_files"]
    assert len(files["test"]) == 2 and len(files["validation"]) == 1 and len(files["train"]) == 7
    assert files["rule"] == FOLDER_SPLIT["rule"]
    # levels from the data (256 for a folder), the colour mixture, bits/dim over h × w × 3
    model = keras.saving.load_model(run / "model.keras")
    assert model.input_shape == (None, 8, 8, 3) and model.output_shape == (None, 8, 8, 20)
    # the reported bits/dim: the float64 colour-mixture NLL of the test files' grid tiles
    # over h × w × 3 dimensions (bug: tiles of other files, per pixel instead of per dim)
    test = load_mnist(str(root), levels=256, image_size=8).test.images
    params = model.predict(test, verbose=0).reshape(-1, 20)
    nats = -mixture_log_prob64(params, test.reshape(-1, 3), 2, 3, 256).sum()
    expected = nats / (len(test) * 8 * 8 * 3 * np.log(2))
    np.testing.assert_allclose(metrics["test_nll"]["bits_per_dim"], expected, rtol=1e-4)
    grid = read_png(run / "samples" / "epoch_001.png")
    assert (grid[..., 0] != grid[..., 1]).any(), "the epoch grid is grey"
    out = tmp_path / "g.npy"
    gen = run_cli("generate", "--model", run / "model.keras", "--num", "3",
                  "--out", tmp_path / "g.png", "--npy", out)  # fmt: skip
    assert gen.returncode == 0, gen.stderr[-2000:]
    images = np.load(out)
    assert images.shape == (3, 8, 8, 3) and images.max() > 1 and len(np.unique(images)) > 20
    png = read_png(tmp_path / "g.png")
    assert (png[..., 0] != png[..., 2]).any(), "generate wrote a grey picture"


def _readme_command(start):
    from helpers import ROOT

    text = (ROOT / "README.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith(start))
    return line.split()[2:]  # after "python cli.py"


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="training plumbing; the other backends run the model, sampler and NLL tests",
)
@pytest.mark.slow
def test_the_readme_cifar10_recipe_trains_on_tfds_mock_data(tmp_path):
    """The README's `--data cifar10` command, made tiny by later options (the
    last value of an option wins), on tensorflow-datasets' mock CIFAR-10:
    32 × 32 × 3 images at 256 levels (the default for a tfds photo dataset)."""
    import tensorflow_datasets as tfds
    from typer.testing import CliRunner

    from keras_pixelcnn.cli import app

    args = _readme_command("python cli.py train --data cifar10")
    tiny = ["--filters", "4", "--blocks", "1", "--epochs", "1", "--samples", "0"]
    tiny += ["--validation-size", "4", "--run-dir", str(tmp_path / "run")]
    with tfds.testing.mock_data(num_examples=12):
        result = CliRunner().invoke(app, [*args, *tiny])
    assert result.exit_code == 0, result.output[-2000:]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 32, 32, 100)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_images"] == 8 and metrics["validation_images"] == 4
    assert metrics["binarization"].startswith("256 levels")


def test_a_width_the_colour_masks_cannot_split_is_one_line(tmp_path):
    root = make_folder(tmp_path / "photos", [(16, 16)] * 5)
    run = tmp_path / "run"
    args = ["train", "--data", root, "--run-dir", run, "--model", "pixelcnn", "--levels", "2"]
    result = run_cli(*args, "--image-size", "8", "--filters", "64")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == (
        "error: no pixelcnn for (8, 8, 3) images: Invalid value for argument `filters`. With 3 "
        "ordered channels the width and its half must be multiples of 3. Received: filters=64"
    )
    assert not run.exists()
