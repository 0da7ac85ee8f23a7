"""Errors that reach the user as one line and exit code 2."""


class LusebenchError(Exception):
    """Bad input from the user: the CLI prints ``str(error)`` on one line and exits with 2."""
