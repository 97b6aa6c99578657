"""Value checks the command line shares: numbers a flag needs, before any work starts."""

from ai8x_nb.errors import Ai8xNbError

__all__ = ["CliArgumentError", "positive"]


class CliArgumentError(Ai8xNbError, ValueError):
    """A command-line flag with a value the command cannot use."""


def positive(flag, value, low=1):
    """Raise `CliArgumentError` unless `value` is None or an int >= `low`.

    Args:
        flag: the flag's name as typed ("--limit").
        value: the parsed value.
        low: the smallest accepted value.

    Example:

    >>> positive("--limit", 0)
    Traceback (most recent call last):
    ...
    ai8x_nb.cli._checks.CliArgumentError: --limit 0 is invalid: expected an int >= 1 (omit the flag for all samples).
    """
    if value is not None and value < low:
        hint = " (omit the flag for all samples)" if "limit" in flag else ""
        raise CliArgumentError(f"{flag} {value} is invalid: expected an int >= {low}{hint}.")
    return value
