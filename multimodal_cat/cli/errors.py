"""Errors the command line reports in plain words."""

from __future__ import annotations

from multimodal_cat.errors import MultimodalCatError


class UserError(MultimodalCatError):
    """A mistake in the user's input: printed in plain words, exit code 2, no traceback."""
