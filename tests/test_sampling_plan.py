"""The cached sampler's plan: each causal layer's window (shifted ones
through `CausalConv2D`, with a following shift folded in), each tensor's
dependence and scale, and the Keras graph reads of `sampling/graph.py`."""

import types

import keras
import numpy as np
import pytest
from keras import layers

from keras_pixelcnn import build_gated_pixelcnn, build_pixelcnn, build_pixelcnn_pp
from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.layers import (
    CausalConv2D,
    CausalConv2DTranspose,
    DownRightShiftedConv2D,
    DownRightShiftedConv2DTranspose,
    DownShiftedConv2D,
    DownShiftedConv2DTranspose,
)
from keras_pixelcnn.likelihoods import DiscretizedLogisticMixture
from keras_pixelcnn.sampling import graph
from keras_pixelcnn.sampling.plan import CONST, PIXEL, ROW, Plan, Window


def test_shifted_convolutions_describe_their_window_as_causal_convolutions():
    # (rows, row_shift, left, right): rows i - 1 .. i; columns j - 1 .. j + 1 or j - 1 .. j
    assert DownShiftedConv2D(4, (2, 3)).causal_geometry == (2, 0, 1, 1)
    assert DownRightShiftedConv2D(4, (2, 2)).causal_geometry == (2, 0, 1, 0)
    assert DownShiftedConv2D(4, (1, 5)).causal_geometry == (1, 0, 2, 2)
    assert DownRightShiftedConv2D(4, (3, 1)).causal_geometry == (3, 0, 0, 0)
    assert isinstance(DownShiftedConv2D(4, (2, 3), strides=2), CausalConv2D)
    assert DownRightShiftedConv2D(4, (1, 1)).is_pointwise
    assert not DownRightShiftedConv2D(4, (1, 1), strides=2).is_pointwise
    for cls in (DownShiftedConv2DTranspose, DownRightShiftedConv2DTranspose):
        assert isinstance(cls(4, (2, 2)), CausalConv2DTranspose)
    assert DownRightShiftedConv2DTranspose(4, (2, 2)).right
    assert not DownShiftedConv2DTranspose(4, (2, 3)).right


def _windows(plan):
    return {s.layer.name: (s.kind, s.scale, s.window) for s in plan.row_steps + plan.pixel_steps}


def test_the_pixelcnn_pp_plan_folds_the_shifts_and_gives_each_tensor_its_scale():
    keras.utils.set_random_seed(0)
    model = build_pixelcnn_pp(
        (8, 8, 1), filters=4, num_resnets=1, dropout=0.0, num_classes=10,
        likelihood=DiscretizedLogisticMixture(2),
    )  # fmt: skip
    plan = Plan(model)
    steps = _windows(plan)
    # u: a 2x3 down-shifted conv, then DownShift: rows i-2 .. i-1, zeros on row 0
    assert steps["u_input"] == (ROW, 1, Window(2, 1, 1, 1, 1, 1, True, False))
    # ul's "up" part, a 1x3 conv then DownShift: the row above
    assert steps["ul_up"] == (ROW, 1, Window(1, 1, 1, 1, 1, 1, True, False))
    # ul's "left" part, a 2x1 down-right conv then RightShift: columns j-1 only
    assert steps["ul_left"] == (PIXEL, 1, Window(2, 0, 1, -1, -1, 1, False, True))
    # the strided convolutions halve the scale of their stream
    assert steps["up_1_u_down"] == (ROW, 2, Window(2, 0, 1, 1, 1, 2))
    assert steps["up_1_ul_down"] == (PIXEL, 2, Window(2, 0, 1, 0, 0, 2))
    assert steps["up_2_ul_down"][:2] == (PIXEL, 4)
    # the transposed ones double it back: 4 -> 2 -> 1
    assert steps["down_1_ul_up"] == (PIXEL, 2, None) and steps["down_1_u_up"] == (ROW, 2, None)
    assert steps["down_2_ul_up"] == (PIXEL, 1, None) and steps["down_2_u_up"] == (ROW, 1, None)
    assert plan.scales == [1, 2, 4] and plan.border
    assert plan.info[plan.output_id] == (PIXEL, 1)
    assert isinstance(plan.input_transform, layers.Rescaling)
    assert plan.info[plan.label_id] == (CONST, None)
    assert {s.layer.name for s in plan.const_steps} >= {"label_embedding"}


