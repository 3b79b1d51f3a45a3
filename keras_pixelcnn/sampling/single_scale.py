"""The cached sampler's loop for single-scale graphs (PixelCNN, Gated
PixelCNN): one pixel per iteration of a row loop.

At the start of each row the ROW steps compute the whole row; the PIXEL
steps then run at one position per pixel. A spatial convolution reads a
window of its input's cache and applies its own kernel
(`layer.window_kernel`) as a valid convolution; every other layer is
pointwise and is called as it is. Each cache holds the rows its readers
still need (`top + 1`), moved one row down at each row start.

Four rewrites keep a pixel step small (measured in benchmarks/README.md,
"Sampling speed"):

- *split*: a spatial convolution's taps on the rows above are computed for
  the whole row when the row starts; a pixel step multiplies only the
  current row's taps;
- *accumulated*: a convolution over the row above and the current row of a
  pixel tensor (the PixelCNN's masked 3×3) multiplies each new input
  position once by every tap it feeds and accumulates the products for the
  next row and for the current row's next columns;
- *siblings*: pointwise convolutions of one tensor are one matrix product;
- row tensors reach the pixel loop one column at a time, sliced a step ahead
  (XLA:CPU compiles a fusion that reads a dynamic slice to scalar code).
"""

from keras import layers, ops

from keras_pixelcnn.sampling import compute, graph
from keras_pixelcnn.sampling.plan import PIXEL


