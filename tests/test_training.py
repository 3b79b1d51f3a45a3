import csv
import json

import keras
import numpy as np
import pytest
from helpers import bernoulli_nats_per_pixel64, grid_cells

from keras_pixelcnn import TrainConfig, load_mnist, train
from keras_pixelcnn.errors import PixelCNNError


def _config(run_dir, **kw):
    base = dict(
        run_dir=str(run_dir),
        epochs=1,
        batch_size=16,
        filters=8,
        num_residual_blocks=1,
        num_samples=4,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_fit_writes_every_output_and_resumes(fake_npz, tmp_path):
    mnist = load_mnist(fake_npz, validation_size=16)
    run = tmp_path / "run"
    lines = []
    metrics = train(_config(run), mnist=mnist, verbose=0, print_fn=lines.append)
    for name in (
        "config.json",
        "log.csv",
        "best.keras",
        "model.keras",
        "loss_curve.png",
        "metrics.json",
        "samples/epoch_001.png",
        "backup",
    ):
        assert (run / name).exists(), name
    with np.load(run / "samples/epoch_001.npz") as grid:  # the grid's images, for `show run`
        assert grid["images"].shape == (4, 28, 28, 1) and int(grid["ncols"]) == 2
        assert set(np.unique(grid["images"])) <= {0, 1}
        # the PNG shows exactly those images, 2 x 2, below its title
        shown = grid_cells(run / "samples/epoch_001.png", 2, 2, 28, top=35) > 0.5
        np.testing.assert_array_equal(shown, grid["images"][..., 0] > 0.5)
    assert metrics["epochs"] == 1 and metrics["test_nll"]["num_images"] == 32
    saved = keras.saving.load_model(run / "model.keras")
    expected = bernoulli_nats_per_pixel64(saved, mnist.test.images)
    assert metrics["test_nll"]["nats_per_pixel"] == pytest.approx(expected, rel=1e-5)
    assert json.loads((run / "metrics.json").read_text())["test_nll"] == metrics["test_nll"]
    assert any("images/s" in line and "nats/pixel" in line for line in lines)
    # Running again with more epochs resumes at epoch 2 and appends to the log.
    metrics = train(_config(run, epochs=2), mnist=mnist, verbose=0, print_fn=lines.append)
    with open(run / "log.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1]
    assert (run / "samples/epoch_002.png").exists()
    assert metrics["epochs"] == 2
    # each invocation is a stage (the loss curve marks where the second took over)
    stages = json.loads((run / "config.json").read_text())["stages"]
    assert [(st["epoch"], st["step"]) for st in stages] == [(0, 0), (1, 0)]


def test_training_lowers_the_loss(fake_npz, tmp_path):
    mnist = load_mnist(fake_npz, validation_size=16)
    train(
        _config(tmp_path / "r", epochs=3, learning_rate=3e-3),
        mnist=mnist,
        verbose=0,
        print_fn=lambda _: None,
    )
    with open(tmp_path / "r" / "log.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert losses[-1] < losses[0] < 0.8


def test_same_seed_same_weights(fake_npz, tmp_path):
    import keras

    mnist = load_mnist(fake_npz, validation_size=16)
    quiet = dict(mnist=mnist, verbose=0, print_fn=lambda _: None)
    train(_config(tmp_path / "a"), **quiet)
    train(_config(tmp_path / "b"), **quiet)
    a = keras.saving.load_model(tmp_path / "a" / "model.keras").get_weights()
    b = keras.saving.load_model(tmp_path / "b" / "model.keras").get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_allclose(wa, wb, atol=1e-6)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"learning_rate": float("nan")}, "learning-rate must be a positive number"),
        ({"learning_rate": -1.0}, "learning-rate must be a positive number"),
        ({"model": "transformer"}, "unknown model 'transformer'"),
        ({"lr_decay": 0.0}, r"--lr-decay must be in \(0, 1\], got 0.0"),
        ({"lr_decay": 1.5}, r"--lr-decay must be in \(0, 1\], got 1.5"),
        ({"ema": 1.0}, r"--ema must be in \(0, 1\), got 1.0"),
        ({"ema": 0}, r"--ema must be in \(0, 1\), got 0"),
        (
            {"ema": 0.99, "distribute": "mirrored"},
            "--ema is not supported with --distribute mirrored",
        ),
    ],
)
def test_bad_config(tmp_path, kw, message):
    with pytest.raises(PixelCNNError, match=message):
        train(_config(tmp_path / "r", **kw), mnist=None, verbose=0)


