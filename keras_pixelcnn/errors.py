"""The exception for problems a user can fix (bad files, bad arguments)."""


class PixelCNNError(Exception):
    """A user-facing error; the CLI prints its message as one line and exits 1."""


class UsageError(PixelCNNError):
    """A bad argument or configuration value: the CLI exits with code 2."""

    exit_code = 2
