import keras
import numpy as np
import pytest
from helpers import run_python

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.keras_file import load_model


def test_keras_round_trip_in_a_fresh_process(tiny_model, tmp_path):
    model = tiny_model()
    path = tmp_path / "m.keras"
    model.save(path)
    x = (np.random.default_rng(0).random((3, 8, 8, 1)) > 0.5).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x)))
    code = f"""
import numpy as np, keras, keras_pixelcnn
m = keras.saving.load_model({str(path)!r})
x = np.load({str(tmp_path / "x.npy")!r}); y = np.load({str(tmp_path / "y.npy")!r})
out = keras.ops.convert_to_numpy(m(x))
assert np.array_equal(out, y), np.abs(out - y).max()
print("ok", type(m.layers[1]).__name__)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok MaskedConv2D" in result.stdout


def test_loaded_model_keeps_masks(tiny_model, tmp_path):
    model = tiny_model()
    model.save(tmp_path / "m.keras")
    clone = load_model(tmp_path / "m.keras")
    assert [getattr(l, "mask_type", None) for l in clone.layers] == [
        getattr(l, "mask_type", None) for l in model.layers
    ]


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX setting")
def test_loading_draws_the_discarded_initial_weights_the_cheap_way(
    tiny_model, tmp_path, monkeypatch
):
    """The layers' initializers run while a file loads, only to be
    overwritten: on JAX, `load_model` draws them with the older threefry,
    which compiles faster (bug: the setting dropped, loading the shipped
    PixelCNN++ 1.7x slower; or leaked into the user's own JAX code after)."""
    import jax

    model = tiny_model()
    model.save(tmp_path / "m.keras")
    during, plain_load = [], keras.saving.load_model

    def spy(*args, **kwargs):
        during.append(jax.config.jax_threefry_partitionable)
        return plain_load(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    with jax.threefry_partitionable(True):  # JAX's default (the tests run with False)
        clone = load_model(tmp_path / "m.keras")
        assert jax.config.jax_threefry_partitionable is True
    assert during == [False]
    for a, b in zip(clone.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_loaded_model_compiles_the_fastest_way_of_this_backend(tiny_model, tmp_path):
    """Keras saves the `jit_compile` of the backend that trained the model
    (False from TensorFlow on a CPU); loaded into JAX as it is, every
    `predict_on_batch` would run op by op, 4-6x slower."""
    expected = {"tensorflow": False, "jax": True, "torch": False}[keras.backend.backend()]
    model = tiny_model()
    model.compile(optimizer="adam", loss="mse", jit_compile=not expected)
    assert model.jit_compile is (not expected)
    model.save(tmp_path / "m.keras")
    clone = load_model(tmp_path / "m.keras")
    assert clone.jit_compile is expected
    x = (np.random.default_rng(0).random((3, 8, 8, 1)) > 0.5).astype("float32")
    np.testing.assert_allclose(
        clone.predict_on_batch(x), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


def test_bad_model_files(tmp_path):
    with pytest.raises(PixelCNNError, match="does not exist"):
        load_model(tmp_path / "none.keras")
    (tmp_path / "empty.keras").write_bytes(b"")
    with pytest.raises(PixelCNNError, match="is empty"):
        load_model(tmp_path / "empty.keras")
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(PixelCNNError, match="not a .keras archive"):
        load_model(tmp_path / "text.keras")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(PixelCNNError, match="must end in .keras"):
        load_model(tmp_path / "text.h5")
    with pytest.raises(PixelCNNError, match="is a directory"):
        load_model(tmp_path)


def test_truncated_model_file(tiny_model, tmp_path):
    tiny_model().save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(PixelCNNError, match="cut.keras"):
        load_model(tmp_path / "cut.keras")


def test_unrelated_keras_model_is_rejected(tmp_path):
    inputs = keras.Input((10,))
    keras.Model(inputs, keras.layers.Dense(3)(inputs)).save(tmp_path / "dense.keras")
    with pytest.raises(PixelCNNError, match="not a PixelCNN-family model"):
        load_model(tmp_path / "dense.keras")


@pytest.mark.parametrize("order", ["keras_pixelcnn, keras", "keras, keras_pixelcnn"])
def test_importing_the_package_registers_the_layers_in_either_order(tiny_model, tmp_path, order):
    """`import keras_pixelcnn` loads no Keras (the CLI's --help stays instant),
    yet a .keras file loads without custom_objects whichever is imported first."""
    tiny_model().save(tmp_path / "m.keras")
    code = f"""
import sys
import {order.split(", ")[0]}
if {order.split(", ")[0]!r} == "keras_pixelcnn":
    assert "keras" not in sys.modules and "tensorflow" not in sys.modules, "eager import"
import {order.split(", ")[1]}
import keras
m = keras.saving.load_model({str(tmp_path / "m.keras")!r})
print("ok", type(m.get_layer("input_conv")).__name__)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok MaskedConv2D" in result.stdout


def test_saved_files_let_plain_keras_pick_each_backends_fast_path(tiny_model, tmp_path):
    """Bug: the .keras file recorded `jit_compile=False` (what `compile`
    resolved on a TensorFlow CPU), so plain `keras.saving.load_model` on JAX
    ran op by op, 12.6x slower. `keras_file.save_model` records "auto"; reloaded
    with plain Keras in a fresh JAX process the model compiles with XLA."""
    from keras_pixelcnn.keras_file import save_model

    model = tiny_model()
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    save_model(model, tmp_path / "m.keras")
    import json
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert json.loads(z.read("config.json"))["compile_config"]["jit_compile"] == "auto"
    code = f"""
import keras, keras_pixelcnn
m = keras.saving.load_model({str(tmp_path / "m.keras")!r})
print("JIT", m.jit_compile)
"""
    result = run_python(code, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "JIT True" in result.stdout, result.stdout


def test_save_jit_compile_auto_finds_kerass_compile_settings(tiny_model):
    """The one private attribute this package writes: if a Keras release
    moves `_compile_config`, this fails and names the function to update
    (instead of files silently saved with the resolved value)."""
    from keras_pixelcnn.runtime import save_jit_compile_auto

    model = tiny_model()
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    save_jit_compile_auto(model)
    assert model.get_compile_config()["jit_compile"] == "auto"
    assert model.jit_compile is False  # this process's model keeps its setting
