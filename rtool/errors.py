"""Errors a user can cause. The CLI turns these into one line and exit status 2."""


class UsageError(ValueError):
    """Bad input from the user: a path, a name, a shape or a value out of range.

    The message must name the bad value and say what was expected, in one line.
    """


class WeightsUnavailable(UsageError):
    """Pretrained weights are not on disk and cannot be downloaded here."""