def test_mixed_bfloat16_trains_and_samples(fake_npz, tmp_path):
    import keras

    mnist = load_mnist(fake_npz, validation_size=16)
    metrics = train(
        _config(tmp_path / "r", precision="mixed_bfloat16"),
        mnist=mnist,
        verbose=0,
        print_fn=lambda _: None,
    )
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    model = keras.saving.load_model(tmp_path / "r" / "model.keras")
    expected = bernoulli_nats_per_pixel64(model, mnist.test.images)
    assert metrics["test_nll"]["nats_per_pixel"] == pytest.approx(expected, rel=1e-5)
    assert model.get_layer("input_conv").compute_dtype == "bfloat16"
    assert (tmp_path / "r" / "samples" / "epoch_001.png").exists()


def test_unknown_precision(tmp_path):
    with pytest.raises(PixelCNNError, match="unknown precision 'float8'"):
        train(_config(tmp_path / "r", precision="float8"), mnist=None, verbose=0)


def test_init_from_starts_at_the_trained_weights(fake_npz, tmp_path):
    import keras

    from keras_pixelcnn.training import build_model, warm_start

    mnist = load_mnist(fake_npz, validation_size=16)
    quiet = dict(mnist=mnist, verbose=0, print_fn=lambda _: None)
    train(_config(tmp_path / "a", learning_rate=3e-3), **quiet)
    source = keras.saving.load_model(tmp_path / "a" / "model.keras")
    lines = []
    metrics = train(
        _config(tmp_path / "b", learning_rate=3e-4, init_from=str(tmp_path / "a" / "model.keras")),
        mnist=mnist,
        verbose=0,
        print_fn=lines.append,
    )
    assert any("starting from the weights of" in line for line in lines)
    assert metrics["init_from"].endswith("model.keras")
    # The fine-tuned run starts where the source ended: its first epoch's
    # validation loss is below the source run's first epoch.
    with open(tmp_path / "a" / "log.csv") as f:
        cold = float(next(csv.DictReader(f))["val_loss"])
    with open(tmp_path / "b" / "log.csv") as f:
        warm = float(next(csv.DictReader(f))["val_loss"])
    assert warm < cold
    # warm_start copies every weight exactly.
    keras.utils.set_random_seed(1)
    fresh = build_model(_config(tmp_path / "c"))
    warm_start(fresh, source)
    for ours, theirs in zip(fresh.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    # init_from is part of the run's identity.
    with pytest.raises(PixelCNNError, match="init-from="):
        train(_config(tmp_path / "b", learning_rate=3e-4), **quiet)


def test_init_from_another_architecture_writes_nothing(fake_npz, tmp_path):
    from keras_pixelcnn.training import build_model

    build_model(_config(tmp_path / "a")).save(tmp_path / "a.keras")
    with pytest.raises(PixelCNNError, match="does not match the model to train"):
        train(
            _config(tmp_path / "b", filters=16, init_from=str(tmp_path / "a.keras")),
            mnist=load_mnist(fake_npz, validation_size=16),
            verbose=0,
        )
    assert not (tmp_path / "b").exists()


def test_a_finished_run_is_not_evaluated_again(fake_npz, tmp_path, monkeypatch):
    from keras_pixelcnn.training import trainer

    mnist = load_mnist(fake_npz, validation_size=16)
    lines = []
    first = train(_config(tmp_path / "r"), mnist=mnist, verbose=0, print_fn=lines.append)
    assert any("parameters" in line and "receptive field" in line for line in lines)
    assert any("32 test images" in line and "run directory" in line for line in lines)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("the finished run was evaluated again")

    monkeypatch.setattr(trainer, "per_image_nll", no_evaluation)
    lines.clear()
    again = train(_config(tmp_path / "r"), mnist=mnist, verbose=0, print_fn=lines.append)
    assert again == json.loads(json.dumps(first))  # the stored metrics.json
    assert lines == [lines[0]] and "is complete" in lines[0] and "larger --epochs" in lines[0]


def test_ctrl_c_before_the_first_backup_says_nothing_was_kept(fake_npz, tmp_path, monkeypatch):
    from keras_pixelcnn.training import trainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "epoch_data", interrupt)
    mnist = load_mnist(fake_npz, validation_size=16)
    with pytest.raises(PixelCNNError, match="before the first backup: nothing was kept") as e:
        train(_config(tmp_path / "r"), mnist=mnist, verbose=0, print_fn=lambda _: None)
    assert e.value.exit_code == 130 and "resume" not in str(e.value)


