"""Fast cached sampling (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models"), derived from the model's own graph.

The reference sampler runs the whole network once per pixel. Here every
tensor of the functional graph is computed only where the next pixel needs
it, from cached values of the tensors below:

- *const* tensors depend on the labels only (the class embedding and its
  projections) and are computed once;
- *row* tensors (the vertical stack) see only rows above the current one, or
  the current row of other row tensors; a whole row of them is computed when
  the sampler reaches that row;
- *pixel* tensors (masked convolutions, the horizontal stack and everything
  fed by them) are computed at one position per step.

A layer with a spatial kernel (`MaskedConv2D`, `VerticalStackConv2D`,
`HorizontalStackConv2D`) reads a window of its input's cache and applies its
own kernel (`layer.window_kernel`) with a valid convolution; every other
layer is pointwise and is called as it is. The weights are the model's own,
read at every call, and no part of the architecture is written twice: a new
model built from supported layers gets a fast sampler for free. Each layer's
output at each position is computed exactly once, so a whole image costs
about one forward pass instead of 784.

Four rewrites keep a pixel step small (measured in the README's "Sampling
speed"): a spatial convolution's taps on the rows above are computed for the
whole row when the row starts, and a pixel step multiplies only the current
row's taps; a convolution over the row above and the current row of a pixel
tensor (the PixelCNN's masked 3×3) instead multiplies each new input
position once by every tap it feeds and accumulates the products for the
next row and for the current row's next columns; sibling pointwise
convolutions of one tensor are one matrix product; and row tensors reach the
pixel loop one column at a time, sliced a step ahead (XLA:CPU compiles a
fusion that reads a dynamic slice to scalar code).

Given the same noise (and labels) the images are identical to the
reference sampler's.

Multi-scale graphs (PixelCNN++, with strided and transposed shifted
convolutions) have their own cached sampler, `cached_multiscale.py`;
`make_sampler(model, "fast")` picks it (`is_multiscale`).
"""

import enum
import time

import numpy as np
from keras import layers, ops

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.layers import CausalConv2D, GatedActivation, OutputDistribution
from keras_pixelcnn.models.contract import check_labels, likelihood
from keras_pixelcnn.runtime import jax_on_cpu
from keras_pixelcnn.sampling.batches import Sampler
from keras_pixelcnn.sampling.compile import compile_model_function


def is_multiscale(model):
    """True for PixelCNN++-style graphs (shifted, strided and transposed
    convolutions), which `MultiScaleCachedSampler` samples."""
    from keras_pixelcnn.layers.shifted_conv import _ShiftedConv2D, _ShiftedConv2DTranspose

    return any(
        isinstance(layer, (_ShiftedConv2D, _ShiftedConv2DTranspose)) for layer in model.layers
    )


class Dependence(enum.IntEnum):
    """What a tensor of the graph depends on, and so when it is computed.
    Ordered: a layer's output depends on the most of its inputs'."""

    CONST = 0  # the labels only: once per batch
    ROW = 1  # rows above (or the current row of ROW tensors): once per row
    PIXEL = 2  # the current row up to the current pixel: once per pixel


CONST, ROW, PIXEL = Dependence.CONST, Dependence.ROW, Dependence.PIXEL

POINTWISE_LAYERS = (
    layers.ReLU,
    layers.Activation,
    layers.LeakyReLU,
    layers.Add,
    layers.Subtract,
    layers.Multiply,
    layers.Average,
    layers.Maximum,
    layers.Minimum,
    layers.Dropout,
    layers.Identity,
    GatedActivation,
    OutputDistribution,
)


def _is_pointwise_conv(layer):
    """A convolution that reads the current position only."""
    if isinstance(layer, CausalConv2D):
        return layer.is_pointwise
    return (
        isinstance(layer, layers.Conv2D)
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and tuple(layer.kernel_size) == (1, 1)
    )


class _Step:
    accumulated = False

    def __init__(self, node, kind, window=None, source=None):
        self.node = node
        self.kind = kind
        self.window = window  # (rows, row_shift, left, right) for spatial layers
        self.source = source  # id of the window's input tensor
        self.out = id(node.outputs[0])


