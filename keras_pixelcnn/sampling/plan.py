"""The cached sampler's plan: when each tensor of a model's graph is known.

Ramachandran et al. (2017), "Fast Generation for Convolutional
Autoregressive Models": in raster order, every tensor of a causal network is
computed only where the next pixel needs it, from cached values of the
tensors below. The plan gives every tensor of the functional graph

- a *dependence*: CONST (the labels only: the class embedding and its
  projections, computed once), ROW (rows above the current one, or the
  current row of other ROW tensors: a whole row is computed when the sampler
  reaches it; the vertical stack, PixelCNN++'s "up" stream) or PIXEL (the
  current row up to the current pixel: one position per step; masked
  convolutions, the horizontal stack, the "up-left" stream);
- a *scale* s: its size is the image's / s (1 for every single-scale model;
  1, 2 and 4 in PixelCNN++, which halves the image twice).

Each layer call becomes one `Step`: a *conv* reads a window of its input
(the layer's `causal_geometry` at its stride, with a `DownShift` /
`RightShift` that follows it folded in), a *deconv* (a transposed causal
convolution) reads the input position or row that feeds it, and every other
layer is *point*wise. The plan also proves what the loops rely on: a layer
that reads the current or a later pixel is refused with its name ("the model
is not causal"), as is any layer the loops cannot compute.
"""

import dataclasses
import enum
from typing import NamedTuple

from keras import layers

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.layers import (
    BorderIndicator,
    CausalConv2D,
    CausalConv2DTranspose,
    ConcatELU,
    DownShift,
    GatedActivation,
    OutputDistribution,
    RightShift,
    SigmoidGate,
)
from keras_pixelcnn.sampling import graph


class Dependence(enum.IntEnum):
    """What a tensor depends on, and so when it is computed. Ordered: a
    layer's output depends on the most of its inputs'."""

    CONST = 0
    ROW = 1
    PIXEL = 2


CONST, ROW, PIXEL = Dependence.CONST, Dependence.ROW, Dependence.PIXEL

POINTWISE_LAYERS = (
    layers.Activation,
    layers.Add,
    layers.Average,
    layers.Concatenate,
    layers.Dropout,
    layers.ELU,
    layers.Identity,
    layers.LeakyReLU,
    layers.Maximum,
    layers.Minimum,
    layers.Multiply,
    layers.ReLU,
    layers.Subtract,
    ConcatELU,
    GatedActivation,
    OutputDistribution,
    SigmoidGate,
)


class Window(NamedTuple):
    """What output (i, j) of a convolution with stride `stride` reads: input
    rows `stride*i - shift - rows + 1 .. stride*i - shift`, columns
    `stride*j - left .. stride*j + right`, and on its bottom row up to
    column `stride*j + reach`. `zero_row` / `zero_col`: a folded `DownShift`
    / `RightShift` makes output row / column 0 zeros."""

    rows: int
    shift: int
    left: int
    right: int
    reach: int
    stride: int = 1
    zero_row: bool = False
    zero_col: bool = False

    @property
    def pads(self):
        """[top, left, right]: the padding an input cache needs."""
        return [self.rows - 1 + self.shift, self.left, max(self.right, 0)]


@dataclasses.dataclass(eq=False)
class Step:
    """One layer call of the graph: `op` is "const", "point", "conv" or
    "deconv"; it computes tensor `out` (a folded shift's output) from the
    tensors `inputs` (ids), a conv or deconv from `source` through `window`."""

    node: object
    kind: Dependence
    scale: int | None
    op: str
    out: int
    inputs: list
    source: int | None = None
    window: Window | None = None

    @property
    def layer(self):
        return graph.layer(self.node)

    @property
    def channels(self):
        return graph.outputs(self.node)[0].shape[-1]


def unsupported(layer):
    return PixelCNNError(
        f"the fast sampler does not support layer {layer.name!r} "
        f"({type(layer).__name__}); use the reference sampler"
    )


def _is_pointwise_conv(layer):
    """A convolution that reads the current position only."""
    if isinstance(layer, CausalConv2D):
        return layer.is_pointwise
    return (
        type(layer) is layers.Conv2D
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and tuple(layer.kernel_size) == (1, 1)
    )


