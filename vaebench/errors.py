"""The one exception type the CLI prints without a traceback."""


class VaebenchError(Exception):
    """A problem the person at the terminal can fix: bad input, missing data, missing weights.

    The message says what was given, where (file, key path), what is allowed and what to do.
    Anything else that escapes is a bug and keeps its traceback.
    """


class NotApplicable(VaebenchError):
    """A metric that does not apply to this run (e.g. a disentanglement score on MNIST)."""