def test_ctrl_c_during_the_final_evaluation_names_the_model(fake_npz, tmp_path, monkeypatch):
    from keras_pixelcnn.training import trainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "per_image_nll", interrupt)
    mnist = load_mnist(fake_npz, validation_size=16)
    run = tmp_path / "r"
    with pytest.raises(PixelCNNError, match="during the final test evaluation") as e:
        train(_config(run), mnist=mnist, verbose=0, print_fn=lambda _: None)
    assert e.value.exit_code == 130
    assert str(run / "model.keras") in str(e.value) and (run / "model.keras").exists()
    assert not (run / "metrics.json").exists()
    monkeypatch.undo()  # the same command finishes the report
    metrics = train(_config(run), mnist=mnist, verbose=0, print_fn=lambda _: None)
    assert (run / "metrics.json").exists() and metrics["epochs"] == 1


def test_the_final_test_nll_can_be_skipped_and_added_later(fake_npz, tmp_path):
    """`train` always ended with the whole test split's NLL (minutes for a
    big model; bug: no way to skip it). `test_nll=False` (--no-test-nll)
    records null and says how to get it; the same run asked again with the
    NLL computes just that, without training."""
    mnist = load_mnist(fake_npz, validation_size=16)
    lines = []
    skipped = train(
        _config(tmp_path / "r"), mnist=mnist, verbose=0, print_fn=lines.append, test_nll=False
    )
    assert skipped["test_nll"] is None and skipped["test_nll_first_1000_nats_per_image"] is None
    assert lines[-1].startswith("test NLL skipped; `python cli.py evaluate --model ")
    full = train(_config(tmp_path / "r"), mnist=mnist, verbose=0, print_fn=lambda _: None)
    assert full["test_nll"]["num_images"] == 32
    assert full["epochs"] == skipped["epochs"]  # no further training


def test_the_learning_rate_decays_per_step_across_a_resume(fake_npz, tmp_path):
    """--lr-decay: the rate at step n is learning_rate * lr_decay**n, and a
    resumed run continues from the step count of its backup."""
    from keras_pixelcnn.training.resume import load_state, restore
    from keras_pixelcnn.training.trainer import compile_model

    def backed_up_optimizer(run):
        model = keras.saving.load_model(run / "model.keras", compile=False)
        compile_model(model, 1e-2, 0.5)
        restore(model, load_state(run / "backup"))
        return model.optimizer

    mnist = load_mnist(fake_npz, validation_size=16)  # 48 images: 3 steps of 16 per epoch
    run = tmp_path / "run"
    config = dict(learning_rate=1e-2, lr_decay=0.5, num_samples=0)
    train(_config(run, **config), mnist=mnist, verbose=0, test_nll=False)
    first = backed_up_optimizer(run)
    assert int(first.iterations) == 3
    assert float(first.learning_rate) == pytest.approx(1e-2 * 0.5**3, rel=1e-6)
    train(_config(run, epochs=2, **config), mnist=mnist, verbose=0, test_nll=False)
    resumed = backed_up_optimizer(run)
    assert int(resumed.iterations) == 6
    assert float(resumed.learning_rate) == pytest.approx(1e-2 * 0.5**6, rel=1e-6)
    # the schedule is part of the run: another decay does not resume it
    with pytest.raises(PixelCNNError, match="lr-decay=0.5, not 0.9"):
        train(_config(run, epochs=3, learning_rate=1e-2, lr_decay=0.9), mnist=mnist, verbose=0)


def _raw_weights_per_step(monkeypatch):
    """Records the trainable weights after every training step of `train`."""
    from keras_pixelcnn.training import trainer

    steps = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(
                [np.array(keras.ops.convert_to_numpy(v)) for v in self.model.trainable_variables]
            )

    build = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks", lambda *a, **k: [Record(), *build(*a, **k)])
    return steps


def _backed_up_raw_weights(run, ema):
    from keras_pixelcnn.training.resume import load_state, restore
    from keras_pixelcnn.training.trainer import compile_model

    model = keras.saving.load_model(run / "model.keras", compile=False)
    compile_model(model, 1e-3, ema=ema)
    restore(model, load_state(run / "backup"))
    return model


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's op determinism")
def test_deterministic_training_leaves_the_process_as_it_was(fake_npz, tmp_path):
    """Bug: `train(deterministic=True)` left TensorFlow's op determinism on
    in the caller's process, which silently turned off XLA for every model it
    compiled afterwards (found by a test that ran after a training)."""
    from tensorflow.python.framework.config import is_op_determinism_enabled

    mnist = load_mnist(fake_npz, validation_size=16)
    seen = []
    config = _config(tmp_path / "run", epochs=1, num_samples=0, deterministic=True)
    train(
        config,
        mnist=mnist,
        verbose=0,
        test_nll=False,
        print_fn=lambda line: seen.append(is_op_determinism_enabled()),
    )
    assert True in seen  # on while it trained (the last lines come after)
    assert not is_op_determinism_enabled()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", jit_compile=True)
    assert model.jit_compile is True


