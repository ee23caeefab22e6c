"""Errors shared across the package."""


class CommandError(Exception):
    """An error the user can fix; the `musejax` command prints it as one line and exits with code 2."""
