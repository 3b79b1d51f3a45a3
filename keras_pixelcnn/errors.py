"""The exception for problems a user can fix (bad files, bad arguments)."""


class PixelCNNError(Exception):
    """A user-facing error; the CLI prints its message as one line and exits 1."""
