"""Errors the command line reports in plain words."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: printed in plain words, exit code 2, no traceback."""
