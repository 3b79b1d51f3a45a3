"""Every kind of wrong input, driven through the real CLI in subprocesses.

Each case must give exactly one line `error: ...` naming the problem, the
exit code of the one rule in keras_pixelcnn/errors.py (2: the command line is
wrong, an output exists without --overwrite included; 1: a file or the world
is wrong), no traceback, no new or partial
file, and leave the existing files untouched. The checks do not depend on the
Keras backend: the list runs in the TensorFlow pass of `tests/run_backends.py`
(loading errors on every backend: test_keras_file.py).
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest
from cli_forks import CLIForks
from conftest import make_fake_mnist
from helpers import ROOT, run_cli

SENTINEL = b"existing output, must survive\n"


def _write_files(d):
    """The files the cases use: good and bad models, data, outputs."""
    from keras_pixelcnn import build_gated_pixelcnn, build_pixelcnn

    keras.utils.set_random_seed(0)
    build_pixelcnn(
        input_shape=(8, 8, 1), filters=8, num_residual_blocks=1, input_kernel_size=5
    ).save(d / "tiny8.keras")
    build_pixelcnn(filters=8, num_residual_blocks=1).save(d / "tiny28.keras")
    build_gated_pixelcnn(input_shape=(8, 8, 1), filters=8, num_layers=2, num_classes=10).save(
        d / "cond8.keras"
    )
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(d / "unrelated.keras")
    good = (d / "tiny8.keras").read_bytes()
    (d / "truncated.keras").write_bytes(good[: len(good) // 2])
    (d / "empty.keras").write_bytes(b"")
    (d / "text.keras").write_text("this is not a model\n")
    np.savez(d / "mnist.npz", **make_fake_mnist())
    fake = make_fake_mnist()
    np.savez(d / "float_mnist.npz", **dict(fake, x_train=fake["x_train"].astype("float64")))
    np.savez(d / "shape_mnist.npz", **dict(fake, x_train=fake["x_train"][:, :10, :10]))
    (d / "corrupt.npz").write_bytes(os.urandom(2000))
    (d / "exists.png").write_bytes(SENTINEL)
    (d / "exists.json").write_bytes(SENTINEL)
    (d / "exists.npy").write_bytes(SENTINEL)
    (d / "exists_dir").mkdir()
    (d / "exists_dir" / "keep.txt").write_bytes(SENTINEL)
    (d / "foreign_run").mkdir()
    (d / "foreign_run" / "notes.txt").write_bytes(SENTINEL)
    (d / "file").write_bytes(SENTINEL)
    (d / "corrupt_run").mkdir()
    (d / "corrupt_run" / "config.json").write_text('{"config": {"model": ')
    keras.utils.set_random_seed(0)
    image = keras.Input((28, 28, 1))  # an image model with no causal convolution
    keras.Model(image, keras.layers.Conv2D(1, 3, padding="same")(image)).save(d / "conv28.keras")
    (d / "old_run").mkdir()
    (d / "old_run" / "config.json").write_text('{"config": {"model": "pixelcnn", "filters": 8}}')


# (id, arguments, expected exit code, fragment of the message[, options])
# {d} is the directory of the files above; outputs would go to {d}/new*.
CASES = [
    ("model-missing", "generate --model {d}/none.keras --out {d}/new.png", 1, "does not exist"),
    ("model-empty", "generate --model {d}/empty.keras --out {d}/new.png", 1, "is empty"),
    ("model-truncated", "generate --model {d}/truncated.keras --out {d}/new.png", 1, "truncated"),
    (
        "model-not-keras",
        "generate --model {d}/text.keras --out {d}/new.png",
        1,
        "not a .keras archive",
    ),
    (
        "model-unrelated",
        "generate --model {d}/unrelated.keras --out {d}/new.png",
        1,
        "not a PixelCNN-family model",
    ),
    (
        "model-wrong-suffix",
        "generate --model {d}/mnist.npz --out {d}/new.png",
        1,
        "must end in .keras",
    ),
    (
        "label-unconditional",
        "generate --model {d}/tiny8.keras --label 3 --out {d}/new.png",
        2,
        "unconditional",
    ),
    (
        "label-out-of-range",
        "generate --model {d}/cond8.keras --label 12 --out {d}/new.png",
        2,
        "--label 12 is out of range",
    ),
    (
        "label-garbage",
        "generate --model {d}/cond8.keras --label seven --out {d}/new.png",
        2,
        "--label must be a digit",
    ),
    ("num-text", "generate --num abc --out {d}/new.png", 2, "'--num'"),
    (
        "num-negative",
        "generate --num -3 --out {d}/new.png",
        2,
        "'--num': Input should be greater than or equal to 1",
    ),
    (
        "num-zero",
        "generate --num 0 --out {d}/new.png",
        2,
        "'--num': Input should be greater than or equal to 1",
    ),
    (
        "out-exists",
        "generate --model {d}/tiny8.keras --out {d}/exists.png",
        2,
        "already exists (pass --overwrite",
    ),
    (
        "out-dir-missing",
        "generate --model {d}/tiny8.keras --out {d}/nodir/new.png",
        1,
        "does not exist",
    ),
    (
        "out-parent-is-file",
        "generate --model {d}/tiny8.keras --out {d}/file/new.png",
        1,
        "does not exist",
    ),
    ("out-not-png", "generate --out {d}/new.jpg", 2, "--out must end in .png"),
    (
        "disk-full",
        "generate --model {d}/tiny28.keras --num 64 --out {d}/new.png",
        1,
        "File too large",
        {"fsize": 4096},
    ),
    (
        "backend-unknown",
        "generate --backend theano --out {d}/new.png",
        2,
        "'theano' is not one of 'tensorflow', 'jax', 'torch'",
    ),
    (
        "sampler-unknown",
        "generate --sampler magic --out {d}/new.png",
        2,
        "'magic' is not one of 'fast', 'reference'",
    ),
    (
        "savedmodel-missing",
        "generate --saved-model {d}/none_sm --out {d}/new.png",
        1,
        "does not exist",
    ),
    (
        "savedmodel-not-dir",
        "generate --saved-model {d}/file --out {d}/new.png",
        1,
        "is not a SavedModel directory",
    ),
    (
        "lr-nan",
        "train --learning-rate nan --run-dir {d}/new_run",
        2,
        "--learning-rate must be a positive number",
    ),
    (
        "lr-negative",
        "train --learning-rate -0.1 --run-dir {d}/new_run",
        2,
        "--learning-rate must be a positive number",
    ),
    (
        "epochs-zero",
        "train --epochs 0 --run-dir {d}/new_run",
        2,
        "'--epochs': Input should be greater than or equal to 1",
    ),
    (
        "backup-every-zero",
        "train --backup-every 0 --run-dir {d}/new_run",
        2,
        "'--backup-every': Input should be greater than or equal to 1",
    ),
    ("data-missing", "train --data {d}/none.npz --run-dir {d}/new_run", 1, "does not exist"),
    ("data-corrupt", "train --data {d}/corrupt.npz --run-dir {d}/new_run", 1, "corrupt.npz"),
    ("data-dtype", "train --data {d}/float_mnist.npz --run-dir {d}/new_run", 1, "uint8"),
    ("data-shape", "train --data {d}/shape_mnist.npz --run-dir {d}/new_run", 1, "shape"),
    (
        "run-dir-foreign",
        "train --data {d}/mnist.npz --run-dir {d}/foreign_run --overwrite",
        1,
        "not a keras-pixelcnn run directory",
    ),
    (
        "model-family-unknown",
        "train --model vae --run-dir {d}/new_run",
        2,
        "'vae' is not one of 'pixelcnn', 'gated'",
    ),
    (
        "conditional-pixelcnn",
        "train --conditional --run-dir {d}/new_run",
        2,
        "--conditional needs --model gated",
    ),
    (
        "init-from-missing",
        "train --data {d}/mnist.npz --validation-size 16 --init-from {d}/none.keras --run-dir {d}/new_run",
        1,
        "does not exist",
    ),
    (
        "init-from-other-model",
        "train --data {d}/mnist.npz --validation-size 16 --model gated --filters 8 --layers 2 "
        "--init-from {d}/tiny28.keras --run-dir {d}/new_run",
        1,
        "does not match the model to train",
    ),
    (
        "evaluate-shape-mismatch",
        "evaluate --model {d}/tiny8.keras --data {d}/mnist.npz --json {d}/new.json",
        1,
        "does not match the data's image shape",
    ),
    (
        "evaluate-json-exists",
        "evaluate --model {d}/tiny28.keras --data {d}/mnist.npz --json {d}/exists.json",
        2,
        "already exists",
    ),
    (
        "evaluate-samples-negative",
        "evaluate --samples -1",
        2,
        "'--samples': Input should be greater than or equal to 0",
    ),
    (
        "complete-rows-zero",
        "complete --rows 0 --out {d}/new.png",
        2,
        "'--rows': Input should be greater than or equal to 1",
    ),
    (
        "complete-rows-29",
        "complete --rows 29 --out {d}/new.png",
        2,
        "'--rows': Input should be less than or equal to 27",
    ),
    (
        "complete-too-many",
        "complete --model {d}/tiny28.keras --data {d}/mnist.npz --num 30 --offset 10 "
        "--out {d}/new.png",
        2,
        "exceeds the 32 test digits",
    ),
    ("show-unknown", "show galaxy", 2, "galaxy"),
    (
        "resume-other-options",
        "train --data {d}/mnist.npz --validation-size 16 --run-dir {d}/old_run --filters 16",
        2,
        "holds a run with filters=8, not 16",
    ),
    (
        "seed-negative-generate",
        "generate --seed -1 --out {d}/new.png",
        2,
        "'--seed': Input should be greater than or equal to 0",
    ),
    (
        "seed-negative-train",
        "train --seed -1 --run-dir {d}/new_run",
        2,
        "'--seed': Input should be greater than or equal to 0",
    ),
    (
        "lr-decay-above-one",
        "train --lr-decay 1.5 --run-dir {d}/new_run",
        2,
        "--lr-decay must be in (0, 1], got 1.5",
    ),
    (
        "seed-negative-saved-model",
        "generate --saved-model {d}/exists_dir --seed -1 --out {d}/new.png",
        2,
        "'--seed': Input should be greater than or equal to 0",
    ),
    (
        "precision-unknown",
        "train --precision float8 --run-dir {d}/new_run",
        2,
        "'float8' is not one of 'float32', 'mixed_bfloat16'",
    ),
    (
        "distribute-unknown",
        "train --distribute horovod --run-dir {d}/new_run",
        2,
        "'horovod' is not one of",
    ),
    (
        "npy-suffix",
        "generate --model {d}/tiny8.keras --npy {d}/new.txt --out {d}/new.png",
        2,
        "--npy must end in .npy",
    ),
    (
        "complete-offset-negative",
        "complete --offset -1 --out {d}/new.png",
        2,
        "'--offset': Input should be greater than or equal to 0",
    ),
    ("show-run-missing", "show run {d}/no_run --out {d}/new.png", 1, "does not exist"),
    (
        "show-progress-label",
        "show progress --model {d}/tiny8.keras --label 3 --out {d}/new.png",
        2,
        "unconditional",
    ),
    ("export-exists", "export --model {d}/tiny8.keras --out {d}/exists_dir", 2, "already exists"),
    ("export-model-missing", "export --model {d}/none.keras --out {d}/new_sm", 1, "does not exist"),
    # --overwrite replaces only what the command writes (bug: export deleted any folder)
    (
        "export-overwrite-foreign-dir",
        "export --model {d}/tiny8.keras --out {d}/exists_dir --overwrite",
        1,
        "is not a SavedModel directory",
    ),
    (
        "export-overwrite-file",
        "export --model {d}/tiny8.keras --out {d}/file --overwrite",
        1,
        "is not a SavedModel directory",
    ),
    (
        "png-overwrite-foreign",
        "generate --model {d}/tiny8.keras --out {d}/exists.png --overwrite",
        1,
        "exists and is not a PNG image",
    ),
    (
        "npy-overwrite-foreign",
        "generate --model {d}/tiny8.keras --npy {d}/exists.npy --out {d}/new.png --overwrite",
        1,
        "exists and is not a NumPy .npy file",
    ),
    (
        "json-overwrite-foreign",
        "evaluate --model {d}/tiny28.keras --data {d}/mnist.npz --json {d}/exists.json --overwrite",
        1,
        "exists and is not a JSON file",
    ),
    (
        "complete-overwrite-foreign",
        "complete --model {d}/tiny28.keras --data {d}/mnist.npz --out {d}/exists.png --overwrite",
        1,
        "exists and is not a PNG image",
    ),
    # one line before the slow work (bugs: a traceback after the NLL, silent acceptance)
    (
        "classifier-not-a-classifier",
        "evaluate --model {d}/tiny28.keras --data {d}/mnist.npz --samples 4 "
        "--classifier {d}/tiny28.keras",
        1,
        "is not an MNIST classifier",
    ),
    (
        "classifier-without-samples",
        "evaluate --model {d}/tiny28.keras --data {d}/mnist.npz --classifier {d}/tiny28.keras",
        2,
        "--classifier scores samples; pass --samples N too",
    ),
    (
        "run-dir-corrupt-config",
        "train --data {d}/mnist.npz --validation-size 16 --run-dir {d}/corrupt_run",
        1,
        "config.json is unreadable",
    ),
    (
        "validation-size-too-large",
        "train --data {d}/mnist.npz --validation-size 60000 --run-dir {d}/new_run",
        2,
        "--validation-size 60000 must be below the data's 64 training images",
    ),
    (
        "distribute-wrong-backend",
        "train --data {d}/mnist.npz --distribute data-parallel --backend tensorflow "
        "--run-dir {d}/new_run",
        2,
        "--distribute data-parallel needs the jax backend",
    ),
    (
        "export-on-jax",
        "export --model {d}/tiny8.keras --out {d}/new_sm --backend jax",
        2,
        "export runs on the TensorFlow backend, not jax",
    ),
    (
        "dropout-for-pixelcnn",
        "train --data {d}/mnist.npz --dropout 0.3 --run-dir {d}/new_run",
        2,
        "--dropout applies to --model pixelcnn_pp; pixelcnn has no use for it",
    ),
    (
        "layers-for-pixelcnn",
        "train --data {d}/mnist.npz --layers 3 --run-dir {d}/new_run",
        2,
        "--layers applies to --model gated; pixelcnn has no use for it",
    ),
    (
        "blocks-for-gated",
        "train --data {d}/mnist.npz --model gated --blocks 2 --run-dir {d}/new_run",
        2,
        "--blocks applies to --model pixelcnn or pixelcnn_pp; gated has no use for it",
    ),
    (
        "mixtures-for-bernoulli",
        "train --data {d}/mnist.npz --mixtures 5 --run-dir {d}/new_run",
        2,
        "--mixtures applies to the logistic-mixture likelihood",
    ),
    (
        "saved-model-and-model",
        "generate --saved-model {d}/exists_dir --model {d}/tiny8.keras --out {d}/new.png",
        2,
        "pass --model or --saved-model, not both",
    ),
    (
        # the default model named on the command line is still a second model
        "saved-model-and-default-model",
        "generate --saved-model {d}/exists_dir --model "
        + str(ROOT / "saved_models" / "gated_pixelcnn_conditional.keras")
        + " --out {d}/new.png",
        2,
        "pass --model or --saved-model, not both",
    ),
    (
        "model-not-causal-reference",
        "generate --model {d}/conv28.keras --sampler reference --out {d}/new.png",
        1,
        "has no causal (masked or shifted) convolution",
    ),
    (
        "model-not-causal-fast",
        "generate --model {d}/conv28.keras --out {d}/new.png",
        1,
        "has no causal (masked or shifted) convolution",
    ),
    # options bounded by what a machine can serve (bug: show data --num 100000 was OOM-killed)
    (
        "show-data-num-huge",
        "show data --data {d}/mnist.npz --num 100000 --out {d}/new.png",
        2,
        "'--num': Input should be less than or equal to 500",
    ),
    (
        "generate-num-huge",
        "generate --num 10001 --out {d}/new.png",
        2,
        "'--num': Input should be less than or equal to 10000",
    ),
]


def _argv(d, case):
    return [a.format(d=d) for a in case[1].split()]


def _options(case):
    return case[4] if len(case) > 4 else {}


def _snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Runs every case against its own copy of the files: those with
    `--backend` through `python cli.py` itself, the rest in forked children
    of two warm interpreters (tests/cli_forks.py), two at a time."""
    import shutil

    base = tmp_path_factory.mktemp("bad_input")
    _write_files(base)
    dirs = {}
    for case in CASES:
        dirs[case[0]] = tmp_path_factory.mktemp(case[0])
        shutil.copytree(base, dirs[case[0]], dirs_exist_ok=True)
    before = _snapshot(base)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=keras.backend.backend())
    fresh = [c for c in CASES if "--backend" in c[1]]
    forked = [c for c in CASES if c not in fresh]
    servers = [CLIForks(env), CLIForks(env)]
    try:

        def run_share(k):
            server, done = servers[k], {}
            for case in forked[k::2]:
                d = dirs[case[0]]
                fsize = _options(case).get("fsize")
                done[case[0]] = server.run(_argv(d, case), cwd=d, fsize=fsize)
            for case in fresh[k::2]:
                done[case[0]] = run_cli(*_argv(dirs[case[0]], case), cwd=dirs[case[0]], fresh=True)
            return done

        with ThreadPoolExecutor(max_workers=2) as pool:
            done = {name: r for share in pool.map(run_share, (0, 1)) for name, r in share.items()}
    finally:
        for server in servers:
            server.close()
    return {name: (done[name], dirs[name], before) for name in done}


def test_there_are_many_distinct_cases():
    assert len({c[0] for c in CASES}) == len(CASES) >= 25
    commands = {c[1].split()[0] for c in CASES}
    assert commands == {"generate", "train", "evaluate", "complete", "show", "export"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.slow
def test_bad_input(results, case):
    name, _, code, fragment, *_ = case
    result, d, before = results[name]
    err = result.stderr
    # progress displays ("sampling 64 images ━━━━━━  50% 0:00:01") are not messages
    lines = [
        line
        for line in err.splitlines()
        if line.strip() and not re.search(r"\d+% +\d+:\d\d:\d\d\s*$", line)
    ]
    assert result.returncode == code, f"exit {result.returncode}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    assert fragment in lines[0], lines[0]
    assert result.stdout.strip() == "", result.stdout
    after = _snapshot(d)
    assert after == before, f"files changed: {set(after) ^ set(before) or 'contents'}"