class CachedSampler(Sampler):
    """Samples pixel by pixel with per-layer caches: about one forward pass
    of compute per image instead of `height × width`.

    Works for every model built from this package's layers (PixelCNN, Gated
    PixelCNN, conditional or not). Written in `keras.ops` inside
    `ops.fori_loop`, compiled with `jax.jit` / `tf.function`.

    Args:
        model: a functional PixelCNN-family `keras.Model` with one image
            channel.

    Example:

    >>> sampler = CachedSampler(model)
    >>> images = sampler.sample(draw_noise(64, (28, 28, 1), seed=0))
    """

    # Seconds between two `progress` calls. Each compiled call carries a
    # fixed cost (about 2 ms on TensorFlow, a third of a 28-pixel row of the
    # PixelCNN at batch 32), so without a progress display the whole image
    # is one call, and with one as many rows go into a call as fit in this
    # interval (measured on the previous call; the first call is one row).
    progress_interval = 0.25
    # Rows per iteration of the compiled row loop: a call starts and stops
    # at a multiple of it (the multi-scale sampler unrolls its row phases).
    rows_per_step = 1
    # Accumulators (see `_plan`) of the convolutions whose window is the row
    # above and the current row of a pixel tensor; none in the multi-scale
    # sampler.
    accumulators = ()

    def __init__(self, model):
        self.model = model
        self.likelihood = likelihood(model)
        self._plan()
        self._fill = compile_model_function(model, self._fill_rows, jit_compile=True)

    # ----------------------------------------------------------------- plan
    def _plan(self):
        model = self.model
        if len(model.outputs) != 1:
            raise PixelCNNError("the fast sampler needs a model with one output")
        image = model.inputs[0]
        self.height, self.width, channels = image.shape[1:]
        if channels != 1:
            raise PixelCNNError("the fast sampler supports single-channel images only")
        self.image_id = id(image)
        kinds = {self.image_id: PIXEL}
        self.label_id = None
        if len(model.inputs) == 2:
            self.label_id = id(model.inputs[1])
            kinds[self.label_id] = CONST
        pads = {self.image_id: [0, 0, 0]}  # top, left, right padding of caches
        self.const_steps, self.row_steps, self.pixel_steps = [], [], []
        # A `Rescaling` of the image (256-level models) that is the image's
        # only reader: the canvas then holds the rescaled image, each sampled
        # value is rescaled by the layer itself before it is written.
        self.input_transform = None
        nodes = [
            node
            for depth in sorted(model._nodes_by_depth, reverse=True)
            for node in model._nodes_by_depth[depth]
            if node.operation and not node.is_input
        ]
        readers = [n for n in nodes if self.image_id in [id(t) for t in n.input_tensors]]
        if len(readers) == 1 and isinstance(readers[0].operation, layers.Rescaling):
            self.input_transform = readers[0].operation
            self.image_id = id(readers[0].outputs[0])
            kinds[self.image_id] = PIXEL
            pads = {self.image_id: [0, 0, 0]}
            nodes.remove(readers[0])
        for node in nodes:
            if True:
                layer = node.operation
                in_ids = [id(t) for t in node.input_tensors]
                in_kinds = [kinds[i] for i in in_ids]
                if len(node.outputs) != 1:
                    raise self._unsupported(layer)
                if all(k == CONST for k in in_kinds):
                    step = _Step(node, CONST)
                    self.const_steps.append(step)
                elif isinstance(layer, CausalConv2D) and not layer.is_pointwise:
                    if tuple(layer.dilation_rate) != (1, 1) or len(in_ids) != 1:
                        raise self._unsupported(layer)
                    rows, shift, left, right = layer.causal_geometry
                    source, source_kind = in_ids[0], in_kinds[0]
                    reach = layer.bottom_row_reach
                    if shift >= 1:
                        kind = ROW  # strictly above: a whole row at row start
                    elif reach > 0:
                        kind = ROW  # sees the current row's right part
                        if source_kind != ROW:
                            raise PixelCNNError(
                                f"layer {layer.name} sees pixels to the right in the "
                                "current row of a pixel tensor: the model is not causal"
                            )
                    else:
                        kind = PIXEL
                        if source == self.image_id and reach >= 0:
                            raise PixelCNNError(
                                f"layer {layer.name} sees the current pixel of the image: "
                                "the model is not causal"
                            )
                    step = _Step(node, kind, (rows, shift, left, right), source)
                    step.accumulated = (
                        kind == PIXEL
                        and rows == 2
                        and shift == 0
                        and source != self.image_id
                        and source_kind == PIXEL
                    )
                    if not step.accumulated:
                        pad = pads.setdefault(source, [0, 0, 0])
                        pad[0] = max(pad[0], rows - 1 + shift)
                        pad[1] = max(pad[1], left)
                        pad[2] = max(pad[2], right)
                    (self.row_steps if kind == ROW else self.pixel_steps).append(step)
                elif isinstance(layer, POINTWISE_LAYERS) or _is_pointwise_conv(layer):
                    if self.image_id in in_ids:
                        raise PixelCNNError(
                            f"layer {layer.name} reads the current pixel of the image: "
                            "the model is not causal"
                        )
                    kind = max(in_kinds)
                    step = _Step(node, kind)
                    (self.row_steps if kind == ROW else self.pixel_steps).append(step)
                else:
                    raise self._unsupported(layer)
                kinds[step.out] = step.kind
        self.output_id = id(model.outputs[0])
        if kinds[self.output_id] == CONST:
            raise PixelCNNError("the model's output does not depend on the image")
        self.kinds = kinds
        self.pads = pads
        self.sibling_groups = _sibling_groups(self.pixel_steps)
        # Spatial pixel convolutions whose window has rows above the current
        # one: those rows are complete when the row starts, so their part of
        # the convolution is computed for the whole row at once (one large
        # product), and each pixel step multiplies the current row's taps
        # only (for a masked 3×3, 2 taps of 6, and no copy of the rows above).
        self.split_steps = [
            step
            for step in self.pixel_steps
            if step.window is not None and step.window[0] > 1 and not step.accumulated
        ]
        # A convolution whose window is the row above and the current row of
        # a pixel tensor (the masked 3x3 of the PixelCNN) reads no cache:
        # each new position of its input is multiplied, once, by every tap
        # it feeds, and the products are added into an accumulator of the
        # next row's outputs and partial sums carried to the current row's
        # next columns (`_accumulate`); a new row starts from the next row's.
        # One product a step replaces the window read, its product and the
        # rows-above convolution of the row step.
        self.accumulated_steps = [step for step in self.pixel_steps if step.accumulated]
        self.accumulators = [("next row", step.out) for step in self.accumulated_steps]
        self.accumulated_from = {}
        for k, step in enumerate(self.accumulated_steps):
            self.accumulated_from.setdefault(step.source, []).append(k)
        # The row tensors that pixel steps read, one column at a time:
        # sliced a step ahead and carried in the loop state (`row_inputs`),
        # or sliced where they are read (`sliced_inputs`: the rows-above
        # parts, which only enter an add and an activation; carrying them
        # costs two copies a step each, and the PixelCNN sampled 1.03x as
        # fast at batch 64 and 1.07x at 256 without).
        self.row_inputs = list(
            dict.fromkeys(
                id(t)
                for step in self.pixel_steps
                if step.window is None
                for t in step.node.input_tensors
                if kinds[id(t)] == ROW
            )
        )
        self.sliced_inputs = [_above(step) for step in self.split_steps]
        self.cached = sorted((i for i in pads if i != self.image_id), key=list(pads).index)

    @staticmethod
    def _unsupported(layer):
        return PixelCNNError(
            f"the fast sampler does not support layer {layer.name!r} "
            f"({type(layer).__name__}); use the reference sampler"
        )

    # ------------------------------------------------------------- compute
    def _merged_kernels(self):
        """For each group of sibling pointwise convolutions: the kernels side
        by side `(in, sum of outs)` and the biases, read once per call."""
        merged = []
        for group in self.sibling_groups:
            kernels, biases = [], []
            for step in group:
                layer = step.node.operation
                kernel = ops.cast(layer.kernel, layer.compute_dtype)
                if isinstance(layer, CausalConv2D):
                    kernel = layer.window_kernel(kernel)
                kernels.append(ops.reshape(kernel, (-1, kernel.shape[-1])))
                biases.append(
                    ops.cast(layer.bias, layer.compute_dtype)
                    if layer.use_bias
                    else ops.zeros((kernel.shape[-1],), layer.compute_dtype)
                )
            merged.append((ops.concatenate(kernels, axis=1), ops.concatenate(biases)))
        return merged

    def _split_kernels(self):
        """For each split convolution: the kernel of its rows above the
        current one, and that of the current row's taps up to the last one
        that can be non-zero (None if there is none)."""
        split = {}
        for step in self.split_steps:
            layer = step.node.operation
            rows, _, left, _ = step.window
            kernel = layer.window_kernel(ops.cast(layer.kernel, layer.compute_dtype))
            taps = left + layer.bottom_row_reach + 1
            split[step.out] = (kernel[: rows - 1], kernel[rows - 1 :, :taps] if taps > 0 else None)
        return split

    def _above_value(self, step, kernel, caches, canvas, i):
        """A split convolution's part from the rows above row i, for the
        whole row (its bias included)."""
        layer = step.node.operation
        rows, _, left, right = step.window
        window = self._read_window(step, caches, canvas, i, 0, rows - 1, self.width + left + right)
        out = _valid_conv(ops.cast(window, layer.compute_dtype), kernel)
        if layer.use_bias:
            out = out + ops.cast(layer.bias, layer.compute_dtype)
        return out

    def _current_value(self, step, kernel, above, caches, canvas, i, j):
        """A split convolution's output at (i, j): its current row's taps
        (read from its input's cache) plus the part from the rows above."""
        layer = step.node.operation
        out = above
        if kernel is not None:
            rows = step.window[0]
            window = self._read_window(
                step, caches, canvas, i, j, 1, kernel.shape[1], skip=rows - 1
            )
            out = _valid_conv(ops.cast(window, layer.compute_dtype), kernel) + above
        return layer.activation(out) if layer.activation is not None else out

    def _siblings_value(self, group, kernel, bias, inputs):
        """The outputs of a group of pointwise convolutions of one input at
        one position: one matrix product instead of one per layer (each
        output is the same dot product over the input channels)."""
        batch = ops.shape(inputs)[0]
        dtype = group[0].node.operation.compute_dtype
        flat = ops.reshape(ops.cast(inputs, dtype), (batch, -1))
        out = ops.matmul(flat, kernel) + bias
        values, first = [], 0
        for step in group:
            layer = step.node.operation
            width = layer.filters
            value = ops.reshape(out[:, first : first + width], (batch, 1, 1, width))
            values.append(layer.activation(value) if layer.activation is not None else value)
            first += width
        return values

    def _call(self, step, values):
        args, kwargs = step.node.arguments.fill_in(values)
        return step.node.operation(*args, **kwargs)

    def _window_conv(self, step, window):
        layer = step.node.operation
        # As the layer computes under its dtype policy (mixed precision: the
        # float32 weights are cast to the bfloat16 compute dtype).
        dtype = layer.compute_dtype
        kernel = ops.cast(layer.kernel, dtype)
        if isinstance(layer, CausalConv2D):
            kernel = layer.window_kernel(kernel)
        out = _valid_conv(ops.cast(window, dtype), kernel)
        if layer.use_bias:
            out = out + ops.cast(layer.bias, dtype)
        return layer.activation(out) if layer.activation is not None else out

    def _read_window(self, step, caches, canvas, i, j, rows, ncols, skip=0):
        """Rows `skip .. skip + rows - 1` of the step's window at image row i,
        `ncols` columns from column `j - left`, out of its input's cache."""
        window_rows, shift, left, _ = step.window
        top, pad_left, _ = self.pads[step.source]
        src = self._buffer(step.source, caches, canvas)
        # The canvas holds the whole image; a cache holds rows i - top .. i.
        first = top - shift - window_rows + 1 + skip
        first = first + (i if step.source == self.image_id else 0)
        return ops.slice(
            src,
            [0, first, j + pad_left - left, 0],
            [ops.shape(src)[0], rows, ncols, ops.shape(src)[3]],
        )

    def _window_value(self, step, caches, canvas, i, j, ncols):
        """The layer's output at row i, columns j .. j + ncols - 1, from the
        cache of its input (ncols = width for row steps, 1 for pixel steps)."""
        rows, _, left, right = step.window
        window = self._read_window(step, caches, canvas, i, j, rows, ncols + left + right)
        return self._window_conv(step, window)

    def _store(self, caches, tensor_id, i, j, value):
        """Writes a freshly computed value into its cache (if it has one)
        before any later layer of the same step reads it."""
        if tensor_id in self.pads:
            k = self.cached.index(tensor_id)
            top, pad_left, _ = self.pads[tensor_id]
            caches[k] = ops.slice_update(
                caches[k], [0, top, j + pad_left, 0], ops.cast(value, caches[k].dtype)
            )

    @staticmethod
    def _next_row(cache):
        """Moves a cache one row down the image: drops its oldest row and
        appends a row of zeros (the padding the new row's values overwrite)."""
        return ops.concatenate([cache[:, 1:], ops.zeros_like(cache[:, :1])], axis=1)

    def _buffer(self, tensor_id, caches, canvas):
        return canvas if tensor_id == self.image_id else caches[self.cached.index(tensor_id)]

    def _accumulation_kernels(self):
        """For each accumulated convolution: its taps in the order of the
        accumulators' positions, `(in, positions × out)`. An input at column
        c feeds the next row's outputs at columns c - right .. c + left
        (positions 0 .. left + right) through the row above's taps, reversed,
        and the current row's at c .. c + left through the current row's
        taps up to the last one that can be non-zero."""
        kernels = []
        for step in self.accumulated_steps:
            layer = step.node.operation
            _, _, left, right = step.window
            kernel = layer.window_kernel(ops.cast(layer.kernel, layer.compute_dtype))
            taps = left + layer.bottom_row_reach + 1
            channels, filters = kernel.shape[2], kernel.shape[3]
            parts = [ops.flip(kernel[0], axis=0)]
            if taps < left + 1:
                parts.append(ops.zeros((left + 1 - taps, channels, filters), kernel.dtype))
            if taps > 0:
                parts.append(ops.flip(kernel[1, :taps], axis=0))
            stacked = ops.concatenate(parts, axis=0)  # (positions, in, out)
            kernels.append(ops.reshape(ops.transpose(stacked, (1, 0, 2)), (channels, -1)))
        return kernels

    def _accumulate(self, k, kernel, value, accumulators, j):
        """Multiplies a new input position (column j) by every tap of the
        k-th accumulated convolution it feeds, adds the products for the next
        row into its accumulator (column-major, `(columns, batch, out)`) and
        those for the current row's next `left` columns into the carried
        partial sums `(left, batch, out)`; returns the output at column j.
        `accumulators` holds (next row, partial sums, current row's part
        from above) per convolution."""
        step = self.accumulated_steps[k]
        layer = step.node.operation
        _, _, left, right = step.window
        batch = ops.shape(value)[0]
        following, partial, above = accumulators[3 * k : 3 * k + 3]
        x = ops.reshape(ops.cast(value, layer.compute_dtype), (batch, -1))
        ahead, filters = left + right + 1, layer.filters
        products = ops.cast(ops.matmul(x, kernel), following.dtype)
        products = ops.reshape(products, (batch, ahead + left + 1, filters))  # static positions
        products = ops.transpose(products, (1, 0, 2))
        window = ops.slice(following, [j, 0, 0], [ahead, batch, filters]) + products[:ahead]
        accumulators[3 * k] = ops.slice_update(following, [j, 0, 0], window)
        out = ops.slice(above, [j, 0, 0], [1, batch, filters])[0] + products[ahead]
        if left > 0:
            out = out + partial[0]
            later = products[ahead + 1 :]
            if left > 1:
                later = later + ops.concatenate([partial[1:], ops.zeros_like(partial[:1])], 0)
            accumulators[3 * k + 1] = later
        out = ops.reshape(ops.cast(out, layer.compute_dtype), (batch, 1, 1, filters))
        return layer.activation(out) if layer.activation is not None else out

    def _fill_rows(self, canvas, caches, noise, initial, labels, start, row_start, row_stop):
        caches = list(caches)
        batch = ops.shape(canvas)[0]
        width = self.width
        consts = {}
        if self.label_id is not None:
            consts[self.label_id] = labels
        for step in self.const_steps:
            consts[step.out] = self._call(step, consts)
        ncaches, nacc = len(self.cached), len(self.accumulators)
        merged = self._merged_kernels()
        split = self._split_kernels()
        accumulation = self._accumulation_kernels()
        group_of = {
            step.out: (k, group) for k, group in enumerate(self.sibling_groups) for step in group
        }

        def row_body(i, state):
            canvas = state[0]
            caches = [self._next_row(c) for c in state[1 : 1 + ncaches]]
            # Row i's outputs of the accumulated convolutions, from the row
            # above (and their bias); the next row's accumulators start empty.
            accumulators = []
            for step, acc in zip(self.accumulated_steps, state[1 + ncaches :]):
                layer = step.node.operation
                _, _, left, right = step.window
                above = acc[right : right + width]
                if layer.use_bias:
                    above = above + ops.cast(layer.bias, above.dtype)
                partial = ops.zeros_like(acc[: max(left, 1)])
                accumulators += [ops.zeros_like(acc), partial, above]
            row_values = dict(consts)
            for step in self.row_steps:
                if step.window is None:
                    value = self._call(step, row_values)
                else:
                    value = self._window_value(step, caches, canvas, i, 0, width)
                row_values[step.out] = value
                self._store(caches, step.out, i, 0, value)
            for step in self.split_steps:
                row_values[_above(step)] = self._above_value(
                    step, split[step.out][0], caches, canvas, i
                )

            def column(tensor_id, j):
                value = row_values[tensor_id]
                return ops.slice(value, [0, 0, j, 0], [batch, 1, 1, ops.shape(value)[3]])

            def pixel_body(j, state):
                canvas, caches = state[0], list(state[1 : 1 + ncaches])
                accumulators = list(state[1 + ncaches : 1 + ncaches + 3 * nacc])
                state = state[: 1 + ncaches] + state[1 + ncaches + 3 * nacc :]
                values = dict(consts)
                # The row tensors at column j, sliced at the end of the
                # previous step and carried: an XLA:CPU fusion that reads a
                # dynamic slice is not vectorized (the gated activations
                # after it took 5x as long).
                values.update(zip(self.row_inputs, state[1 + ncaches :]))
                values.update((t, column(t, j)) for t in self.sliced_inputs)
                for step in self.pixel_steps:
                    if step.out in values:  # computed with its siblings
                        value = values[step.out]
                    elif step.out in group_of:
                        k, group = group_of[step.out]
                        inputs = values[id(step.node.input_tensors[0])]
                        outputs = self._siblings_value(group, *merged[k], inputs)
                        values.update((sibling.out, out) for sibling, out in zip(group, outputs))
                        value = values[step.out]
                    elif step.out in split:
                        value = self._current_value(
                            step, split[step.out][1], values[_above(step)], caches, canvas, i, j
                        )
                    elif step.window is None and isinstance(step.node.operation, layers.Conv2D):
                        value = self._window_conv(step, values[id(step.node.input_tensors[0])])
                    elif step.window is None:
                        value = self._call(step, values)
                    else:
                        value = self._window_value(step, caches, canvas, i, j, 1)
                    values[step.out] = value
                    self._store(caches, step.out, i, j, value)
                    for k in self.accumulated_from.get(step.out, ()):
                        values[self.accumulated_steps[k].out] = self._accumulate(
                            k, accumulation[k], value, accumulators, j
                        )
                params = ops.cast(values[self.output_id], "float32")
                u = ops.slice(noise, [0, i, j, 0], [batch, 1, 1, ops.shape(noise)[3]])
                sampled = ops.cast(self.likelihood.sample(params, u)[..., None], canvas.dtype)
                known = ops.slice(initial, [0, i, j, 0], [batch, 1, 1, 1])
                value = ops.where(i * width + j < start, known, sampled)
                if self.input_transform is not None:
                    value = ops.cast(self.input_transform(value), canvas.dtype)
                top, pad_left, _ = self.pads[self.image_id]
                canvas = ops.slice_update(canvas, [0, i + top, j + pad_left, 0], value)
                after = ops.minimum(j + 1, width - 1)
                return (
                    canvas,
                    *caches,
                    *accumulators,
                    *(column(t, after) for t in self.row_inputs),
                )

            state = (
                canvas,
                *caches,
                *accumulators,
                *(column(t, 0) for t in self.row_inputs),
            )
            state = ops.fori_loop(0, width, pixel_body, state)
            return (*state[: 1 + ncaches], *state[1 + ncaches : 1 + ncaches + 3 * nacc : 3])

        state = ops.fori_loop(row_start, row_stop, row_body, (canvas, *caches))
        return state[0], tuple(state[1:])

    # ------------------------------------------------------------------ API
    def _shape(self, tensor_id, batch):
        """The padded canvas (the whole image) or a cache: only the `top + 1`
        rows that the next row's windows read (a few hundred kB that stay in
        the CPU's cache, where a whole padded activation map is megabytes
        copied in and out of every compiled call)."""
        if tensor_id in self.accumulators:
            step = self.accumulated_steps[self.accumulators.index(tensor_id)]
            _, _, left, right = step.window
            return (self.width + left + right, batch, step.node.operation.filters)
        top, left, right = self.pads[tensor_id]
        rows = self.height + top if tensor_id == self.image_id else top + 1
        return (batch, rows, self.width + left + right, self._channels(tensor_id))

    def _buffers(self):
        """What a compiled call carries besides the canvas: the caches, then
        the accumulated convolutions' next-row accumulators."""
        return [*self.cached, *self.accumulators]

    def _empty(self, tensor_id, batch):
        return np.zeros(self._shape(tensor_id, batch), "float32")

    def _channels(self, tensor_id):
        if tensor_id == self.image_id:
            return 1
        return next(
            s.node.outputs[0].shape[-1]
            for s in self.row_steps + self.pixel_steps
            if s.out == tensor_id
        )

    def sample_tensor(self, noise, labels=None):
        """Traceable sampling of a whole batch (any batch size): `noise` and
        `labels` are backend tensors; returns the 0/1 images as a tensor.
        Used for SavedModel export (`tf.function` with a `None` batch)."""
        batch = ops.shape(noise)[0]

        def zeros(tensor_id):
            return ops.zeros(self._shape(tensor_id, batch), dtype="float32")

        canvas, _ = self._fill_rows(
            zeros(self.image_id),
            tuple(zeros(t) for t in self._buffers()),
            noise,
            ops.zeros((batch, self.height, self.width, 1), "float32"),
            labels,
            0,
            0,
            self.height,
        )
        return self._to_data(self._image(canvas))

    def _to_data(self, images):
        """The canvas's values in data units (undoes the input `Rescaling`)."""
        if self.input_transform is None:
            return images
        scale, offset = self.input_transform.scale, self.input_transform.offset
        return ops.round((images - offset) / scale)

    def _sample_batch(self, noise, labels, initial, start, progress):
        """One batch of `Sampler.sample`; `progress` is called as rows are done
        (every `progress_interval` seconds or so, after a whole row).

        On TensorFlow and JAX the batch is split over the CPU cores, one
        thread each: the per-pixel steps are too small for one compiled call
        to use more than one core (measured: 1.4x at batch 64, 1.7x at 256 on
        2 cores). Images are independent, so the result is the same.
        """
        noise = np.asarray(noise, dtype="float32")
        batch, h, w, c = noise.shape
        expected = (self.height, self.width, self.likelihood.noise_channels)
        if (h, w, c) != expected:
            raise PixelCNNError(
                f"noise shape {noise.shape[1:]} does not match the shape {expected} "
                f"the model's images and likelihood need"
            )
        labels = check_labels(self.model, labels, batch)
        initial = (
            np.zeros((batch, h, w, 1), "float32")
            if initial is None
            else np.asarray(initial, "float32")
        )
        chunks = np.array_split(np.arange(batch), sampling_threads(batch))
        if len(chunks) == 1:
            return self._sample_chunk(noise, labels, initial, start, progress)
        import concurrent.futures

        def work(k):
            idx = chunks[k]
            return self._sample_chunk(
                noise[idx],
                None if labels is None else labels[idx],
                initial[idx],
                start,
                progress if k == 0 else None,  # the chunks advance row by row together
            )

        with concurrent.futures.ThreadPoolExecutor(len(chunks)) as pool:
            return np.concatenate(list(pool.map(work, range(len(chunks)))))

    def _sample_chunk(self, noise, labels, initial, start, progress):
        batch, h, w, _ = noise.shape
        known = initial
        if self.input_transform is not None:
            known = ops.convert_to_numpy(self.input_transform(initial)).astype("float32")
        canvas = self._canvas(known, batch)
        caches = tuple(ops.convert_to_tensor(self._empty(t, batch)) for t in self._buffers())
        canvas = ops.convert_to_tensor(canvas)
        args = (
            ops.convert_to_tensor(noise),
            ops.convert_to_tensor(initial),
            None if labels is None else ops.convert_to_tensor(labels),
            ops.convert_to_tensor(start, "int32"),
        )
        step = self.rows_per_step
        row, rows_per_call = 0, h if progress is None else step
        while row < h:
            stop = min(h, row + rows_per_call)
            begin = time.perf_counter()
            canvas, caches = self._fill(
                canvas,
                caches,
                *args,
                ops.convert_to_tensor(row, "int32"),
                ops.convert_to_tensor(stop, "int32"),
            )
            if progress is not None:
                ops.convert_to_numpy(canvas)  # waits for it (JAX dispatches asynchronously)
                seconds_per_row = (time.perf_counter() - begin) / (stop - row)
                rows = int(self.progress_interval / seconds_per_row)
                rows_per_call = max(step, rows // step * step)
                progress(stop * w, h * w)
            row = stop
        return ops.convert_to_numpy(self._to_data(self._image(canvas)))

    def _canvas(self, known, batch):
        """The padded canvas (NumPy) holding the known pixels."""
        canvas = self._empty(self.image_id, batch)
        top, left, _ = self.pads[self.image_id]
        canvas[:, top : top + self.height, left : left + self.width] = known
        return canvas

    def _image(self, canvas):
        """The image part of a canvas (its padding cut off)."""
        top, left, _ = self.pads[self.image_id]
        return canvas[:, top : top + self.height, left : left + self.width, :1]


def _valid_conv(window, kernel):
    """A valid convolution. For one output position it is the same sum as
    one matrix product, which is much faster than a tiny convolution. For a
    row of outputs from a one-row window (the rows-above part of a masked
    3×3) or from one input channel (the 7×7 mask A), the shifted columns side
    by side times the kernel (im2col): XLA:CPU's convolution of such windows
    took 1.2x as long over a whole PixelCNN sample at batch 256 (README,
    "Sampling speed"); the Gated model's 2-row, 32-channel windows stay
    convolutions (no faster as a product)."""
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
    424 against 382 img/s in one process; README, "Sampling speed")."""
    groups = {}
    for step in pixel_steps:
        layer = step.node.operation
        if (
            step.window is None
            and isinstance(layer, layers.Conv2D)
            and _is_pointwise_conv(layer)
            and layer.groups == 1
        ):
            key = (id(step.node.input_tensors[0]), layer.compute_dtype)
            groups.setdefault(key, []).append(step)
    return [group for group in groups.values() if len(group) > 1]


MIN_IMAGES_PER_THREAD = 8


def sampling_threads(batch):
    """How many threads `CachedSampler.sample` splits a batch over: one per
    usable CPU core, at least `MIN_IMAGES_PER_THREAD` images each, on
    TensorFlow and JAX (whose compiled calls release the GIL); 1 on torch
    and on machines with a GPU."""
    import os

    import keras

    if keras.backend.backend() not in ("tensorflow", "jax"):
        return 1
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("GPU"):
            return 1
    elif not jax_on_cpu():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, batch // MIN_IMAGES_PER_THREAD))
