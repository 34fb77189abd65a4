"""The one error type for bad user input.

Everything the user can fix (a missing file, a malformed catalog, an unknown scene id)
raises :class:`InputError` with a one-line message naming the file and the problem; see
:mod:`benchmark.cli.output` for how the CLI shows it.
"""


class InputError(ValueError):
    """Bad input that the user can fix; the message is shown without a traceback."""
