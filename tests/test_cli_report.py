"""The report commands: evaluate, complete and show (progress, data, run)."""

import json

import numpy as np
import pytest
from helpers import assert_picture
from test_cli import assert_one_line_error, run


@pytest.fixture
def model28(tiny_model, tmp_path):
    path = tmp_path / "tiny28.keras"
    tiny_model(shape=(28, 28, 1)).save(path)
    return path


@pytest.fixture
def model8(tiny_model, tmp_path):
    path = tmp_path / "tiny8.keras"
    tiny_model().save(path)
    return path


@pytest.fixture
def conditional28(tmp_path):
    import keras

    from keras_pixelcnn import build_gated_pixelcnn

    keras.utils.set_random_seed(0)
    path = tmp_path / "cond28.keras"
    build_gated_pixelcnn(filters=8, num_layers=2, num_classes=10).save(path)
    return path


def test_evaluate_prints_and_writes_json(capsys, model28, fake_npz, tmp_path):
    out = tmp_path / "eval.json"
    code, stdout, err = run(
        capsys, "evaluate", "--model", model28, "--data", fake_npz, "--json", out
    )
    assert code == 0, err
    assert "nats/pixel" in stdout and "bits/dim" in stdout and "32 test images" in stdout
    report = json.loads(out.read_text())
    assert report["nll"]["num_images"] == 32 and report["nll"]["nats_per_image_se"] > 0
    assert not report["conditional"]
    code, _, err = run(capsys, "evaluate", "--model", model28, "--data", fake_npz, "--json", out)
    assert_one_line_error(code, err, 2, "already exists (pass --overwrite")


def test_evaluate_conditional_reports_the_marginal(capsys, conditional28, fake_npz, tmp_path):
    out = tmp_path / "eval.json"
    code, stdout, err = run(
        capsys,
        "evaluate",
        "--model",
        conditional28,
        "--data",
        fake_npz,
        "--json",
        out,
        "--limit",
        8,
    )
    assert code == 0, err
    assert "label marginalized" in stdout
    report = json.loads(out.read_text())
    assert report["nll"]["num_images"] == 8
    # Independently: float64 NumPy NLLs per class from the model's logits, then
    # -log((1/10) sum_c p(x | c)) per image, by a plain log-sum-exp.
    import keras

    model = keras.saving.load_model(conditional28)
    with np.load(fake_npz) as f:
        x = (f["x_test"][:8, :, :, None] > 127.5).astype("float32")
        y = f["y_test"][:8].astype("int32")

    def nll(labels):
        logits = np.asarray(model.predict_on_batch([x, labels]), "float64")
        return (np.logaddexp(0, logits) - x * logits).reshape(8, -1).sum(axis=1)

    per_class = np.stack([nll(np.full(8, c, "int32")) for c in range(10)], axis=1)
    m = (-per_class).max(axis=1)
    marginal = -(m + np.log(np.exp(-per_class - m[:, None]).sum(axis=1)) - np.log(10))
    assert report["nll_label_marginalized"]["nats_per_image"] == pytest.approx(
        marginal.mean(), rel=1e-5
    )
    assert report["nll"]["nats_per_image"] == pytest.approx(nll(y).mean(), rel=1e-5)
    # p(x) = mean_c p(x|c) >= p(x|y) / 10: the marginal is within log 10 of the conditional
    assert np.all(marginal <= nll(y) + np.log(10) + 1e-9)


def test_evaluate_samples_scores_them(capsys, conditional28, fake_npz, tmp_path):
    """`--samples 20` scores the fast sampler's images for seed 0 with labels
    0, 1, ..., 9, 0, ... against the test split and the first 20 training
    images: the report is what the library computes from those inputs."""
    out = tmp_path / "eval.json"
    code, stdout, err = run(
        capsys,
        "evaluate",
        "--model",
        conditional28,
        "--data",
        fake_npz,
        "--json",
        out,
        "--samples",
        20,
        "--limit",
        8,
    )
    assert code == 0, err
    quality = json.loads(out.read_text())["sample_quality"]

    from keras_pixelcnn.data import load_test_split
    from keras_pixelcnn.evaluation.classifier import load_classifier
    from keras_pixelcnn.evaluation.sample_quality import sample_quality
    from keras_pixelcnn.keras_file import load_model
    from keras_pixelcnn.sampling import draw_noise, make_sampler

    model = load_model(conditional28)
    labels = np.arange(20) % 10
    images = make_sampler(model, "fast").sample(draw_noise(20, (28, 28, 1), 0), labels=labels)
    mnist = load_test_split(str(fake_npz), (28, 28, 1), 8, conditional=True)
    expected = sample_quality(
        load_classifier(), images, mnist.test.images, mnist.train.images[:20], labels
    )
    assert len(mnist.test.images) == 8 and quality["num_samples"] == 20
    expected = json.loads(json.dumps(expected))  # as the report stores it (string keys)
    assert quality.keys() == expected.keys()
    assert quality["label_accuracy_per_class"] == expected["label_accuracy_per_class"]
    for key, value in expected.items():
        if isinstance(value, dict):
            continue
        assert quality[key] == pytest.approx(value, rel=1e-6), key
    assert f"classifier score: {expected['classifier_score']:.3f}" in stdout
    assert f"Fréchet distance: {expected['frechet_distance']:.3f}" in stdout


