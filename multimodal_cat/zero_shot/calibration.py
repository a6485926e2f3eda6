"""The zero-shot default temperature; the functions live in :mod:`multimodal_cat.calibration`.

Scores become probabilities with a softmax at temperature ``T``; ``T`` was fitted by
minimising the negative log-likelihood on held-out labelled rows.

Example:
    >>> probs = softmax(np.array([[2.0, 1.0, 0.0]]), temperature=1.0)
    >>> [round(float(p), 3) for p in probs[0]]
    [0.665, 0.245, 0.09]
    >>> expected_calibration_error(np.array([0.9, 0.9]), np.array([True, False]))
    0.4
"""

from __future__ import annotations

import numpy as np  # noqa: F401 (the example)

from multimodal_cat.calibration import (  # noqa: F401 (the zero-shot engine's names)
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    softmax,
)

# Fitted (NLL) on the Flipkart non-test rows (benchmarks/zero_shot_general.py). On fashion,
# where zero-shot is right far more often, the same temperature is under-confident, and on
# MWPD's GS1 tree over-confident: an answer's confidence is therefore not this softmax but
# the chance it is right, from multimodal_cat.zero_shot.confidence (the probabilities and
# alternatives keep this temperature).
DEFAULT_TEMPERATURE = 0.086
