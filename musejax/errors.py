"""Errors shared across the package."""


class UserError(ValueError):
    """An error the user can fix (a bad option, config, file or run directory; its message names it and says
    what to do): the `musejax` command prints it as one line and exits with code 2, without a traceback."""


class CommandError(UserError):
    """A user error found by a command itself (an option that does not fit, a missing file)."""