def test_ema_trains_the_raw_weights_and_saves_their_average(fake_npz, tmp_path, monkeypatch):
    """--ema m (Polyak averaging): the raw weights train exactly as without
    it (bug: `fit` ends by overwriting the weights with the average, so one
    `fit` per epoch restarted every epoch from it), the backup holds them, and
    validation, best.keras and model.keras use the average of the raw weights
    after each step: a_1 = w_1, a_n = m a_(n-1) + (1 - m) w_n. A run resumed
    after its first epoch ends with the same raw and averaged weights."""
    mnist = load_mnist(fake_npz, validation_size=16)  # 48 images: 3 steps of 16 per epoch
    options = dict(epochs=2, num_samples=0, deterministic=True)
    steps = _raw_weights_per_step(monkeypatch)
    train(_config(tmp_path / "plain", **options), mnist=mnist, verbose=0, test_nll=False)
    assert len(steps) == 6
    raw = steps[:]
    run = tmp_path / "ema"
    train(_config(run, ema=0.5, **options), mnist=mnist, verbose=0, test_nll=False)
    assert len(steps) == 12
    for with_ema, without in zip(steps[6:], raw):  # the same raw trajectory, step by step
        for a, b in zip(with_ema, without):
            np.testing.assert_array_equal(a, b)
    backed_up = _backed_up_raw_weights(run, 0.5)
    for value, expected in zip(backed_up.trainable_variables, raw[-1]):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(value), expected)
    averages = [raw[0]]
    for weights in raw[1:]:
        averages.append(
            [np.float32(0.5) * a + np.float32(0.5) * w for a, w in zip(averages[-1], weights)]
        )
    with open(run / "log.csv") as f:
        val = [float(row["val_loss"]) for row in csv.DictReader(f)]
    best = int(np.argmin(val))
    saved = keras.saving.load_model(run / "model.keras")
    for value, expected in zip(saved.trainable_variables, averages[3 * best + 2]):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(value), expected, rtol=1e-6, atol=1e-7
        )
    # the logged validation loss of each epoch is the averaged weights' loss
    for epoch, loss in enumerate(val):
        for variable, value in zip(saved.trainable_variables, averages[3 * epoch + 2]):
            variable.assign(value)
        v = mnist.validation.images
        np.testing.assert_allclose(saved.evaluate(v, v, batch_size=256, verbose=0), loss, rtol=1e-5)
    # resumed after epoch 1: the same raw weights and averages at the end
    resumed = tmp_path / "resumed"
    train(
        _config(resumed, ema=0.5, **dict(options, epochs=1)), mnist=mnist, verbose=0, test_nll=False
    )
    train(_config(resumed, ema=0.5, **options), mnist=mnist, verbose=0, test_nll=False)
    again = _backed_up_raw_weights(resumed, 0.5)
    for a, b in zip(
        again.variables + again.optimizer.variables,
        backed_up.variables + backed_up.optimizer.variables,
    ):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # the average is part of the run: another momentum does not resume it
    with pytest.raises(PixelCNNError, match="ema=0.5, not 0.9"):
        train(
            _config(run, epochs=3, ema=0.9, num_samples=0, deterministic=True),
            mnist=mnist,
            verbose=0,
        )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TensorFlow's tf.function tracing (JAX compiles the step once per shape anyway)",
)
@pytest.mark.parametrize("ema", [None, 0.9])
def test_the_training_step_is_traced_once(ema):
    """Bug: Adam's variables (and the averages of --ema) were created inside
    the first traced step, and TensorFlow traces a step that creates
    variables twice: every run spent twice the tracing time (a PixelCNN++
    run 46.7 s, 30.6 s once the optimizer is built at compile time)."""
    from keras_pixelcnn import build_pixelcnn
    from keras_pixelcnn.training.trainer import compile_model

    model = build_pixelcnn((8, 8, 1), filters=4, num_residual_blocks=1)
    compile_model(model, 1e-3, ema=ema)
    traces = []
    step = model.train_step
    model.train_step = lambda data: (traces.append(1), step(data))[1]
    x = (np.random.default_rng(0).random((32, 8, 8, 1)) < 0.5).astype("float32")
    for epoch in range(2):  # one `fit` per epoch, as `train` runs them
        model.fit(x, x, batch_size=8, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
    assert len(traces) == 1
