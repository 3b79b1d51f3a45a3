"""The functional graph of a Keras model, as the cached sampler reads it.

The sampler needs each layer call of the model in an order where inputs come
first, the tensors that call reads and writes, and a way to call the layer
again on other values with the same arguments. Keras 3 keeps these in
private attributes of `Functional` and `Node` (`_nodes_by_depth`,
`node.operation`, `node.input_tensors`, `node.outputs`, `node.arguments`,
and a layer's `_convert_input_args`);
this module is the only place that reads them. `check_graph_api` raises a
clear error when a Keras upgrade changes them (tests/test_sampling_plan.py).
"""

from keras_pixelcnn.errors import PixelCNNError


def check_graph_api(model):
    """Raises `PixelCNNError` naming the first private attribute this
    module reads that `model` (or its nodes) no longer has."""
    import keras

    if not hasattr(model, "_nodes_by_depth"):
        raise PixelCNNError(
            f"keras {keras.__version__} changed the functional graph "
            "(Functional._nodes_by_depth is gone); the fast sampler cannot read "
            "the model: use the reference sampler"
        )
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            for name in ("operation", "is_input", "input_tensors", "outputs", "arguments"):
                if not hasattr(node, name):
                    raise PixelCNNError(
                        f"keras {keras.__version__} changed the functional graph "
                        f"(Node.{name} is gone); the fast sampler cannot read the "
                        "model: use the reference sampler"
                    )


def layer_calls(model):
    """The model's layer calls (Keras `Node`s), each after the calls that
    make its inputs."""
    check_graph_api(model)
    return [
        node
        for depth in sorted(model._nodes_by_depth, reverse=True)
        for node in model._nodes_by_depth[depth]
        if node.operation and not node.is_input
    ]


def layer(node):
    return node.operation


def inputs(node):
    """The symbolic tensors the call reads."""
    return list(node.input_tensors)


def outputs(node):
    """The symbolic tensors the call writes."""
    return list(node.outputs)


def call(node, values):
    """Calls the node's layer with its arguments, each symbolic tensor
    replaced by `values[id(tensor)]`.

    A layer without weights is called through its `call`, with its floating
    inputs cast to its compute dtype as `Layer.__call__` would: the sampler
    runs these layers once per pixel, and `__call__`'s bookkeeping (argument
    trees, name and autocast scopes) costs more than the layer itself (a
    third of an eager torch sampler's time). A layer with weights keeps
    `__call__`, which reads its variables in the compute dtype."""
    args, kwargs = node.arguments.fill_in(values)
    layer = node.operation
    if layer.weights or not hasattr(layer, "_convert_input_args"):
        return layer(*args, **kwargs)
    if layer._convert_input_args and layer.autocast:
        dtype = layer.input_dtype
        args = [_cast_float(a, dtype) for a in args]
        kwargs = {k: _cast_float(v, dtype) for k, v in kwargs.items()}
    return layer.call(*args, **kwargs)


def _cast_float(x, dtype):
    import keras

    if isinstance(x, (list, tuple)):
        return type(x)(_cast_float(v, dtype) for v in x)
    if not hasattr(x, "dtype"):
        return x
    current = keras.backend.standardize_dtype(x.dtype)
    if "float" in current and current != dtype:
        return keras.ops.cast(x, dtype)
    return x
