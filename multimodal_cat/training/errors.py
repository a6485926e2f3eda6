"""The error a training run raises for a mistake in its inputs (feed, columns, taxonomy, flags).

``multimodal-cat train`` turns it into a plain message and exit code 2; anything else that goes
wrong while training is a bug or a failed job, and keeps its traceback.

Example:
    >>> raise TrainingInputError("no categories in column 'category'")
    Traceback (most recent call last):
    ...
    multimodal_cat.training.errors.TrainingInputError: no categories in column 'category'
"""

from __future__ import annotations

from multimodal_cat.errors import MultimodalCatError

__all__ = ["TrainingDivergedError", "TrainingInputError"]


class TrainingInputError(ValueError):
    """A training input is wrong: the message says what was expected and what was found."""


class TrainingDivergedError(MultimodalCatError, RuntimeError):
    """Training diverged (a loss is not a finite number): nothing is saved, the run failed."""