def test_single_scale_plans():
    pixelcnn = Plan(build_pixelcnn((6, 6, 1), filters=4, num_residual_blocks=1))
    assert pixelcnn.scales == [1] and not pixelcnn.row_steps
    assert pixelcnn.input_transform is None and not pixelcnn.border
    gated = Plan(build_gated_pixelcnn((6, 6, 1), filters=4, num_layers=2))
    first = _windows(gated)
    # the first (7x7) vertical layer sees the 3 rows above (shift 1), the
    # first horizontal one the 3 pixels to the left (reach -1)
    assert first["gated_1_v_conv"] == (ROW, 1, Window(3, 1, 3, 3, 3))
    assert first["gated_1_h_conv"] == (PIXEL, 1, Window(1, 0, 3, -1, -1))
    assert gated.scales == [1] and gated.row_inputs


def test_a_layer_that_sees_the_current_pixel_is_named():
    image = keras.Input((6, 6, 1))
    x = DownShiftedConv2D(4, (2, 3), name="sees_itself")(image)
    with pytest.raises(
        PixelCNNError, match="layer sees_itself sees the current pixel of the image"
    ):
        Plan(keras.Model(image, layers.Conv2D(1, 1)(x)))


def test_graph_layer_calls_come_after_their_inputs_and_replay_the_model():
    image = keras.Input((4, 4, 1))
    a = layers.Conv2D(2, 1, name="a")(image)
    b = layers.ReLU(name="b")(a)
    c = layers.Add(name="c")([a, b])  # a diamond: c needs both
    model = keras.Model(image, layers.Conv2D(1, 1, name="d")(c))
    calls = graph.layer_calls(model)
    assert [graph.layer(n).name for n in calls] == ["a", "b", "c", "d"]
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype("float32")
    values = {id(model.inputs[0]): x}
    for node in calls:
        values[id(graph.outputs(node)[0])] = graph.call(node, values)
        assert all(id(t) in values for t in graph.inputs(node))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(values[id(model.outputs[0])]),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
    )


def test_a_keras_without_the_graph_attributes_is_named():
    with pytest.raises(PixelCNNError, match=r"Functional._nodes_by_depth is gone"):
        graph.layer_calls(types.SimpleNamespace())
    node = types.SimpleNamespace(operation=None, is_input=True, input_tensors=[], outputs=[])
    fake = types.SimpleNamespace(_nodes_by_depth={0: [node]})
    with pytest.raises(PixelCNNError, match=r"Node.arguments is gone.*reference sampler"):
        graph.layer_calls(fake)


def test_graph_calls_weightless_layers_directly_in_their_compute_dtype(monkeypatch):
    """The sampler replays a model's layers once per pixel: a layer without
    weights skips `Layer.__call__` (its bookkeeping cost a third of an
    eager torch sampler's time), with its float inputs cast as `__call__`
    casts them (bug: a float32 value reaching a bfloat16 layer)."""
    from keras.src.layers.layer import Layer

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        image = keras.Input((4, 4, 1))
        a = layers.Conv2D(2, 1, name="a")(image)
        b = layers.ReLU(name="b")(a)
        model = keras.Model(image, layers.Add(name="c")([a, b]))
    finally:
        keras.config.set_dtype_policy("float32")
    called = []
    real = Layer.__call__

    def recording(self, *args, **kwargs):
        called.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Layer, "__call__", recording)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype("float32")
    a_value = keras.ops.convert_to_tensor(np.abs(x) - 0.5)  # float32, as a sampler's own op gives
    values = {id(model.inputs[0]): x}
    calls = graph.layer_calls(model)
    values[id(graph.outputs(calls[0])[0])] = a_value
    for node in calls[1:]:
        values[id(graph.outputs(node)[0])] = graph.call(node, values)
    assert called == []  # b and c: no weights, no __call__
    out = values[id(model.outputs[0])]
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    expected = model.get_layer("c")([a_value, model.get_layer("b")(a_value)])
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(expected, "float32")),
    )