class SingleScaleLoop:
    """Fills rows of the canvas for a single-scale plan (see the module
    docstring). `fill_rows` is what the sampler compiles."""

    rows_per_step = 1

    def __init__(self, plan, likelihood):
        self.plan, self.likelihood = plan, likelihood
        image = plan.image_id
        # The accumulated convolutions read no cache; every other window
        # reads its input's cache, padded as its window needs.
        self.accumulated_steps = [
            step
            for step in plan.pixel_steps
            if step.op == "conv"
            and step.window.rows == 2
            and step.window.shift == 0
            and step.source != image
            and plan.info[step.source][0] == PIXEL
        ]
        self.pads = {image: [0, 0, 0]}  # top, left, right padding of caches
        for step in plan.row_steps + plan.pixel_steps:
            if step.op == "conv" and step not in self.accumulated_steps:
                pad = self.pads.setdefault(step.source, [0, 0, 0])
                pad[:] = [max(a, b) for a, b in zip(pad, step.window.pads)]
        self.cached = [t for t in self.pads if t != image]
        self.sibling_groups = _sibling_groups(plan.pixel_steps)
        # Pixel convolutions whose window has rows above the current one.
        self.split_steps = [
            step
            for step in plan.pixel_steps
            if step.op == "conv" and step.window.rows > 1 and step not in self.accumulated_steps
        ]
        self.accumulators = [("next row", step.out) for step in self.accumulated_steps]
        self.accumulated_from = {}
        for k, step in enumerate(self.accumulated_steps):
            self.accumulated_from.setdefault(step.source, []).append(k)
        # The row tensors that pixel steps read, one column at a time:
        # sliced a step ahead and carried in the loop state (`plan.row_inputs`),
        # or sliced where they are read (`sliced_inputs`: the rows-above
        # parts, which only enter an add and an activation; carrying them
        # costs two copies a step each, and the PixelCNN sampled 1.03x as
        # fast at batch 64 and 1.07x at 256 without).
        self.sliced_inputs = [_above(step) for step in self.split_steps]

    # ------------------------------------------------------------ buffers
    def buffers(self):
        """What a compiled call carries besides the canvas: the caches, then
        the accumulated convolutions' next-row accumulators."""
        return [*self.cached, *self.accumulators]

    def shape(self, tensor_id, batch):
        """The padded canvas (the whole image), a cache (the `top + 1` rows
        that the next row's windows read: a few hundred kB that stay in the
        CPU's cache) or an accumulator (column-major)."""
        if tensor_id in self.accumulators:
            step = self.accumulated_steps[self.accumulators.index(tensor_id)]
            width = self.plan.width + step.window.left + step.window.right
            return (width, batch, step.layer.filters)
        top, left, right = self.pads[tensor_id]
        rows = self.plan.height + top if tensor_id == self.plan.image_id else top + 1
        return (batch, rows, self.plan.width + left + right, self.plan.channels(tensor_id))

    # ------------------------------------------------------------- kernels
    def _merged_kernels(self):
        """For each group of sibling pointwise convolutions: the kernels side
        by side `(in, sum of outs)` and the biases, read once per call."""
        merged = []
        for group in self.sibling_groups:
            kernels, biases = [], []
            for step in group:
                layer = step.layer
                kernel = compute.kernel(layer)
                kernels.append(ops.reshape(kernel, (-1, kernel.shape[-1])))
                biases.append(compute.bias(layer, ops.zeros((kernel.shape[-1],), kernel.dtype)))
            merged.append((ops.concatenate(kernels, axis=1), ops.concatenate(biases)))
        return merged

    def _split_kernels(self):
        """For each split convolution: the kernel of its rows above the
        current one, and that of the current row's taps up to the last one
        that can be non-zero (None if there is none)."""
        split = {}
        for step in self.split_steps:
            w = step.window
            kernel = compute.kernel(step.layer)
            taps = w.left + w.reach + 1
            split[step.out] = (
                kernel[: w.rows - 1],
                kernel[w.rows - 1 :, :taps] if taps > 0 else None,
            )
        return split

    def _accumulation_kernels(self):
        """For each accumulated convolution: its taps in the order of the
        accumulators' positions, `(in, positions × out)`. An input at column
        c feeds the next row's outputs at columns c - right .. c + left
        (positions 0 .. left + right) through the row above's taps, reversed,
        and the current row's at c .. c + left through the current row's
        taps up to the last one that can be non-zero."""
        kernels = []
        for step in self.accumulated_steps:
            w = step.window
            kernel = compute.kernel(step.layer)
            taps = w.left + w.reach + 1
            channels, filters = kernel.shape[2], kernel.shape[3]
            parts = [ops.flip(kernel[0], axis=0)]
            if taps < w.left + 1:
                parts.append(ops.zeros((w.left + 1 - taps, channels, filters), kernel.dtype))
            if taps > 0:
                parts.append(ops.flip(kernel[1, :taps], axis=0))
            stacked = ops.concatenate(parts, axis=0)  # (positions, in, out)
            kernels.append(ops.reshape(ops.transpose(stacked, (1, 0, 2)), (channels, -1)))
        return kernels

    # ------------------------------------------------------------- values
    def _above_value(self, step, kernel, caches, canvas, i):
        """A split convolution's part from the rows above row i, for the
        whole row (its bias included)."""
        w = step.window
        window = self._read_window(
            step, caches, canvas, i, 0, w.rows - 1, self.plan.width + w.left + w.right
        )
        return compute.bias(step.layer, _valid_conv(ops.cast(window, kernel.dtype), kernel))

    def _current_value(self, step, kernel, above, caches, canvas, i, j):
        """A split convolution's output at (i, j): its current row's taps
        (read from its input's cache) plus the part from the rows above."""
        out = above
        if kernel is not None:
            skip = step.window.rows - 1
            window = self._read_window(step, caches, canvas, i, j, 1, kernel.shape[1], skip=skip)
            out = _valid_conv(ops.cast(window, kernel.dtype), kernel) + above
        return compute.activate(step.layer, out)

    def _siblings_value(self, group, kernel, bias, inputs):
        """The outputs of a group of pointwise convolutions of one input at
        one position: one matrix product instead of one per layer (each
        output is the same dot product over the input channels)."""
        batch = ops.shape(inputs)[0]
        flat = ops.reshape(ops.cast(inputs, kernel.dtype), (batch, -1))
        out = ops.matmul(flat, kernel) + bias
        values, first = [], 0
        for step in group:
            width = step.layer.filters
            value = ops.reshape(out[:, first : first + width], (batch, 1, 1, width))
            values.append(compute.activate(step.layer, value))
            first += width
        return values

    def _window_conv(self, step, window):
        kernel = compute.kernel(step.layer)
        return compute.finish(step.layer, _valid_conv(ops.cast(window, kernel.dtype), kernel))

    def _read_window(self, step, caches, canvas, i, j, rows, ncols, skip=0):
        """Rows `skip .. skip + rows - 1` of the step's window at image row i,
        `ncols` columns from column `j - left`, out of its input's cache."""
        w = step.window
        top, pad_left, _ = self.pads[step.source]
        src = canvas if step.source == self.plan.image_id else caches[step.source]
        # The canvas holds the whole image; a cache holds rows i - top .. i.
        first = top - w.shift - w.rows + 1 + skip
        first = first + (i if step.source == self.plan.image_id else 0)
        return ops.slice(
            src,
            [0, first, j + pad_left - w.left, 0],
            [ops.shape(src)[0], rows, ncols, ops.shape(src)[3]],
        )

    def _window_value(self, step, caches, canvas, i, j, ncols):
        """The layer's output at row i, columns j .. j + ncols - 1, from the
        cache of its input (ncols = width for row steps, 1 for pixel steps)."""
        w = step.window
        window = self._read_window(step, caches, canvas, i, j, w.rows, ncols + w.left + w.right)
        return self._window_conv(step, window)

    def _store(self, caches, tensor_id, j, value):
        """Writes a freshly computed value into its cache (if it has one)
        before any later layer of the same step reads it."""
        if tensor_id in caches:
            top, pad_left, _ = self.pads[tensor_id]
            cache = caches[tensor_id]
            caches[tensor_id] = ops.slice_update(
                cache, [0, top, j + pad_left, 0], ops.cast(value, cache.dtype)
            )

    def _accumulate(self, k, kernel, value, acc, j):
        """Multiplies a new input position (column j) by every tap of the
        k-th accumulated convolution it feeds, adds the products for the next
        row into its accumulator (column-major, `(columns, batch, out)`) and
        those for the current row's next `left` columns into the carried
        partial sums `(left, batch, out)`; returns the output at column j.
        `acc` holds the convolution's "next row", "partial" sums and the
        current row's part from "above"; it is updated in place."""
        step = self.accumulated_steps[k]
        layer, w = step.layer, step.window
        batch = ops.shape(value)[0]
        following = acc["next row"]
        x = ops.reshape(ops.cast(value, layer.compute_dtype), (batch, -1))
        ahead, filters = w.left + w.right + 1, layer.filters
        products = ops.cast(ops.matmul(x, kernel), following.dtype)
        products = ops.reshape(products, (batch, ahead + w.left + 1, filters))  # static positions
        products = ops.transpose(products, (1, 0, 2))
        window = ops.slice(following, [j, 0, 0], [ahead, batch, filters]) + products[:ahead]
        acc["next row"] = ops.slice_update(following, [j, 0, 0], window)
        out = ops.slice(acc["above"], [j, 0, 0], [1, batch, filters])[0] + products[ahead]
        if w.left > 0:
            partial = acc["partial"]
            out = out + partial[0]
            later = products[ahead + 1 :]
            if w.left > 1:
                later = later + ops.concatenate([partial[1:], ops.zeros_like(partial[:1])], 0)
            acc["partial"] = later
        out = ops.reshape(ops.cast(out, layer.compute_dtype), (batch, 1, 1, filters))
        return compute.activate(layer, out)

    # ---------------------------------------------------------------- loop
    def fill_rows(self, canvas, buffers, noise, initial, labels, start, row_start, row_stop):
        """Rows `row_start .. row_stop - 1` of the canvas; `buffers` are the
        carried caches and accumulators, in the order of `buffers()`."""
        plan = self.plan
        batch = ops.shape(canvas)[0]
        width = plan.width
        consts = compute.constants(plan, labels)
        merged = self._merged_kernels()
        split = self._split_kernels()
        accumulation = self._accumulation_kernels()
        group_of = {
            step.out: (k, group) for k, group in enumerate(self.sibling_groups) for step in group
        }

        def row_body(i, state):
            canvas = state["canvas"]
            caches = {t: _next_row(c) for t, c in state["caches"].items()}
            # Row i's outputs of the accumulated convolutions, from the row
            # above (and their bias); the next row's accumulators start empty.
            accumulators = []
            for step, following in zip(self.accumulated_steps, state["next rows"]):
                w = step.window
                above = compute.bias(step.layer, following[w.right : w.right + width])
                accumulators.append(
                    {
                        "next row": ops.zeros_like(following),
                        "partial": ops.zeros_like(following[: max(w.left, 1)]),
                        "above": above,
                    }
                )
            row_values = dict(consts)
            for step in plan.row_steps:
                if step.op == "point":
                    value = graph.call(step.node, row_values)
                else:
                    value = self._window_value(step, caches, canvas, i, 0, width)
                row_values[step.out] = value
                self._store(caches, step.out, 0, value)
            for step in self.split_steps:
                row_values[_above(step)] = self._above_value(
                    step, split[step.out][0], caches, canvas, i
                )

            def column(tensor_id, j):
                value = row_values[tensor_id]
                return ops.slice(value, [0, 0, j, 0], [batch, 1, 1, ops.shape(value)[3]])

            def pixel_body(j, state):
                canvas, caches = state["canvas"], dict(state["caches"])
                accumulators = [dict(acc) for acc in state["accumulators"]]
                values = dict(consts)
                # The row tensors at column j, sliced at the end of the
                # previous step and carried: an XLA:CPU fusion that reads a
                # dynamic slice is not vectorized (the gated activations
                # after it took 5x as long).
                values.update(zip(plan.row_inputs, state["columns"]))
                values.update((t, column(t, j)) for t in self.sliced_inputs)
                for step in plan.pixel_steps:
                    if step.out in values:  # computed with its siblings
                        value = values[step.out]
                    elif step.out in group_of:
                        k, group = group_of[step.out]
                        outputs = self._siblings_value(group, *merged[k], values[step.inputs[0]])
                        values.update((sibling.out, out) for sibling, out in zip(group, outputs))
                        value = values[step.out]
                    elif step.out in split:
                        value = self._current_value(
                            step, split[step.out][1], values[_above(step)], caches, canvas, i, j
                        )
                    elif step.op == "point" and isinstance(step.layer, layers.Conv2D):
                        value = self._window_conv(step, values[step.inputs[0]])
                    elif step.op == "point":
                        value = graph.call(step.node, values)
                    else:
                        value = self._window_value(step, caches, canvas, i, j, 1)
                    values[step.out] = value
                    self._store(caches, step.out, j, value)
                    for k in self.accumulated_from.get(step.out, ()):
                        values[self.accumulated_steps[k].out] = self._accumulate(
                            k, accumulation[k], value, accumulators[k], j
                        )
                canvas = compute.write_pixel(
                    plan, self.likelihood, canvas, values[plan.output_id],
                    noise, initial, start, i, j, self.pads[plan.image_id],
                )  # fmt: skip
                after = ops.minimum(j + 1, width - 1)
                return {
                    "canvas": canvas,
                    "caches": caches,
                    "accumulators": accumulators,
                    "columns": [column(t, after) for t in plan.row_inputs],
                }

            state = {
                "canvas": canvas,
                "caches": caches,
                "accumulators": accumulators,
                "columns": [column(t, 0) for t in plan.row_inputs],
            }
            state = ops.fori_loop(0, width, pixel_body, state)
            return {
                "canvas": state["canvas"],
                "caches": state["caches"],
                "next rows": [acc["next row"] for acc in state["accumulators"]],
            }

        ncaches = len(self.cached)
        state = {
            "canvas": canvas,
            "caches": dict(zip(self.cached, buffers[:ncaches])),
            "next rows": list(buffers[ncaches:]),
        }
        state = ops.fori_loop(row_start, row_stop, row_body, state)
        caches = tuple(state["caches"][t] for t in self.cached)
        return state["canvas"], caches + tuple(state["next rows"])


