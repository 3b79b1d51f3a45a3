"""The CLI: outputs, and every user error as one line with a non-zero exit."""

import os
import stat
import sys

import numpy as np
import pytest
from helpers import ROOT, grid_cells, run_cli

from keras_pixelcnn import cli


@pytest.fixture
def model_file(tiny_model, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    return path


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, expected_code, fragment):
    assert code == expected_code, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err


def test_generate_writes_png_and_npy(capsys, model_file, tmp_path, monkeypatch):
    out, npy = tmp_path / "s.png", tmp_path / "s.npy"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: progress is drawn
    code, stdout, err = run(
        capsys,
        "generate",
        "--model",
        model_file,
        "--num",
        4,
        "--out",
        out,
        "--npy",
        npy,
        "--seed",
        3,
    )
    assert code == 0, err
    arr = np.load(npy)
    assert arr.shape == (4, 8, 8, 1) and set(np.unique(arr)) <= {0, 1}
    assert 0 < arr.mean() < 1  # an untrained model draws both colours
    # The PNG shows exactly the images of the .npy, 2x2, pixel for pixel.
    np.testing.assert_array_equal(grid_cells(out, 2, 2, 8) > 0.5, arr[..., 0] > 0.5)
    assert "100%" in err  # progress display
    assert "wrote" in stdout
    code, _, err = run(
        capsys,
        "generate",
        "--model",
        model_file,
        "--num",
        4,
        "--out",
        out,
        "--npy",
        tmp_path / "t.npy",
        "--seed",
        3,
    )
    assert_one_line_error(code, err, 2, "already exists (pass --overwrite")
    code, _, _ = run(
        capsys,
        "generate",
        "--model",
        model_file,
        "--num",
        4,
        "--out",
        out,
        "--npy",
        tmp_path / "t.npy",
        "--seed",
        3,
        "--overwrite",
    )
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), arr)


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["generate", "--num", "0"], 2, "'--num': Input should be greater than or equal to 1"),
        (["generate", "--num", "-3"], 2, "'--num': Input should be greater than or equal to 1"),
        (["generate", "--num", "10001"], 2, "'--num': Input should be less than or equal to 10000"),
        (["generate", "--num", "abc"], 2, "'--num'"),
        (["generate", "--seed", "-1"], 2, "'--seed': Input should be greater than or equal to 0"),
        (["generate", "--backend", "theano"], 2, "'theano' is not one of"),
        (["generate", "--out", "x.jpg"], 2, "--out must end in .png"),
        (["generate", "--label", "1,x"], 2, "--label must be a digit"),
        (["generate", "--label", "10"], 2, "--label 10 is out of range"),
        (["generate", "--bogus"], 2, "--bogus"),
        (["train", "--epochs", "-1"], 2, "'--epochs': Input should be greater than or equal to 1"),
        (["train", "--epochs", "0"], 2, "'--epochs': Input should be greater than or equal to 1"),
        (["train", "--learning-rate", "nan"], 2, "--learning-rate must be a positive number"),
        (["train", "--learning-rate", "-0.1"], 2, "--learning-rate must be a positive number"),
        (["train", "--batch-size", "0"], 2, "'--batch-size': Input should be greater than"),
        (["train", "--model", "vae"], 2, "'vae' is not one of 'pixelcnn', 'gated'"),
        (["train", "--backend", "mxnet"], 2, "'mxnet' is not one of"),
        (["train", "--conditional"], 2, "--conditional needs --model gated"),
        (["show", "progress", "--label", "12"], 2, "--label 12 is out of range"),
    ],
)
def test_usage_errors(capsys, args, code, fragment):
    got, _, err = run(capsys, *args)
    assert_one_line_error(got, err, code, fragment)


def test_a_bad_sampler_unrolling_is_refused_before_training_starts(
    capsys, fake_npz, tmp_path, monkeypatch
):
    """The sample grids' sampler is made after the first epoch; the variable
    is checked before anything loads."""
    monkeypatch.setenv("KERAS_PIXELCNN_UNROLL", "3x2")
    run_dir = tmp_path / "run"
    args = ["--data", fake_npz, "--run-dir", run_dir, "--epochs", 1, "--validation-size", 16]
    code, _, err = run(capsys, "train", *args, "--batch-size", 16, "--filters", 4)
    assert_one_line_error(code, err, 2, "KERAS_PIXELCNN_UNROLL must be ROWSxPIXELS")
    assert "'3x2'" in err
    assert not run_dir.exists()


def test_missing_model_file(capsys, tmp_path):
    code, _, err = run(
        capsys, "generate", "--model", tmp_path / "no.keras", "--out", tmp_path / "a.png"
    )
    assert_one_line_error(code, err, 1, "does not exist")
    assert not (tmp_path / "a.png").exists()


def test_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"PK\x03\x04garbage")
    code, _, err = run(capsys, "generate", "--model", bad, "--out", tmp_path / "a.png")
    assert_one_line_error(code, err, 1, "bad.keras")
    assert not (tmp_path / "a.png").exists()


