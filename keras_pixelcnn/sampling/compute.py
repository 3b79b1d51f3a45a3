"""What both loops of the cached sampler compute the same way: a layer's
kernel and its bias-and-activation tail, the constant steps, and the sampled
pixel written into the canvas. Only `keras.ops`."""

from keras import ops

from keras_pixelcnn.layers import CausalConv2D
from keras_pixelcnn.sampling import graph


def kernel(layer):
    """The kernel over the layer's causal window (masked), in its compute
    dtype (mixed precision: float32 weights cast to bfloat16, as the layer
    itself computes)."""
    value = ops.cast(layer.kernel, layer.compute_dtype)
    return layer.window_kernel(value) if isinstance(layer, CausalConv2D) else value


def bias(layer, out):
    """`out` plus the layer's bias (if it has one)."""
    return out + ops.cast(layer.bias, out.dtype) if layer.use_bias else out


def activate(layer, out):
    return layer.activation(out) if layer.activation is not None else out


def finish(layer, out):
    """A convolution's output from its product: bias, then activation."""
    return activate(layer, bias(layer, out))


def constants(plan, labels):
    """The CONST tensors (labels, embeddings and their projections) by id."""
    values = {}
    if plan.label_id is not None:
        values[plan.label_id] = labels
    for step in plan.const_steps:
        values[step.out] = graph.call(step.node, values)
    return values


def write_pixel(plan, likelihood, canvas, params, noise, initial, start, i, j, pads):
    """Samples pixel (i, j) of every image from its parameters and noise (or
    keeps the known pixel before raster position `start`), and writes it,
    as the network reads it, into the padded canvas."""
    batch = ops.shape(canvas)[0]
    params = ops.cast(params, "float32")
    u = ops.slice(noise, [0, i, j, 0], [batch, 1, 1, ops.shape(noise)[3]])
    sampled = ops.cast(likelihood.sample(params, u)[..., None], canvas.dtype)
    known = ops.slice(initial, [0, i, j, 0], [batch, 1, 1, 1])
    value = ops.where(i * plan.width + j < start, known, sampled)
    if plan.input_transform is not None:
        value = ops.cast(plan.input_transform(value), canvas.dtype)
    if plan.border:
        value = ops.concatenate([value, ops.ones_like(value)], axis=-1)
    top, left, _ = pads
    return ops.slice_update(canvas, [0, i + top, j + left, 0], value)
