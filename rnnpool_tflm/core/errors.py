"""The exception users see as a one-line message (CLI exit status 2)."""


class RNNPoolError(Exception):
    """Bad input or a failed check, with a message that names the problem."""