def test_unwritable_and_missing_output_directory(capsys, model_file, tmp_path):
    code, _, err = run(
        capsys, "generate", "--model", model_file, "--out", tmp_path / "no" / "a.png"
    )
    assert_one_line_error(code, err, 1, "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        code, _, err = run(capsys, "generate", "--model", model_file, "--out", locked / "a.png")
        assert_one_line_error(code, err, 1, "not writable")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_unwritable_output_directory_as_root(capsys, model_file, tmp_path, monkeypatch):
    """Root can write anywhere, so simulate a read-only directory via os.access."""
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode)
    )
    code, _, err = run(capsys, "generate", "--model", model_file, "--out", tmp_path / "a.png")
    assert_one_line_error(code, err, 1, "not writable")
    code, _, err = run(capsys, "train", "--run-dir", tmp_path / "run", "--epochs", 1)
    assert_one_line_error(code, err, 1, "not writable")


def test_missing_data_file(capsys, tmp_path):
    code, _, err = run(
        capsys, "train", "--data", tmp_path / "none.npz", "--run-dir", tmp_path / "r"
    )
    assert_one_line_error(code, err, 1, "does not exist")


def test_bad_data_file(capsys, tmp_path):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.zeros((5, 28, 28), np.float64))
    code, _, err = run(capsys, "train", "--data", bad, "--run-dir", tmp_path / "r")
    assert_one_line_error(code, err, 1, "lacks the keys")


def test_train_end_to_end_in_a_subprocess(fake_npz, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train",
        "--data",
        fake_npz,
        "--run-dir",
        run_dir,
        "--epochs",
        1,
        "--filters",
        8,
        "--blocks",
        1,
        "--samples",
        4,
        "--validation-size",
        16,
        "--batch-size",
        16,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test NLL" in result.stdout and "images/s" in result.stdout
    for name in (
        "model.keras",
        "metrics.json",
        "loss_curve.png",
        "log.csv",
        "samples/epoch_001.png",
    ):
        assert (run_dir / name).exists(), name


def test_help_lists_commands_without_loading_the_backend():
    import subprocess
    import sys

    code = (
        "import sys; from keras_pixelcnn.cli import main; rc = main(['--help']); "
        "print('LOADED' if {'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules) "
        "else 'LIGHT'); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "generate" in result.stdout and "train" in result.stdout
    assert result.stdout.strip().endswith("LIGHT")  # --help never imports Keras or a backend


def test_python_dash_m_runs_the_same_app(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "keras_pixelcnn", "generate", "--num", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "'--num': Input should be greater than or equal to 1" in result.stderr


def test_conditional_model_without_label_draws_labels_from_the_seed(capsys, tmp_path):
    """p(x) = sum_c p(c) p(x | c): the labels come from the seed (uniform),
    are printed, and the images are those of sampling with those labels."""
    import keras

    from keras_pixelcnn import build_gated_pixelcnn
    from keras_pixelcnn.sampling import draw_labels, draw_noise, make_sampler

    keras.utils.set_random_seed(0)
    model = build_gated_pixelcnn(input_shape=(8, 8, 1), filters=8, num_layers=2, num_classes=10)
    model.save(tmp_path / "cond.keras")
    code, stdout, err = run(
        capsys,
        "generate",
        "--model",
        tmp_path / "cond.keras",
        "--num",
        12,
        "--seed",
        4,
        "--out",
        tmp_path / "c.png",
        "--npy",
        tmp_path / "c.npy",
    )
    assert code == 0, err
    labels = draw_labels(12, 10, 4)
    assert len(set(labels.tolist())) > 3  # drawn, not one class
    assert "labels drawn from seed 4: " + " ".join(map(str, labels)) in stdout
    expected = make_sampler(model).sample(draw_noise(12, (8, 8, 1), 4), labels=labels)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), expected.astype("uint8"))


def test_the_default_model_is_the_best_shipped_one():
    from keras_pixelcnn import shipped

    assert cli.DEFAULT_MODEL == shipped.shipped_model("gated_pixelcnn_conditional.keras")
    assert cli.DEFAULT_MODEL.exists()


def test_a_terminal_sees_a_transient_spinner_while_keras_loads(tmp_path):
    """On a terminal, the seconds of `import keras` show a spinner, which
    is erased: the lines that remain are the command's own."""
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    out = tmp_path / "x.png"
    cmd = [
        sys.executable,
        str(ROOT / "cli.py"),
        "generate",
        "--model",
        str(ROOT / "saved_models" / "pixelcnn.keras"),
    ]
    proc = subprocess.Popen(
        [*cmd, "--num", "1", "--out", str(out)],
        stdout=follower,
        stderr=follower,
        cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="100"),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "loading Keras" in text  # bug: a silent start on a terminal
    assert out.exists() and "wrote" in text


def test_nothing_but_the_result_off_a_terminal(model_file, tmp_path):
    """Bug: off a terminal (a log file, CI) the progress bar printed its last
    frame. A pipe gets the result lines on stdout and nothing on stderr."""
    result = run_cli(
        "generate", "--model", model_file, "--num", 3, "--out", tmp_path / "a.png", fresh=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith(f"wrote {tmp_path / 'a.png'} (3 images in ")


@pytest.mark.parametrize("args", [[], ["show"]], ids=["no-command", "show-no-command"])
def test_no_command_prints_the_help_and_no_empty_error_line(args):
    """Bug: `python cli.py` printed the help and then a bare `error:` line."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Usage:" in result.stdout
    assert "error" not in result.stderr, result.stderr