class Plan:
    """The plan of `model`'s graph (see the module docstring).

    Attributes:
        height, width: the image size.
        image_id: the tensor the sampler writes pixels into: the image,
            after its `Rescaling` (`input_transform`) and `BorderIndicator`
            (`border`) when those are its only readers.
        label_id: the label input (conditional models) or None.
        const_steps, row_steps, pixel_steps: the steps by dependence, each
            after the steps it reads.
        info: tensor id -> (dependence, scale).
        output_id: the parameters' tensor (PIXEL, scale 1).
        scales: the scales of the non-constant tensors, ascending.
        row_inputs: the ROW tensors that pointwise PIXEL steps read.
    """

    def __init__(self, model):
        if len(model.outputs) != 1:
            raise PixelCNNError("the fast sampler needs a model with one output")
        image = model.inputs[0]
        self.height, self.width, self.image_channels = image.shape[1:]
        calls = graph.layer_calls(model)
        readers = {}
        for node in calls:
            for t in graph.inputs(node):
                readers.setdefault(id(t), []).append(node)
        self.info = {}
        self.label_id = None
        if len(model.inputs) == 2:
            self.label_id = id(model.inputs[1])
            self.info[self.label_id] = (CONST, None)
        canvas = id(image)
        self.input_transform, self.border = None, False
        for kind in (layers.Rescaling, BorderIndicator):
            users = readers.get(canvas, [])
            if len(users) == 1 and isinstance(graph.layer(users[0]), kind):
                if kind is layers.Rescaling:
                    self.input_transform = graph.layer(users[0])
                else:
                    self.border = True
                calls.remove(users[0])
                canvas = id(graph.outputs(users[0])[0])
        self.image_id = canvas
        self.info[canvas] = (PIXEL, 1)
        self.const_steps, self.row_steps, self.pixel_steps = [], [], []
        folded = set()
        for node in calls:
            if id(node) in folded:
                continue
            step = self._step(node, readers, folded)
            self.info[step.out] = (step.kind, step.scale)
            if step.kind == CONST:
                self.const_steps.append(step)
            else:
                (self.row_steps if step.kind == ROW else self.pixel_steps).append(step)
        self.output_id = id(model.outputs[0])
        if self.info[self.output_id][0] == CONST:
            raise PixelCNNError("the model's output does not depend on the image")
        if self.info[self.output_id] != (PIXEL, 1):
            raise PixelCNNError("the model's output is not a full-size pixel tensor")
        steps = self.row_steps + self.pixel_steps
        self.scales = sorted({s.scale for s in steps})
        self.row_inputs = list(
            dict.fromkeys(
                t
                for step in self.pixel_steps
                if step.op == "point"
                for t in step.inputs
                if self.info[t][0] == ROW
            )
        )

    def channels(self, tensor_id):
        """The channels of a non-constant tensor (the canvas: the image's,
        one more with a border channel)."""
        if tensor_id == self.image_id:
            return self.image_channels + (1 if self.border else 0)
        return next(s.channels for s in self.row_steps + self.pixel_steps if s.out == tensor_id)

    def _step(self, node, readers, folded):
        layer = graph.layer(node)
        in_ids = [id(t) for t in graph.inputs(node)]
        if any(i not in self.info for i in in_ids) or len(graph.outputs(node)) != 1:
            raise unsupported(layer)
        kinds = [self.info[i][0] for i in in_ids]
        out = id(graph.outputs(node)[0])
        if all(k == CONST for k in kinds):
            return Step(node, CONST, None, "const", out, in_ids)
        if isinstance(layer, CausalConv2D) and not layer.is_pointwise:
            return self._conv(node, layer, in_ids, readers, folded)
        if isinstance(layer, CausalConv2DTranspose):
            return self._deconv(node, layer, in_ids)
        if isinstance(layer, POINTWISE_LAYERS) or _is_pointwise_conv(layer):
            if self.image_id in in_ids:
                raise PixelCNNError(
                    f"layer {layer.name} reads the current pixel of the image: "
                    "the model is not causal"
                )
            scales = {self.info[i][1] for i in in_ids if self.info[i][0] != CONST}
            if len(scales) != 1:
                raise unsupported(layer)
            return Step(node, max(kinds), scales.pop(), "point", out, in_ids)
        raise unsupported(layer)

    def _conv(self, node, layer, in_ids, readers, folded):
        """A causal convolution, with the shift that follows it folded in."""
        stride = layer.strides[0]
        if (
            len(in_ids) != 1
            or tuple(layer.strides) != (stride, stride)
            or tuple(layer.dilation_rate) != (1, 1)
        ):
            raise unsupported(layer)
        source = in_ids[0]
        kind_in, scale_in = self.info[source]
        rows, shift, left, right = layer.causal_geometry
        reach = layer.bottom_row_reach
        out = id(graph.outputs(node)[0])
        zero_row = zero_col = False
        users = readers.get(out, [])
        if len(users) == 1 and isinstance(graph.layer(users[0]), (DownShift, RightShift)):
            folded.add(id(users[0]))
            out = id(graph.outputs(users[0])[0])
            if isinstance(graph.layer(users[0]), DownShift):  # one output row down
                zero_row, shift = True, shift + stride
            else:  # one output column right
                zero_col, left, right, reach = True, left + stride, right - stride, reach - stride
        window = Window(rows, shift, left, right, reach, stride, zero_row, zero_col)
        if kind_in == ROW or shift >= 1:
            kind = ROW  # rows above, or the current row of a row tensor: at row start
        elif source == self.image_id and reach >= 0 and getattr(layer, "channel_groups", 1) == 1:
            # (with ordered channel groups the centre tap reads the pixel's
            # earlier channels only: one pass per channel, `loop._write_pixel`)
            raise PixelCNNError(
                f"layer {layer.name} sees the current pixel of the image: the model is not causal"
            )
        elif reach > 0:
            raise PixelCNNError(
                f"layer {layer.name} sees later pixels of the current row of a pixel "
                "tensor: the model is not causal"
            )
        else:
            kind = PIXEL
        return Step(node, kind, scale_in * stride, "conv", out, in_ids, source, window)

    def _deconv(self, node, layer, in_ids):
        """A transposed convolution that doubles its input's size."""
        source = in_ids[0]
        kind, scale = self.info[source]
        if len(in_ids) != 1 or scale % 2 or tuple(layer.strides) != (2, 2):
            raise unsupported(layer)
        if kind == PIXEL and not (layer.right and tuple(layer.kernel_size) == (2, 2)):
            raise unsupported(layer)
        out = id(graph.outputs(node)[0])
        return Step(node, kind, scale // 2, "deconv", out, in_ids, source)