def test_complete_writes_one_picture(capsys, model28, fake_npz, tmp_path):
    out = tmp_path / "c.png"
    code, stdout, err = run(
        capsys,
        "complete",
        "--model",
        model28,
        "--data",
        fake_npz,
        "--num",
        2,
        "--completions",
        3,
        "--rows",
        14,
        "--out",
        out,
    )
    assert code == 0, err
    assert_picture(out, 2 * 28, 5 * 28)  # 2 digits: original, occluded, 3 completions
    assert "6 completions" in stdout


def test_complete_conditional(capsys, conditional28, fake_npz, tmp_path):
    out = tmp_path / "c.png"
    code, _, err = run(
        capsys,
        "complete",
        "--model",
        conditional28,
        "--data",
        fake_npz,
        "--num",
        2,
        "--completions",
        2,
        "--rows",
        20,
        "--out",
        out,
    )
    assert code == 0, err
    assert_picture(out, 2 * 28, 4 * 28)


def test_show_progress_data_and_run(capsys, model28, fake_npz, tmp_path):
    code, stdout, err = run(
        capsys, "show", "progress", "--model", model28, "--num", 3, "--out", tmp_path / "p.png"
    )
    assert code == 0, err
    assert_picture(tmp_path / "p.png", 3 * 28, 9 * 28)
    assert "0, 98, 196" in stdout
    code, _, err = run(
        capsys, "show", "data", "--data", fake_npz, "--num", 6, "--out", tmp_path / "d.png"
    )
    assert code == 0, err
    assert_picture(tmp_path / "d.png", 2 * 28, 6 * 28)
    from keras_pixelcnn.figures import save_grid

    rundir = tmp_path / "run"
    (rundir / "samples").mkdir(parents=True)
    for e in (1, 2):
        save_grid(
            np.zeros((4, 8, 8, 1)), rundir / "samples" / f"epoch_{e:03d}.png", title=f"epoch {e}"
        )
    (rundir / "log.csv").write_text("epoch,loss,val_loss\n0,0.2,0.19\n1,0.1,0.12\n")
    code, stdout, err = run(capsys, "show", "run", rundir)
    assert code == 0, err
    assert_picture(rundir / "training.png", 2 * 8, 2 * 8)
    assert "epochs 1, 2" in stdout


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["complete", "--rows", "0"], 2, "'--rows': Input should be greater than or equal to 1"),
        (["complete", "--rows", "29"], 2, "'--rows': Input should be less than or equal to 27"),
        (
            ["complete", "--completions", "0"],
            2,
            "'--completions': Input should be greater than or equal to 1",
        ),
        (["complete", "--out", "c.jpg"], 2, "--out must end in .png"),
        (["show", "galaxy"], 2, "galaxy"),
        (["show", "progress", "--label", "12"], 2, "--label 12 is out of range"),
        (
            ["evaluate", "--samples", "-5"],
            2,
            "'--samples': Input should be greater than or equal to 0",
        ),
        (["evaluate", "--json", "e.txt"], 2, "--json must end in .json"),
        (["evaluate", "--limit", "0"], 2, "'--limit': Input should be greater than or equal to 1"),
    ],
)
def test_report_usage_errors(capsys, args, code, fragment):
    got, _, err = run(capsys, *args)
    assert_one_line_error(got, err, code, fragment)


def test_model_data_shape_mismatch(capsys, model8, fake_npz, tmp_path):
    for command in (["evaluate"], ["complete", "--out", tmp_path / "c.png"]):
        code, _, err = run(capsys, *command, "--model", model8, "--data", fake_npz)
        assert_one_line_error(code, err, 1, "does not match the data's image shape")
    assert not (tmp_path / "c.png").exists()


def test_show_run_without_grids(capsys, tmp_path):
    code, _, err = run(capsys, "show", "run", tmp_path)
    assert_one_line_error(code, err, 1, "no per-epoch sample grids")
    code, _, err = run(capsys, "show", "run", tmp_path / "nope")
    assert_one_line_error(code, err, 1, "does not exist")


def test_missing_classifier(capsys, model28, fake_npz, tmp_path):
    code, _, err = run(
        capsys,
        "evaluate",
        "--model",
        model28,
        "--data",
        fake_npz,
        "--samples",
        4,
        "--classifier",
        tmp_path / "none.keras",
    )
    assert_one_line_error(code, err, 1, "classifier not found")
