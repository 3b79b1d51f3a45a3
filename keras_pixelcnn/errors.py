"""The exceptions for problems a user can fix, and the exit codes they map to.

One rule for the command line's exit codes:

- 2 (`UsageError`): the command line itself is wrong: a bad option value or
  combination, an option the model does not take (a label for an
  unconditional model), or an output that exists without `--overwrite`.
- 1 (`PixelCNNError`): the command line is fine but a file or the world is
  not: a missing, corrupt or mismatched model or data file, an unwritable
  directory, no network, a diverged training run.
- 130: interrupted (Ctrl-C).
"""


def reason(error, limit=200):
    """The first line of an exception's message (at most `limit` characters),
    or its type's name when it has none: what a one-line error quotes of a
    library's exception."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class PixelCNNError(Exception):
    """A user-facing error; the CLI prints its message as one line and exits 1."""

    exit_code = 1


class UsageError(PixelCNNError):
    """A bad argument or configuration value: the CLI exits with code 2."""

    exit_code = 2
