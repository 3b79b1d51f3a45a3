"""The cached sampler's loop: fills the canvas row by row, pixel by pixel,
computing each tensor of the plan (`plan.py`) where it is first complete.

Every tensor has a dependence and a scale s (1 in PixelCNN and Gated
PixelCNN; 1, 2, 4 in PixelCNN++, which halves the image twice with strided
shifted convolutions and doubles it back with transposed ones):

- *row* tensors (the vertical stack, PixelCNN++'s down-shifted "up" stream)
  see only image rows above; at the start of image row i, row i // s of
  each is computed, whole;
- *pixel* tensors (masked convolutions, the horizontal stack, the
  down-right-shifted "up-left" stream) see the current row to the left; at
  pixel (i, j), position (i // s, j // s) of each is computed.

A scale-s tensor's position is complete at the first image pixel that maps
to it, so it is computed there; the row and pixel loops are unrolled over
static phases (`max_period` rows × `max_column_group` pixels, 4 × 2 by
default, or `KERAS_PIXELCNN_UNROLL`; 1 × 1 for a single-scale model) so
that no branch is needed to know where that is. A scale coarser than the
unrolling is recomputed at the first pixel of each unrolled block inside its
position: the same value each time. Each cache is a ring of the rows its readers still need at its scale
(row k in slot k % slots): nothing moves, a writer stores one slot and a
reader reads all slots with its kernel rows rotated to the slots' order
(the taps outside the window, and a masked kernel's taps right of the
current pixel, are zeros). Where the unrolled phase fixes the row, the slot
and the rotation are Python constants. A pixel tensor's cache is
column-major (columns, batch, slots, channels), so a window column is one
contiguous slice (XLA:CPU copies a batch-major window out element by
element).

A convolution reads a window of its input's cache (strided: at the input's
scale) with its own kernel over its causal window (`window_kernel`: masked),
a folded `DownShift` / `RightShift` giving zeros on the first row / column;
a transposed convolution reads the one input position (pixel tensors;
kernel == stride) or the input row (row tensors) that feeds the output;
every other layer is pointwise and is called as it is, except that sibling
pointwise convolutions of one pixel tensor are one matrix product. The image
enters through its `Rescaling` and `BorderIndicator` (when the model has
them), kept in the canvas. Only `keras.ops`.
"""

import copy

import numpy as np
from keras import layers, ops

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.layers import CausalConv2D
from keras_pixelcnn.runtime import sampler_unrolling
from keras_pixelcnn.sampling import channel_groups, graph
from keras_pixelcnn.sampling.plan import PIXEL