def _next_row(cache):
    """Moves a cache one row down the image: drops its oldest row and
    appends a row of zeros (the padding the new row's values overwrite)."""
    return ops.concatenate([cache[:, 1:], ops.zeros_like(cache[:, :1])], axis=1)


def _valid_conv(window, kernel):
    """A valid convolution. For one output position it is the same sum as
    one matrix product, which is much faster than a tiny convolution. For a
    row of outputs from a one-row window (the rows-above part of a masked
    3×3) or from one input channel (the 7×7 mask A), the shifted columns side
    by side times the kernel (im2col): XLA:CPU's convolution of such windows
    took 1.2x as long over a whole PixelCNN sample at batch 256
    (benchmarks/README.md, "Sampling speed"); the Gated model's 2-row,
    32-channel windows stay convolutions (no faster as a product)."""
    rows, cols, channels, filters = kernel.shape
    batch = ops.shape(window)[0]
    if window.shape[1] == rows and window.shape[2] == cols:
        flat = ops.reshape(window, (batch, -1))
        out = ops.matmul(flat, ops.reshape(kernel, (-1, filters)))
        return ops.reshape(out, (batch, 1, 1, filters))
    if window.shape[1] == rows and (rows == 1 or channels == 1):
        width = window.shape[2] - cols + 1
        columns = [window[:, r, dx : dx + width, :] for r in range(rows) for dx in range(cols)]
        columns = ops.concatenate(columns, axis=-1) if len(columns) > 1 else columns[0]
        out = ops.matmul(
            ops.reshape(columns, (-1, rows * cols * channels)), ops.reshape(kernel, (-1, filters))
        )
        return ops.reshape(out, (batch, 1, width, filters))
    return ops.conv(window, kernel, strides=1, padding="valid")


def _above(step):
    """The key of a split convolution's part from the rows above."""
    return ("above", step.out)


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
