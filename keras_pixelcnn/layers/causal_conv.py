"""The common bases of the causal convolutions: what the cached sampler reads.

Every convolution of this package whose output at (i, j) may only depend on
earlier pixels derives from `CausalConv2D` (or, upsampling,
`CausalConv2DTranspose`) and declares its *causal window*:

- `causal_geometry`: `(rows, row_shift, left, right)`. With stride s, output
  (i, j) reads input rows `s*i - row_shift - rows + 1 .. s*i - row_shift` and
  columns `s*j - left .. s*j + right` (before dilation).
- `window_kernel(kernel)`: the kernel over exactly that window (cropped and,
  for masked convolutions, masked), so that a valid convolution of the window
  gives the layer's output at one position.
- `bottom_row_reach`: the right-most column offset the window reads on its
  bottom row (0: the current column; -1: strictly left of it).

The cached sampler's planner (`keras_pixelcnn.sampling.plan`) dispatches on
these types, not on attribute names.
"""

from keras.layers import Conv2D, Conv2DTranspose


class CausalConv2D(Conv2D):
    """A `Conv2D` whose output at (i, j) reads a causal window of its input.

    Subclasses implement `causal_geometry` and may override `window_kernel`
    (default: the kernel as it is) and `bottom_row_reach` (default: `right`).
    It is not registered: only its concrete subclasses are saved in models.
    """

    @property
    def causal_geometry(self):
        raise NotImplementedError(f"{type(self).__name__} must define causal_geometry")

    def window_kernel(self, kernel):
        return kernel

    @property
    def bottom_row_reach(self):
        return self.causal_geometry[3]

    @property
    def is_pointwise(self):
        """True when the window is the current position only (a 1×1 conv)."""
        return (
            tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.causal_geometry == (1, 0, 0, 0)
        )


class CausalConv2DTranspose(Conv2DTranspose):
    """A transposed convolution that upsamples by its stride s and whose
    output at (i, j) reads input positions of rows `<= i // s` only, and on
    row `i // s` columns `<= j // s` when `right` is True (the down-right
    variant; the down variant reads that whole row).

    It is not registered: only its concrete subclasses are saved in models.
    """

    right = False
