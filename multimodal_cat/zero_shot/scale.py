"""One scale for every text encoder's cosines, so the engine's settings hold for any encoder.

The engine's weights, temperature and confidence model were fitted on MiniLM, whose cosines
between unrelated category names spread widely (standard deviation 0.124 over the names of
Google's two top levels). Other encoders crowd their cosines into a narrow band
(multilingual E5: 0.84 +- 0.024), so the same scores give flat probabilities, the lexical
terms outweigh the embedding, and confidences collapse (about 0.002 on German titles into
Shopify). :func:`cosine_scale` measures an encoder's spread on the same fixed names and
returns the factor that puts its cosines on MiniLM's scale; the engine multiplies the
embedding term of every score by it (a shift would change nothing: every category gets it).
MiniLM itself gets 1 (within :data:`SNAP` of 1 counts as 1), so its answers are unchanged.

Example:
    >>> import numpy as np
    >>> class Wide:  # random directions in 8 dimensions: cosines spread about 0.35
    ...     key = "wide"
    ...     def encode(self, texts):
    ...         return np.random.default_rng(0).normal(size=(len(texts), 8))
    >>> 0.3 < cosine_scale(Wide()) < 0.4  # spread wider than MiniLM's: scaled down
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# cosine_spread(MiniLM's fp32 vectors of reference_names()); multilingual-e5-small: 0.0243.
REFERENCE_SPREAD = 0.1241
SNAP = 0.02  # a scale this close to 1 is 1: the reference encoder within rounding
_SCALES: dict[str, float] = {}  # encoder key -> scale, measured once per process


def reference_names() -> list[str]:
    """The names of Google's two top levels (213 category names), sorted."""
    from multimodal_cat.taxonomy import Taxonomy

    google = Taxonomy.load("google")
    return sorted({google[i].name for i in google.ids() if google[i].full_path.count(" > ") <= 1})


def cosine_spread(vectors: np.ndarray) -> float:
    """Standard deviation of the cosines between every pair of rows of ``vectors``."""
    unit = np.asarray(vectors, dtype=np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    rows, cols = np.triu_indices(len(unit), 1)
    return float(((unit @ unit.T)[rows, cols]).std())


def cosine_scale(encoder: Any, embed: Callable[[list[str]], Any] | None = None) -> float:
    """The factor that puts ``encoder``'s cosines on MiniLM's scale (1 for MiniLM and for no
    encoder); ``embed`` encodes the reference names (default ``encoder.encode``; the engine
    passes its embedding-cache reader, so a process after the first reads them from disk)."""
    if encoder is None:
        return 1.0
    key = str(getattr(encoder, "key", id(encoder)))
    if key not in _SCALES:
        spread = cosine_spread(np.asarray((embed or encoder.encode)(reference_names())))
        scale = REFERENCE_SPREAD / spread if spread > 1e-6 else 1.0
        _SCALES[key] = 1.0 if abs(scale - 1.0) <= SNAP else scale
    return _SCALES[key]