class SamplingLoop:
    """Fills rows of the canvas for a plan (see the module docstring);
    `fill_rows` is what the sampler compiles.

    Args:
        plan: the model's `Plan`.
        likelihood: the model's likelihood (samples a pixel from its
            parameters and noise).
    """

    # The most pixels of a row one iteration of the pixel loop samples (a
    # power of two): its program is unrolled over their column phases, so a
    # coarse tensor is computed once per position, not at every pixel.
    max_column_group = 2
    # The most image rows one iteration of the row loop samples (a power of
    # two), each with its own program. 4 rows x 2 pixels computes a
    # quarter-scale tensor twice per position (2 x 2: four times) and
    # sampled 1.08x as fast at batch 64 and 1.15x at 256 as 2 x 2, for about
    # 2 s more compilation (benchmarks/README.md, "Sampling speed").
    max_period = 4

    def __init__(self, plan, likelihood):
        period, columns = sampler_unrolling() or (self.max_period, self.max_column_group)
        self.plan, self.likelihood = plan, likelihood
        self.info = plan.info
        self.pads = {plan.image_id: [0, 0, 0]}
        for step in plan.row_steps + plan.pixel_steps:
            if step.op == "conv":
                pad = self.pads.setdefault(step.source, [0, 0, 0])
                pad[:] = [max(a, b) for a, b in zip(pad, step.window.pads)]
            elif step.op == "deconv":
                self.pads.setdefault(step.source, [0, 0, 0])
        self.cached = [t for t in self.pads if t != plan.image_id]
        # Pixel tensors' caches are column-major, (columns, batch, rows,
        # channels): a pixel step reads a window column by column, each one
        # contiguous block (see `_window_product`).
        self.column_major = {t for t in self.cached if self.info[t][0] == PIXEL}
        scales = plan.scales
        if any(scales[-1] % s for s in scales) or (
            plan.height % scales[-1] or plan.width % scales[-1]
        ):
            raise PixelCNNError(
                f"the fast sampler needs an image size divisible by every scale "
                f"{scales} of the model; got {plan.height}x{plan.width}"
            )
        self.rows_per_step = min(scales[-1], period)
        self.column_group = columns
        # Each cache is a ring of `slots` rows (row k in slot k % slots): the
        # current row, the `top` rows above it that its readers need, and
        # one more per row a strided reader that recomputes lags behind.
        extra = {t: 0 for t in self.cached}
        for step in plan.row_steps + plan.pixel_steps:
            if step.op == "conv" and step.source in extra and step.scale > self.rows_per_step:
                extra[step.source] = max(extra[step.source], step.window.stride - 1)
        self.slots = {t: self.pads[t][0] + extra[t] + 1 for t in self.cached}
        # A per-channel Categorical colour model: one channel group per pass
        # (`channel_groups.py`), where its layers allow it.
        self.groups = channel_groups.channel_groups(plan, likelihood)
        self.sibling_groups = [] if self.groups else _sibling_groups(plan.pixel_steps)
        # ... with the channels of its pixel tensors' caches group-major (group
        # k contiguous: written and read as one slice), and the grouped 1×1s'
        # inputs kept whole at the pixel across the passes, also group-major.
        self.whole_values = {
            step.inputs[0]
            for step in plan.pixel_steps
            if self.groups and channel_groups.pointwise_conv(step, self.groups)
        }
        self.group_of = {  # a sibling's output -> (its group's index, the group)
            step.out: (k, group) for k, group in enumerate(self.sibling_groups) for step in group
        }

    # ------------------------------------------------------------ buffers
    def buffers(self):
        """What a compiled call carries besides the canvas: the caches."""
        return list(self.cached)

    def shape(self, tensor_id, batch):
        """The padded canvas (the whole image) or a cache at its scale: the
        ring of `slots` rows its readers still need."""
        top, left, right = self.pads[tensor_id]
        h, w = self._size(tensor_id)
        rows = h + top if tensor_id == self.plan.image_id else self.slots[tensor_id]
        channels = self.plan.channels(tensor_id)
        if tensor_id in self.column_major:
            return (w + left + right, batch, rows, channels)
        return (batch, rows, w + left + right, channels)

    def _size(self, tensor_id):
        scale = self.info[tensor_id][1]
        return self.plan.height // scale, self.plan.width // scale

    # ------------------------------------------------------------- values
    def _conv(self, step, src, r, c, ncols, kernel=None, bias=None):
        """Output row r (all `ncols` columns, c = 0) or position (r, c).

        `src` is the canvas (the whole image) or a cache, read whole (all its
        slots) with `kernel`, the layer's kernel for the ring's current order
        of rows (`_ring_kernel`). A channel group of the output alone (a
        position only): `kernel` (for the canvas too) and `bias` cut to it."""
        layer, w = step.layer, step.window
        stride, kw = w.stride, w.left + w.right + 1
        pad_top, pad_left, _ = self.pads[step.source]
        col0 = stride * c - w.left + pad_left
        dtype = layer.compute_dtype
        if step.source in self.column_major and ncols == 1:
            out = _window_product(src, col0, kernel, kw)
        elif step.source in self.column_major:  # a row step: a pixel tensor's rows above
            slots, channels = src.shape[2], src.shape[3]
            rows = ops.transpose(src, (1, 2, 0, 3))  # (batch, slots, columns, channels)
            window = ops.slice(
                rows,
                [0, 0, col0, 0],
                [ops.shape(src)[1], slots, (ncols - 1) * stride + kw, channels],
            )
            kernel = ops.transpose(ops.reshape(kernel, (kw, slots, channels, -1)), (1, 0, 2, 3))
            out = ops.conv(ops.cast(window, dtype), kernel, strides=(1, stride), padding="valid")
        elif step.source != self.plan.image_id:
            width = (ncols - 1) * stride + kw
            window = ops.slice(
                src, [0, 0, col0, 0], [ops.shape(src)[0], *src.shape[1:2], width, src.shape[3]]
            )
            out = ops.conv(ops.cast(window, dtype), kernel, strides=(1, stride), padding="valid")
        else:
            kernel = _kernel(layer) if kernel is None else kernel
            row0 = stride * r.value - w.shift - w.rows + 1 + pad_top
            width = (ncols - 1) * stride + kw
            window = ops.slice(
                src, [0, row0, col0, 0], [ops.shape(src)[0], w.rows, width, src.shape[3]]
            )
            window = ops.cast(window, dtype)
            if ncols == 1:
                flat = ops.reshape(window, (ops.shape(window)[0], -1))
                out = ops.matmul(flat, ops.reshape(kernel, (-1, kernel.shape[-1])))
                out = ops.reshape(out, (-1, 1, 1, kernel.shape[-1]))
            else:
                out = ops.conv(window, kernel, strides=(1, stride), padding="valid")
        out = _finish(layer, out, bias)
        if w.zero_row:  # a DownShift gives zeros on the first row
            out = out * ops.cast(r.value >= 1, out.dtype)
        if w.zero_col:
            if ncols == 1:
                out = out * ops.cast(c >= 1, out.dtype)
            else:
                keep = (np.arange(ncols) >= 1).astype("float32")[None, None, :, None]
                out = out * ops.cast(keep, out.dtype)
        return out

    def _deconv(self, step, src, r, source_row, c, ncols):
        """A transposed convolution's output row r, or position (r, c): it
        reads input row `source_row` = r // 2 (its cache's current row)."""
        layer = step.layer
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
            in_w = self._size(step.source)[1]
            row = ops.slice(src, [0, last, pad_left, 0], [ops.shape(src)[0], 1, in_w, src.shape[3]])
            taps = ops.slice(
                kernel, [r.mod(2), 0, 0, 0], [1, kernel.shape[1], kernel.shape[2], kernel.shape[3]]
            )
            (_, _), (c0, c1) = layer._crop(1, in_w)
            out = _row_conv_transpose(ops.cast(row, dtype), taps)[:, :, c0:c1, :]
        return _finish(layer, out)

    def _value(self, step, values, caches, canvas, rows, c, ncols):
        r = rows[step.scale]
        if step.op == "point":
            return graph.call(step.node, values)
        if step.source == self.plan.image_id:
            return self._conv(step, canvas, r, c, ncols)
        src = caches[step.source]
        if step.op == "deconv":
            return self._deconv(step, src, r, rows[self.info[step.source][1]], c, ncols)
        kernel = (
            values[_ring(step)] if _ring(step) in values else self._ring_kernel(step, values, r)
        )
        return self._conv(step, src, r, c, ncols, kernel)

    def _ring_kernels(self, step, kernel=None):
        """A convolution's kernel (`kernel`, or the layer's) for each rotation
        of its input's ring: for a window whose first row sits in slot k,
        slot s gets kernel row `(s - k) % slots` (zeros where that is not a
        kernel row). Stacked on a leading axis; in `_window_product`'s order
        for a column-major cache."""
        kernel = _kernel(step.layer) if kernel is None else kernel
        kh, kw, channels, filters = kernel.shape
        slots = self.slots[step.source]
        # row kh of `padded` is zeros; one gather for every rotation instead
        # of slots x slots slices and stacks (144 ops fewer in the shipped
        # PixelCNN++'s traced program: benchmarks/sampler_trace.py)
        padded = ops.concatenate([kernel, ops.zeros_like(kernel[:1])], axis=0)
        rows = [(s - k) % slots for k in range(slots) for s in range(slots)]
        rotations = ops.take(padded, np.array([t if t < kh else kh for t in rows]), axis=0)
        rotations = ops.reshape(rotations, (slots, slots, kw, channels, filters))
        if step.source in self.column_major:  # column by column, then slot, then channel
            rotations = ops.reshape(
                ops.transpose(rotations, (0, 2, 1, 3, 4)), (slots, kw * slots * channels, filters)
            )
        return rotations

    def _ring_kernel(self, step, values, r, group=None):
        """The kernel for output row r (its channel group `group`, if
        given): its window's first input row, `stride * r - shift - rows +
        1`, sits in slot `first % slots`."""
        w = step.window
        slots = self.slots[step.source]
        rotations = values[_rings(step, group)]
        if slots == 1:
            return rotations[0]
        first = r.mod(slots, w.stride, -w.shift - w.rows + 1)
        return rotations[first] if isinstance(first, int) else ops.take(rotations, first, axis=0)

    def _store(self, caches, tensor_id, r, c, value):
        """Writes row r (or position (r, c)) of a cached tensor into slot
        `r % slots` of its ring; the row it replaces is no longer read."""
        if tensor_id in caches:
            cache = caches[tensor_id]
            left = self.pads[tensor_id][1]
            slot = r.mod(self.slots[tensor_id])
            value = ops.cast(value, cache.dtype)
            if tensor_id in self.column_major:  # one position: (batch, 1, 1, ch)
                start = [c + left, 0, slot, 0]
                value = ops.reshape(value, (1, -1, 1, value.shape[3]))
            else:
                start = [0, slot, c + left, 0]
            caches[tensor_id] = ops.slice_update(cache, start, value)

    # ---------------------------------------------------------------- loop
    def fill_rows(self, canvas, buffers, noise, initial, labels, start, row_start, row_stop):
        """Rows `row_start .. row_stop - 1` (multiples of `rows_per_step`);
        `buffers` are the caches, in the order of `buffers()`."""
        plan = self.plan
        consts = _constants(plan, labels)
        for step in plan.row_steps + plan.pixel_steps:  # once, outside the loops
            if step.op == "conv" and step.source in self.slots:
                if not (self.groups and step in plan.pixel_steps):
                    consts[_rings(step)] = self._ring_kernels(step)
                else:  # one pass per group: each group's, for a group-major cache
                    kernel = _kernel(step.layer)
                    order = channel_groups.group_major(kernel.shape[2], self.groups)
                    rings = self._ring_kernels(step, ops.take(kernel, order, axis=2))
                    for k in range(self.groups):
                        consts[_rings(step, k)] = channel_groups.take_group(rings, self.groups, k)
        if self.groups:  # the other kernels and biases of each group, also once
            consts.update(self._group_kernels())
        merged = [_merged_kernels(group) for group in self.sibling_groups]
        period = self.rows_per_step

        def group_body(g, state):
            for phase in range(period):  # static: each row phase has its own program
                state = self._fill_row(g, phase, state, consts, merged, noise, initial, start)
            return state

        state = {"canvas": canvas, "caches": dict(zip(self.cached, buffers))}
        state = ops.fori_loop(row_start // period, row_stop // period, group_body, state)
        return state["canvas"], tuple(state["caches"][t] for t in self.cached)

    def _fill_row(self, g, phase, state, consts, merged, noise, initial, start):
        """Image row `i = g * rows_per_step + phase`.

        A scale-s tensor is computed only where its position starts, on rows
        with `i % s == 0` and there on columns with `j % s == 0`. Both phases
        are static: the row loop unrolls `rows_per_step` rows and the pixel
        loop a group of consecutive pixels (up to `column_group`). A scale
        coarser than that is recomputed at the first row (column) of each
        period (group) within its position: the same value each time, as its
        inputs are complete at the first.
        """
        plan = self.plan
        canvas, caches = state["canvas"], dict(state["caches"])
        batch = ops.shape(canvas)[0]
        width, period = plan.width, self.rows_per_step
        i = g * period + phase
        # The current row at each scale.
        rows = {
            s: _Row(g, period // s, phase // s) if s <= period else _Row(i // s)
            for s in plan.scales
        }
        row_values = dict(consts)
        for step in plan.row_steps:
            if phase % min(step.scale, period):
                continue
            value = self._value(step, row_values, caches, canvas, rows, 0, width // step.scale)
            row_values[step.out] = value
            self._store(caches, step.out, rows[step.scale], 0, value)
        for step in plan.pixel_steps:  # the ring kernels of this row's pixel convolutions
            if (
                step.op == "conv"
                and step.source in self.slots
                and not phase % min(step.scale, period)
            ):
                for k in range(self.groups) if self.groups else [None]:
                    row_values[_ring(step, k)] = self._ring_kernel(
                        step, consts, rows[step.scale], k
                    )
        active = [s for s in plan.scales if phase % min(s, period) == 0]
        columns = min(active[-1], self.column_group)
        group_of = self.group_of
        scales = plan.scales

        def columns_of(k, column):
            """Pixel `k * columns + column`'s column at each scale."""
            j = k * columns + column
            return {s: k * (columns // s) + column // s if s <= columns else j // s for s in scales}

        # The row tensors that pixel steps read, at each column of pixel group
        # k: sliced at the end of the previous group and carried in the loop
        # state (an XLA:CPU fusion that reads a dynamic slice is not
        # vectorized: the gated activations after it took 5x as long).
        inputs = [t for t in plan.row_inputs if t in row_values]

        def sliced(k):
            out = []
            for column in range(columns):
                cols = columns_of(k, column)
                for t in inputs:
                    value, scale = row_values[t], self.info[t][1]
                    out.append(
                        ops.slice(value, [0, 0, cols[scale], 0], [batch, 1, 1, value.shape[3]])
                    )
            return out

        kernels = {t: v for t, v in row_values.items() if isinstance(t, tuple)}  # ring kernels
        groups = width // columns
        # A likelihood with ordered channels: the pixel steps run once per
        # channel, each pass reading the channels written before it (and
        # computing only that channel's group where the layers allow it:
        # `_group_passes`).
        channels = range(plan.image_channels) if self.likelihood.sequential_channels else [None]

        def pixel_body(k, state):  # pixels k * columns .. k * columns + columns - 1
            canvas, caches = state["canvas"], dict(state["caches"])
            carried = iter(state["columns"])
            rows_here = {s: row.fresh() for s, row in rows.items()}  # this body's program
            for column in range(columns):
                j = k * columns + column
                cols = columns_of(k, column)
                row_columns = [(t, next(carried)) for t in inputs]
                if self.groups:  # one pass per channel group
                    values = {**consts, **kernels}
                    values.update(row_columns)
                    canvas = self._group_passes(
                        values, caches, canvas, rows_here, cols[1], noise, initial, start, i, j
                    )
                    continue
                for channel in channels:  # one pass, or one per ordered channel
                    values = {**consts, **kernels}
                    values.update(row_columns)
                    for step in plan.pixel_steps:
                        if phase % min(step.scale, period) or column % min(step.scale, columns):
                            continue
                        c = cols[step.scale]
                        if step.out in group_of and step.out not in values:
                            n, group = group_of[step.out]
                            outputs = _siblings_value(group, *merged[n], values[step.inputs[0]])
                            values.update((s.out, out) for s, out in zip(group, outputs))
                        elif step.out not in values:
                            values[step.out] = self._value(
                                step, values, caches, canvas, rows_here, c, 1
                            )
                        self._store(caches, step.out, rows_here[step.scale], c, values[step.out])
                    canvas = _write_pixel(
                        plan, self.likelihood, canvas, values[plan.output_id],
                        noise, initial, start, i, j, self.pads[plan.image_id], channel,
                    )  # fmt: skip
            following = sliced(ops.minimum(k + 1, groups - 1))
            return {"canvas": canvas, "caches": caches, "columns": following}

        state = {"canvas": canvas, "caches": caches, "columns": sliced(0)}
        state = ops.fori_loop(0, groups, pixel_body, state)
        return {"canvas": state["canvas"], "caches": state["caches"]}

    def _group_kernels(self):
        """Group k's kernel (a matrix) and bias of each pixel convolution,
        by `("group", step.out, k)`; the kernel is None where the ring
        kernels serve (a convolution of a cache)."""
        out = {}
        for step in self.plan.pixel_steps:
            layer = step.layer
            if step.op != "conv" and not channel_groups.pointwise_conv(step, self.groups):
                continue
            for k in range(self.groups):
                kernel = bias = None
                if step.op != "conv" or step.source not in self.slots:
                    matrix = ops.reshape(_kernel(layer), (-1, layer.filters))
                    if step.op != "conv":  # a 1×1: its input is kept group-major
                        order = channel_groups.group_major(matrix.shape[0], self.groups)
                        matrix = ops.take(matrix, order, axis=0)
                    kernel = channel_groups.take_group(matrix, self.groups, k)
                if layer.use_bias:
                    bias = channel_groups.take_group(layer.bias, self.groups, k)
                out[("group", step.out, k)] = (kernel, bias)
        return out

    def _group_passes(self, values, caches, canvas, rows, c, noise, initial, start, i, j):
        """Pixel (i, j) of a model whose pixel steps run one channel group
        per pass (`channel_groups.py`): pass k computes group k of every
        pixel tensor and samples colour channel k. `values` holds the
        constants, ring kernels and row tensors' columns (all channels)."""
        plan, groups, r = self.plan, self.groups, rows[1]
        batch = ops.shape(canvas)[0]
        whole = {}  # tensor id -> its value at the pixel (group-major), groups <= k written
        for k in range(groups):
            part = {}  # tensor id -> group k of its value at the pixel
            for step in plan.pixel_steps:
                layer = step.layer
                if step.op == "conv":
                    src = canvas if step.source == plan.image_id else caches[step.source]
                    kernel, bias = values[("group", step.out, k)]
                    kernel = values.get(_ring(step, k), kernel)
                    out = self._conv(step, src, r, c, 1, kernel, bias)
                elif channel_groups.pointwise_conv(step, groups):  # reads every group <= k
                    kernel, bias = values[("group", step.out, k)]
                    x = ops.reshape(ops.cast(whole[step.inputs[0]], kernel.dtype), (batch, -1))
                    out = ops.reshape(ops.matmul(x, kernel), (-1, 1, 1, kernel.shape[-1]))
                    out = _finish(layer, out, bias)
                else:  # elementwise: group k of each input (a row tensor's, a constant's)
                    args = {
                        t: part[t] if t in part else channel_groups.take_group(values[t], groups, k)
                        for t in step.inputs
                    }
                    out = graph.call(step.node, args)
                part[step.out] = out
                n = out.shape[-1]  # a group's channels
                if step.out in self.whole_values:
                    value = whole.get(step.out)
                    if value is None:
                        value = ops.zeros((batch, 1, 1, n * groups), out.dtype)
                    whole[step.out] = ops.slice_update(value, [0, 0, 0, k * n], out)
                if step.out in caches:  # column-major: (columns, batch, slots, channels)
                    cache, slot = caches[step.out], r.mod(self.slots[step.out])
                    value = ops.reshape(ops.cast(out, cache.dtype), (1, -1, 1, n))
                    start_at = [c + self.pads[step.out][1], 0, slot, k * n]
                    caches[step.out] = ops.slice_update(cache, start_at, value)
            canvas = _write_channel(
                plan, self.likelihood, canvas, part[plan.output_id],
                noise, initial, start, i, j, self.pads[plan.image_id], k,
            )  # fmt: skip
        return canvas


class _Row:
    """A row index of `_fill_row`'s program: `g * m + p` at a scale that
    the row loop's unrolling fixes the phase of (g the loop's iteration,
    m and p static), else just a traced `value`. A ring's slot is then a
    constant where it can be: a static slice is cheaper than a dynamic one
    (XLA:CPU's dynamic row offsets make scalar code)."""

    def __init__(self, g, m=0, p=0):
        self.m, self.p = m, p
        self.value = g * m + p if m else g
        # the traced slots computed so far, by (n, times, plus): a ring's slot
        # is asked for by every layer that writes or reads it (at 1 x 1
        # unrolling, 506 of the shipped PixelCNN++'s 4,322 traced ops)
        self._mods = {}

    def fresh(self):
        """The same row without the traced values computed so far: for a
        nested loop's body, a program of its own."""
        row = copy.copy(self)
        row._mods = {}
        return row

    def mod(self, n, times=1, plus=0):
        """`(times * row + plus) % n`, a Python int when it is static."""
        if self.m and (times * self.m) % n == 0:
            return (times * self.p + plus) % n
        key = (n, times, plus)
        if key not in self._mods:
            value = self.value if times == 1 else times * self.value
            self._mods[key] = (value + plus if plus else value) % n
        return self._mods[key]


def _rings(step, group=None):
    """The key of a convolution's kernels for every ring rotation (of the
    output's channel group `group`, if given)."""
    return ("rings", step.out) if group is None else ("rings", step.out, group)


def _ring(step, group=None):
    """The key of a convolution's kernel for the current row's rotation."""
    return ("ring", step.out) if group is None else ("ring", step.out, group)


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
    # the kw columns in one slice (one block: they are contiguous), then
    # side by side per image
    window = ops.slice(src, [col0, 0, 0, 0], [kw, batch, slots, channels])
    if kw > 1:
        window = ops.transpose(window, (1, 0, 2, 3))
    window = ops.reshape(window, (batch, kw * slots * channels))
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


def _kernel(layer):
    """The kernel over the layer's causal window (masked), in its compute
    dtype (mixed precision: float32 weights cast to bfloat16, as the layer
    itself computes)."""
    value = ops.cast(layer.kernel, layer.compute_dtype)
    return layer.window_kernel(value) if isinstance(layer, CausalConv2D) else value


def _finish(layer, out, bias=None):
    """A convolution's output from its product: bias (`bias`, a part of
    the layer's, if given), then activation."""
    if layer.use_bias:
        out = out + ops.cast(layer.bias if bias is None else bias, out.dtype)
    return layer.activation(out) if layer.activation is not None else out


def _constants(plan, labels):
    """The CONST tensors (labels, embeddings and their projections) by id."""
    values = {}
    if plan.label_id is not None:
        values[plan.label_id] = labels
    for step in plan.const_steps:
        values[step.out] = graph.call(step.node, values)
    return values


def _write_pixel(plan, likelihood, canvas, params, noise, initial, start, i, j, pads, channel):
    """Samples pixel (i, j) of every image from its parameters and noise (or
    keeps the known pixel before raster position `start`), and writes it,
    as the network reads it, into the padded canvas: every channel, or only
    `channel` when the likelihood orders them (one pass per channel)."""
    batch = ops.shape(canvas)[0]
    params = ops.cast(params, "float32")
    u = ops.slice(noise, [0, i, j, 0], [batch, 1, 1, ops.shape(noise)[3]])
    sampled = ops.cast(likelihood.sample(params, u), canvas.dtype)
    known = ops.slice(initial, [0, i, j, 0], [batch, 1, 1, likelihood.channels])
    value = ops.where(i * plan.width + j < start, known, sampled)
    if plan.input_transform is not None:
        value = ops.cast(plan.input_transform(value), canvas.dtype)
    top, left, _ = pads
    if channel is not None:
        return ops.slice_update(
            canvas, [0, i + top, j + left, channel], value[..., channel : channel + 1]
        )
    if plan.border:
        value = ops.concatenate([value, ops.ones_like(value[..., :1])], axis=-1)
    return ops.slice_update(canvas, [0, i + top, j + left, 0], value)


def _write_channel(plan, likelihood, canvas, params, noise, initial, start, i, j, pads, k):
    """`_write_pixel` for colour channel k alone, from its own parameters."""
    batch = ops.shape(canvas)[0]
    u = ops.slice(noise, [0, i, j, k], [batch, 1, 1, 1])
    sampled = channel_groups.sample_channel(likelihood, ops.cast(params, "float32"), u)
    known = ops.slice(initial, [0, i, j, k], [batch, 1, 1, 1])
    value = ops.where(i * plan.width + j < start, known, ops.cast(sampled, canvas.dtype))
    if plan.input_transform is not None:
        value = ops.cast(plan.input_transform(value), canvas.dtype)
    top, left, _ = pads
    return ops.slice_update(canvas, [0, i + top, j + left, k], value)


def _sibling_groups(pixel_steps):
    """Pointwise convolutions of the pixel steps that read the same tensor
    (in the Gated PixelCNN, each layer's `h_out` and its skip `1×1`),
    grouped so that one matrix product computes them all (Gated, batch 64:
    424 against 382 img/s in one process; benchmarks/README.md)."""
    groups = {}
    for step in pixel_steps:
        layer = step.layer
        if step.op == "point" and isinstance(layer, layers.Conv2D) and layer.groups == 1:
            key = (step.inputs[0], layer.compute_dtype)
            groups.setdefault(key, []).append(step)
    return [group for group in groups.values() if len(group) > 1]


def _merged_kernels(group):
    """The kernels of a group of sibling pointwise convolutions side by side
    `(in, sum of outs)`, and their biases."""
    kernels, biases = [], []
    for step in group:
        kernel = _kernel(step.layer)
        kernels.append(ops.reshape(kernel, (-1, kernel.shape[-1])))
        bias = ops.zeros((kernel.shape[-1],), kernel.dtype)
        biases.append(bias + ops.cast(step.layer.bias, bias.dtype) if step.layer.use_bias else bias)
    return ops.concatenate(kernels, axis=1), ops.concatenate(biases)


def _siblings_value(group, kernel, bias, inputs):
    """The outputs of a group of pointwise convolutions of one input at one
    position: one matrix product instead of one per layer (each output is
    the same dot product over the input channels)."""
    batch = ops.shape(inputs)[0]
    flat = ops.reshape(ops.cast(inputs, kernel.dtype), (batch, -1))
    out = ops.matmul(flat, kernel) + bias
    values, first = [], 0
    for step in group:
        layer, width = step.layer, step.layer.filters
        value = ops.reshape(out[:, first : first + width], (batch, 1, 1, width))
        values.append(layer.activation(value) if layer.activation is not None else value)
        first += width
    return values
