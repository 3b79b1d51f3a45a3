"""Fast cached sampling for multi-scale causal graphs: PixelCNN++.

PixelCNN++ (models/pixelcnn_pp.py) halves the image twice with strided
shifted convolutions and doubles it back with transposed ones, and shifts
its two streams by one row / one column. `CachedSampler` (cached.py) knows
one scale; this sampler gives every tensor of the graph a *scale* s (1, 2,
4: its size is the image's / s) besides its dependence kind:

- *row* tensors (the down-shifted "up" stream `u`) see only image rows above;
  at the start of image row i, row i // s of each is computed, whole;
- *pixel* tensors (the down-right-shifted "up-left" stream `ul`) see the
  current row to the left; at pixel (i, j), position (i // s, j // s) of each
  is computed.

A scale-s tensor's position is complete at the first image pixel that maps
to it (the causality test of PixelCNN++ checks the graph itself), so it is
computed there; the row and pixel loops are unrolled over static phases
(`max_period` rows × `max_column_group` pixels, 4 × 2 by default) so that no
branch is needed to know where that is. A scale coarser than the unrolling
is recomputed at the first pixel of each unrolled block inside its position:
the same value each time. Each cache is a ring of the rows its readers still
need at its scale (row k in slot k % slots): nothing moves, a writer stores
one slot and a reader reads all slots with its kernel rows rotated to the
slots' order. Where the unrolled phase fixes the row, the slot and the
rotation are Python constants. A pixel tensor's cache is column-major
(columns, batch, slots, channels), so a window column is one contiguous
slice (XLA:CPU copies a batch-major window out element by element).

A shifted convolution reads a window of its input's cache (strided: at the
input's scale), a `DownShift` / `RightShift` that follows one is folded into
its window (and gives zeros on the first row / column), a transposed
convolution reads the one input position (pixel tensors; kernel == stride)
or the input row (row tensors) that feeds the output. Every other layer is
pointwise. The image enters through its `Rescaling` and the
`BorderIndicator` channel of ones, kept in the canvas.

A whole image costs about one forward pass of compute (the quarter scale
four times over), not 784. Given the same noise, the images are those of the
reference sampler; the parameters agree to float32 rounding.
"""

import numpy as np
from keras import layers, ops

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.layers.concat_elu import ConcatELU
from keras_pixelcnn.layers.gated_resnet import SigmoidGate
from keras_pixelcnn.layers.output_distribution import OutputDistribution
from keras_pixelcnn.layers.shifted_conv import (
    BorderIndicator,
    DownShift,
    RightShift,
    _pads,
    _ShiftedConv2D,
    _ShiftedConv2DTranspose,
)
from keras_pixelcnn.sampling.cached import CachedSampler

CONST, ROW, PIXEL = 0, 1, 2
POINTWISE = (
    layers.Add,
    layers.Concatenate,
    layers.Dropout,
    layers.ELU,
    layers.Activation,
    layers.Identity,
    ConcatELU,
    SigmoidGate,
    OutputDistribution,
)


class _Step:
    def __init__(self, node, kind, scale, op, out, source=None, window=None):
        self.node = node
        self.kind = kind
        self.scale = scale
        self.op = op  # "const", "point", "conv" or "deconv"
        self.out = out  # the tensor id it computes (a fused shift's output)
        self.source = source  # the tensor a conv / deconv reads
        self.window = window  # conv: (stride, pad_top, pad_left, shift_down, shift_right)


class MultiScaleCachedSampler(CachedSampler):
    """The cached sampler for PixelCNN++ graphs (see the module docstring).

    Args:
        model: a PixelCNN++ `keras.Model` (`build_pixelcnn_pp`).

    Example:

    >>> sampler = MultiScaleCachedSampler(model)
    >>> images = sampler.sample(draw_noise(64, noise_shape(model), seed=0))
    """

    # The most pixels of a row one iteration of the pixel loop samples (a
    # power of two): its program is unrolled over their column phases, so a
    # coarse tensor is computed once per position, not at every pixel.
    max_column_group = 2
    # The most image rows one iteration of the row loop samples (a power of
    # two), each with its own program. 4 rows x 2 pixels computes a
    # quarter-scale tensor twice per position (2 x 2: four times) and
    # sampled 1.08x as fast at batch 64 and 1.15x at 256 as 2 x 2, for about
    # 2 s more compilation (README, "Sampling speed").
    max_period = 4

    # ----------------------------------------------------------------- plan
    def _plan(self):
        model = self.model
        if len(model.outputs) != 1:
            raise PixelCNNError("the fast sampler needs a model with one output")
        image = model.inputs[0]
        self.height, self.width, channels = image.shape[1:]
        if channels != 1:
            raise PixelCNNError("the fast sampler supports single-channel images only")
        nodes = [
            node
            for depth in sorted(model._nodes_by_depth, reverse=True)
            for node in model._nodes_by_depth[depth]
            if node.operation and not node.is_input
        ]
        readers = {}
        for node in nodes:
            for t in node.input_tensors:
                readers.setdefault(id(t), []).append(node)
        info = {}  # tensor id -> (kind, scale)
        self.label_id = None
        if len(model.inputs) == 2:
            self.label_id = id(model.inputs[1])
            info[self.label_id] = (CONST, None)
        # The canvas: the image, after its Rescaling and BorderIndicator.
        canvas = id(image)
        self.input_transform, self.border = None, False
        for kind in (layers.Rescaling, BorderIndicator):
            users = readers.get(canvas, [])
            if len(users) == 1 and isinstance(users[0].operation, kind):
                if kind is layers.Rescaling:
                    self.input_transform = users[0].operation
                else:
                    self.border = True
                nodes.remove(users[0])
                canvas = id(users[0].outputs[0])
        self.image_id = canvas
        info[canvas] = (PIXEL, 1)
        pads = {canvas: [0, 0, 0]}
        self.const_steps, self.row_steps, self.pixel_steps = [], [], []
        folded = set()
        for node in nodes:
            if id(node) in folded:
                continue
            layer = node.operation
            in_ids = [id(t) for t in node.input_tensors]
            if any(i not in info for i in in_ids) or len(node.outputs) != 1:
                raise self._unsupported(layer)
            kinds = [info[i][0] for i in in_ids]
            out = id(node.outputs[0])
            if all(k == CONST for k in kinds):
                step = _Step(node, CONST, None, "const", out)
                self.const_steps.append(step)
                info[out] = (CONST, None)
                continue
            if isinstance(layer, _ShiftedConv2D):
                step = self._plan_conv(node, layer, in_ids[0], info, readers, pads, folded)
            elif isinstance(layer, _ShiftedConv2DTranspose):
                source = in_ids[0]
                kind, scale = info[source]
                if scale % 2 or tuple(layer.strides) != (2, 2):
                    raise self._unsupported(layer)
                if kind == PIXEL and not (layer.right and tuple(layer.kernel_size) == (2, 2)):
                    raise self._unsupported(layer)
                pads.setdefault(source, [0, 0, 0])
                step = _Step(node, kind, scale // 2, "deconv", out, source)
            elif isinstance(layer, POINTWISE) or (
                type(layer) is layers.Conv2D
                and tuple(layer.kernel_size) == (1, 1)
                and tuple(layer.strides) == (1, 1)
            ):
                scales = {info[i][1] for i in in_ids if info[i][0] != CONST}
                if len(scales) != 1 or canvas in in_ids:
                    raise self._unsupported(layer)
                step = _Step(node, max(kinds), scales.pop(), "point", out)
            else:
                raise self._unsupported(layer)
            info[step.out] = (step.kind, step.scale)
            (self.row_steps if step.kind == ROW else self.pixel_steps).append(step)
        self.output_id = id(model.outputs[0])
        if info.get(self.output_id) != (PIXEL, 1):
            raise PixelCNNError("the model's output is not a full-size pixel tensor")
        self.info, self.pads = info, pads
        self.cached = [t for t in pads if t != canvas]
        # Pixel tensors' caches are column-major, (columns, batch, rows,
        # channels): a pixel step reads a window column by column, each one
        # contiguous block (see `_window_product`).
        self.column_major = {t for t in self.cached if info[t][0] == PIXEL}
        # The row tensors that pixel steps read (at the current column).
        self.row_inputs = {
            id(t)
            for step in self.pixel_steps
            if step.op == "point"
            for t in step.node.input_tensors
            if info[id(t)][0] == ROW
        }
        self.scales = sorted({s.scale for s in self.row_steps + self.pixel_steps})
        if any(self.scales[-1] % s for s in self.scales) or (
            self.height % self.scales[-1] or self.width % self.scales[-1]
        ):
            raise PixelCNNError(
                f"the fast sampler needs an image size divisible by every scale "
                f"{self.scales} of the model; got {self.height}x{self.width}"
            )
        self.rows_per_step = min(self.scales[-1], self.max_period)
        # Each cache is a ring of `slots` rows (row k in slot k % slots): the
        # current row, the `top` rows above it that its readers need, and
        # one more per row a strided reader that recomputes lags behind.
        extra = {t: 0 for t in self.cached}
        for step in self.row_steps + self.pixel_steps:
            if step.op == "conv" and step.source in extra and step.scale > self.rows_per_step:
                extra[step.source] = max(extra[step.source], step.window[0] - 1)
        self.slots = {t: pads[t][0] + extra[t] + 1 for t in self.cached}

    def _plan_conv(self, node, layer, source, info, readers, pads, folded):
        """A shifted convolution, with the shift that follows it folded in."""
        kind_in, scale_in = info[source]
        stride = layer.strides[0]
        if tuple(layer.strides) != (stride, stride) or tuple(layer.dilation_rate) != (1, 1):
            raise self._unsupported(layer)
        kh, kw = layer.kernel_size
        (top, _), (left, right) = _pads(layer.kernel_size, layer.right)
        out = id(node.outputs[0])
        down = right_shift = 0
        users = readers.get(out, [])
        if len(users) == 1 and isinstance(users[0].operation, (DownShift, RightShift)):
            folded.add(id(users[0]))
            down = int(isinstance(users[0].operation, DownShift))
            right_shift = 1 - down
            out = id(users[0].outputs[0])
        # Output (r, c) reads input rows stride * (r - down) - top + [0, kh) and
        # columns stride * (c - right_shift) - left + [0, kw), at the input's scale.
        last_row = -stride * down - top + kh - 1  # relative to stride * r
        last_col = -stride * right_shift - left + kw - 1  # relative to stride * c
        if source == self.image_id:  # must see strictly earlier pixels only
            if last_row == 0 and last_col >= 0:
                raise PixelCNNError(
                    f"layer {layer.name} sees the current pixel: the model is not causal"
                )
            kind = ROW if last_row < 0 else PIXEL
        else:
            kind = kind_in
            if kind_in == PIXEL and last_row == 0 and last_col > 0:
                raise PixelCNNError(
                    f"layer {layer.name} sees later pixels of the current row: "
                    "the model is not causal"
                )
        pad = pads.setdefault(source, [0, 0, 0])
        pad[0] = max(pad[0], top + stride * down)
        pad[1] = max(pad[1], left + stride * right_shift)
        pad[2] = max(pad[2], right)
        window = (stride, top, left, down, right_shift)
        return _Step(node, kind, scale_in * stride, "conv", out, source, window)

    # ------------------------------------------------------------- compute
    def _size(self, tensor_id):
        scale = self.info[tensor_id][1]
        return self.height // scale, self.width // scale

    def _conv(self, step, src, r, c, ncols, kernel=None):
        """Output row r (all `ncols` columns, c = 0) or position (r, c).

        `src` is the canvas (the whole image) or a cache, read whole (all its
        slots) with `kernel`, the layer's kernel for the ring's current order
        of rows (`_ring_kernel`)."""
        layer = step.node.operation
        stride, top, left, down, right_shift = step.window
        kh, kw = layer.kernel_size
        pad_top, pad_left, _ = self.pads[step.source]
        col0 = stride * (c - right_shift) - left + pad_left
        dtype = layer.compute_dtype
        if step.source in self.column_major:
            out = _window_product(src, col0, kernel, kw)
        elif step.source != self.image_id:
            width = (ncols - 1) * stride + kw
            window = ops.slice(
                src, [0, 0, col0, 0], [ops.shape(src)[0], *src.shape[1:2], width, src.shape[3]]
            )
            out = ops.conv(ops.cast(window, dtype), kernel, strides=(1, stride), padding="valid")
        else:
            kernel = ops.cast(layer.kernel, dtype)
            row0 = stride * r.value - stride * down - top + pad_top
            width = (ncols - 1) * stride + kw
            window = ops.slice(
                src, [0, row0, col0, 0], [ops.shape(src)[0], kh, width, src.shape[3]]
            )
            window = ops.cast(window, dtype)
            if ncols == 1:
                flat = ops.reshape(window, (ops.shape(window)[0], -1))
                out = ops.matmul(flat, ops.reshape(kernel, (-1, kernel.shape[-1])))
                out = ops.reshape(out, (-1, 1, 1, kernel.shape[-1]))
            else:
                out = ops.conv(window, kernel, strides=(1, stride), padding="valid")
        if layer.use_bias:
            out = out + ops.cast(layer.bias, dtype)
        if layer.activation is not None:
            out = layer.activation(out)
        if down:  # a DownShift gives zeros on the first row
            out = out * ops.cast(r.value >= 1, out.dtype)
        if right_shift:
            if ncols == 1:
                out = out * ops.cast(c >= 1, out.dtype)
            else:
                keep = (np.arange(ncols) >= 1).astype("float32")[None, None, :, None]
                out = out * ops.cast(keep, out.dtype)
        return out

    def _deconv(self, step, src, r, source_row, c, ncols):
        """A transposed convolution's output row r, or position (r, c): it
        reads input row `source_row` = r // 2 (its cache's current row)."""
        layer = step.node.operation
        _, pad_left, _ = self.pads[step.source]
        last = source_row.mod(self.slots[step.source])
        dtype = layer.compute_dtype
        kernel = ops.cast(layer.kernel, dtype)  # (kh, kw, filters, channels)
        if ncols == 1:  # kernel == stride: one input position, one tap
            value = ops.slice(  # a pixel tensor's cache is column-major
                src, [c // 2 + pad_left, 0, last, 0], [1, ops.shape(src)[1], 1, src.shape[3]]
            )
            tap = ops.slice(
                kernel, [r.mod(2), c % 2, 0, 0], [1, 1, kernel.shape[2], kernel.shape[3]]
            )
            out = ops.matmul(
                ops.reshape(ops.cast(value, dtype), (-1, src.shape[3])),
                ops.transpose(ops.reshape(tap, (kernel.shape[2], kernel.shape[3]))),
            )
            out = ops.reshape(out, (-1, 1, 1, kernel.shape[2]))
        else:
            in_w = self.width // self.info[step.source][1]
            row = ops.slice(src, [0, last, pad_left, 0], [ops.shape(src)[0], 1, in_w, src.shape[3]])
            taps = ops.slice(
                kernel, [r.mod(2), 0, 0, 0], [1, kernel.shape[1], kernel.shape[2], kernel.shape[3]]
            )
            (_, _), (c0, c1) = layer._crop(1, in_w)
            out = _row_conv_transpose(ops.cast(row, dtype), taps)[:, :, c0:c1, :]
        if layer.use_bias:
            out = out + ops.cast(layer.bias, dtype)
        if layer.activation is not None:
            out = layer.activation(out)
        return out

    def _value(self, step, values, caches, canvas, rows, c, ncols):
        r = rows[step.scale]
        if step.op == "point":
            return self._call(step, values)
        if step.source == self.image_id:
            return self._conv(step, canvas, r, c, ncols)
        src = caches[self.cached.index(step.source)]
        if step.op == "deconv":
            return self._deconv(step, src, r, rows[self.info[step.source][1]], c, ncols)
        kernel = (
            values[_ring(step)] if _ring(step) in values else self._ring_kernel(step, values, r)
        )
        return self._conv(step, src, r, c, ncols, kernel)

    def _ring_kernels(self, step):
        """A convolution's kernel for each rotation of its input's ring: for
        a window whose first row sits in slot k, slot s gets kernel row
        `(s - k) % slots` (zeros where that is not a kernel row). Stacked on
        a leading axis; in `_window_product`'s order for a column-major
        cache."""
        layer = step.node.operation
        kernel = ops.cast(layer.kernel, layer.compute_dtype)
        kh, kw, channels, filters = kernel.shape
        slots = self.slots[step.source]
        zero = ops.zeros_like(kernel[0])
        rotations = []
        for k in range(slots):
            rows = [(s - k) % slots for s in range(slots)]
            rotated = ops.stack([kernel[t] if t < kh else zero for t in rows])
            if step.source in self.column_major:  # column by column, then slot, then channel
                rotated = ops.reshape(
                    ops.transpose(rotated, (1, 0, 2, 3)), (kw * slots * channels, filters)
                )
            rotations.append(rotated)
        return ops.stack(rotations)

    def _ring_kernel(self, step, values, r):
        """The kernel for output row r: its window's first input row,
        `stride * (r - down) - top`, sits in slot `first % slots`."""
        stride, top, _, down, _ = step.window
        slots = self.slots[step.source]
        rotations = values[_rings(step)]
        if slots == 1:
            return rotations[0]
        first = r.mod(slots, stride, -stride * down - top)
        return rotations[first] if isinstance(first, int) else ops.take(rotations, first, axis=0)

    def _store(self, caches, tensor_id, r, c, value):
        """Writes row r (or position (r, c)) of a cached tensor into slot
        `r % slots` of its ring; the row it replaces is no longer read."""
        if tensor_id in self.pads and tensor_id != self.image_id:
            k = self.cached.index(tensor_id)
            left = self.pads[tensor_id][1]
            slot = r.mod(self.slots[tensor_id])
            value = ops.cast(value, caches[k].dtype)
            if tensor_id in self.column_major:  # one position: (batch, 1, 1, ch)
                start = [c + left, 0, slot, 0]
                value = ops.reshape(value, (1, -1, 1, value.shape[3]))
            else:
                start = [0, slot, c + left, 0]
            caches[k] = ops.slice_update(caches[k], start, value)

    def _fill_rows(self, canvas, caches, noise, initial, labels, start, row_start, row_stop):
        """Rows `row_start .. row_stop - 1` (multiples of `rows_per_step`)."""
        consts = {}
        if self.label_id is not None:
            consts[self.label_id] = labels
        for step in self.const_steps:
            consts[step.out] = self._call(step, consts)
        for step in self.row_steps + self.pixel_steps:  # once, outside the loops
            if step.op == "conv" and step.source in self.slots:
                consts[_rings(step)] = self._ring_kernels(step)
        period = self.rows_per_step

        def group_body(g, state):
            canvas, caches = state[0], list(state[1:])
            for phase in range(period):  # static: each row phase has its own program
                canvas, caches = self._fill_row(
                    g, phase, canvas, caches, consts, noise, initial, start
                )
            return (canvas, *caches)

        state = ops.fori_loop(
            row_start // period, row_stop // period, group_body, (canvas, *caches)
        )
        return state[0], tuple(state[1:])

    def _fill_row(self, g, phase, canvas, caches, consts, noise, initial, start):
        """Image row `i = g * rows_per_step + phase`.

        A scale-s tensor is computed only where its position starts, on rows
        with `i % s == 0` and there on columns with `j % s == 0`. Both phases
        are static: the row loop unrolls `rows_per_step` rows and the pixel
        loop a group of consecutive pixels (up to `max_column_group`). A scale
        coarser than that is recomputed at the first row (column) of each
        period (group) within its position: the same value each time, as its
        inputs are complete at the first.
        """
        batch = ops.shape(canvas)[0]
        width, period = self.width, self.rows_per_step
        top, pad_left, _ = self.pads[self.image_id]
        i = g * period + phase
        # The current row at each scale.
        rows = {
            s: _Row(g, period // s, phase // s) if s <= period else _Row(i // s)
            for s in self.scales
        }
        row_values = dict(consts)
        for step in self.row_steps:
            if phase % min(step.scale, period):
                continue
            value = self._value(step, row_values, caches, canvas, rows, 0, width // step.scale)
            row_values[step.out] = value
            self._store(caches, step.out, rows[step.scale], 0, value)
        for step in self.pixel_steps:  # the ring kernels of this row's pixel convolutions
            if (
                step.op == "conv"
                and step.source in self.slots
                and not phase % min(step.scale, period)
            ):
                row_values[_ring(step)] = self._ring_kernel(step, consts, rows[step.scale])
        active = [s for s in self.scales if phase % min(s, period) == 0]
        columns = min(active[-1], self.max_column_group)

        def pixel_body(k, state):  # pixels k * columns .. k * columns + columns - 1
            canvas, caches = state[0], list(state[1:])
            for column in range(columns):
                j = k * columns + column
                cols = {
                    s: k * (columns // s) + column // s if s <= columns else j // s
                    for s in self.scales
                }
                values = dict(consts)
                for tensor_id, value in row_values.items():
                    if isinstance(tensor_id, tuple):  # a ring kernel
                        values[tensor_id] = value
                    if tensor_id not in self.row_inputs:
                        continue
                    scale = self.info[tensor_id][1]
                    values[tensor_id] = ops.slice(
                        value, [0, 0, cols[scale], 0], [batch, 1, 1, ops.shape(value)[3]]
                    )
                for step in self.pixel_steps:
                    if phase % min(step.scale, period) or column % min(step.scale, columns):
                        continue
                    c = cols[step.scale]
                    value = self._value(step, values, caches, canvas, rows, c, 1)
                    values[step.out] = value
                    self._store(caches, step.out, rows[step.scale], c, value)
                params = ops.cast(values[self.output_id], "float32")
                u = ops.slice(noise, [0, i, j, 0], [batch, 1, 1, ops.shape(noise)[3]])
                sampled = ops.cast(self.likelihood.sample(params, u)[..., None], canvas.dtype)
                known = ops.slice(initial, [0, i, j, 0], [batch, 1, 1, 1])
                value = ops.where(i * width + j < start, known, sampled)
                if self.input_transform is not None:
                    value = ops.cast(self.input_transform(value), canvas.dtype)
                if self.border:
                    value = ops.concatenate([value, ops.ones_like(value)], axis=-1)
                canvas = ops.slice_update(canvas, [0, i + top, j + pad_left, 0], value)
            return (canvas, *caches)

        state = ops.fori_loop(0, width // columns, pixel_body, (canvas, *caches))
        return state[0], list(state[1:])

    # ------------------------------------------------------------------ API
    def _channels(self, tensor_id):
        if tensor_id == self.image_id:
            return 2 if self.border else 1
        step = next(s for s in self.row_steps + self.pixel_steps if s.out == tensor_id)
        return step.node.outputs[0].shape[-1]

    def _shape(self, tensor_id, batch):
        """The padded canvas (the whole image) or a cache at its scale: the
        `top + 1` rows its readers still need, up to its current row (shifted
        down by one row at the start of each of its rows)."""
        top, left, right = self.pads[tensor_id]
        h, w = self._size(tensor_id)
        rows = h + top if tensor_id == self.image_id else self.slots[tensor_id]
        if tensor_id in self.column_major:
            return (w + left + right, batch, rows, self._channels(tensor_id))
        return (batch, rows, w + left + right, self._channels(tensor_id))

    def _canvas(self, known, batch):
        """The padded canvas holding the known (rescaled) pixels and, with a
        border channel, ones inside the image."""
        canvas = super()._canvas(known, batch)  # broadcasts into every channel
        top, left, _ = self.pads[self.image_id]
        if self.border:
            canvas[:, top : top + self.height, left : left + self.width, 1] = 1.0
        return canvas

    def sample_tensor(self, noise, labels=None):
        """Traceable sampling of a whole batch (SavedModel export)."""
        batch = ops.shape(noise)[0]
        h, w = self.height, self.width
        top, left, right = self.pads[self.image_id]
        inner = ops.zeros((batch, h, w, 1), "float32")
        if self.border:
            inner = ops.concatenate([inner, ops.ones_like(inner)], axis=-1)
        canvas = ops.pad(inner, [[0, 0], [top, 0], [left, right], [0, 0]])
        caches = [ops.zeros(self._shape(t, batch), "float32") for t in self.cached]
        canvas, _ = self._fill_rows(
            canvas, tuple(caches), noise, ops.zeros((batch, h, w, 1), "float32"), labels, 0, 0, h
        )
        return self._to_data(self._image(canvas))


class _Row:
    """A row index of `_fill_row`'s program: `g * m + p` at a scale that
    the row loop's unrolling fixes the phase of (g the loop's iteration,
    m and p static), else just a traced `value`. A ring's slot is then a
    constant where it can be: a static slice is cheaper than a dynamic one
    (XLA:CPU's dynamic row offsets make scalar code)."""

    def __init__(self, g, m=0, p=0):
        self.m, self.p = m, p
        self.value = g * m + p if m else g

    def mod(self, n, times=1, plus=0):
        """`(times * row + plus) % n`, a Python int when it is static."""
        if self.m and (times * self.m) % n == 0:
            return (times * self.p + plus) % n
        return (times * self.value + plus) % n


def _rings(step):
    """The key of a convolution's kernels for every ring rotation."""
    return ("rings", step.out)


def _ring(step):
    """The key of a convolution's kernel for the current row's rotation."""
    return ("ring", step.out)


def _window_product(src, col0, kernel, kw):
    """A convolution's output at one position from a column-major cache
    `(columns, batch, slots, channels)`: its `kw` columns from `col0`, each
    with all the ring's slots, side by side on the channel axis, times the
    kernel for the ring's order (`_ring_kernels`), in one product.

    Each column is one contiguous block of the cache. The window of a
    batch-major cache `(batch, rows, columns, channels)` is batch × rows
    pieces, and XLA:CPU copies it out of a dynamic slice element by element
    (scalar code): 24% of the PixelCNN++ sampler's time at batch 32, 38% at
    128 (README, "Sampling speed")."""
    batch, slots, channels = ops.shape(src)[1], src.shape[2], src.shape[3]
    columns = [
        ops.reshape(
            ops.slice(src, [col0 + dx, 0, 0, 0], [1, batch, slots, channels]),
            (batch, slots * channels),
        )
        for dx in range(kw)
    ]
    window = ops.concatenate(columns, axis=-1) if kw > 1 else columns[0]
    out = ops.matmul(ops.cast(window, kernel.dtype), kernel)
    return ops.reshape(out, (-1, 1, 1, kernel.shape[-1]))


def _row_conv_transpose(row, taps):
    """`ops.conv_transpose(row, taps, strides=(1, 2), padding="valid")` of one
    row `(batch, 1, w, channels)` with `taps` `(1, kw, filters, channels)`:
    one matrix product for all the taps, then input column c's product with
    tap dx added at output column 2c + dx. XLA:CPU's transposed convolution
    took 350 µs a row here at batch 32, the product and the sums a fraction
    of it."""
    batch, _, w, channels = ops.shape(row)[0], *row.shape[1:]
    _, kw, filters, _ = taps.shape
    matrix = ops.reshape(ops.transpose(taps[0], (2, 0, 1)), (channels, kw * filters))
    products = ops.reshape(
        ops.matmul(ops.reshape(row, (-1, channels)), matrix), (-1, w, kw, filters)
    )
    out = 0
    for dx in range(kw):
        at_even = ops.stack([products[:, :, dx], ops.zeros_like(products[:, :, dx])], axis=2)
        at_even = ops.reshape(at_even, (batch, 2 * w, filters))  # column c at 2c
        out = out + ops.pad(at_even, [[0, 0], [dx, kw - 1 - dx], [0, 0]])
    return ops.reshape(out, (batch, 1, 2 * w + kw - 1, filters))
