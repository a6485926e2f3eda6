"""Crop-tolerant photo matching: is one photo a re-encoded, resized or centre-cropped copy of
another?

Encoder cosines are a poor witness here: on fashion photos (white backgrounds) DINOv2-small
puts half of all products within cosine 0.977 of another product, while a copy cropped by
10-20%, halved and saved at JPEG quality 30 lands at 0.94 from its original (median). Pixels
tell copies apart: each photo is kept as a small colour thumbnail (:data:`SIZE` pixels a side,
12 KB); two photos match as well as the best Pearson correlation between one thumbnail and a
centre crop of the other (crops from :data:`SMALLEST` of the side up to the whole, either way
round), both resampled to :data:`COMPARE` pixels and high-passed (the picture less its
Gaussian blur, so the white background and the silhouette, which every product shot shares,
do not dominate). On fashion photos a copy scores 0.92-0.98 against its original (median
0.98), while the 10 nearest other products (by title and DINOv2, the same photo left out)
stay under 0.88 (99th percentile 0.84). Over the whole catalog, though, different products of
one brand shot alike reach 0.92-0.95: the duplicates audit uses this match only to pick the
candidate pairs that ``catalog.copies`` then verifies.

Which pairs to match? Encoder neighbours miss copies (on the fashion benchmark's dev half, a
copy and its original are among each other's 10 nearest DINOv2 vectors for 44 of 100 copies;
titles, when one title names many products, miss some too), so :func:`nearest_photos` adds
each photo's nearest photo in pixels: a small grey picture (:data:`PIXELS` a side) of each of
its centre crops at :data:`QUERY_SCALES` is searched among the other photos' whole pictures
(the original's centre crop finds the cropped copy: all 100 dev copies paired, about 2.5 pairs
per photo).

Example:
    >>> from PIL import Image, ImageFilter
    >>> photo = Image.radial_gradient("L").convert("RGB")
    >>> copy = photo.crop((20, 20, 236, 236)).resize((108, 108))
    >>> thumbs, present = thumbnails([photo, copy, Image.new("RGB", (50, 50), "red")])
    >>> scores = photo_matches(thumbs, present, [(0, 1), (0, 2)])
    >>> bool(scores[(0, 1)] > 0.9), round(scores[(0, 2)], 3)  # a plain red square: no match
    (True, 0.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from multimodal_cat.catalog.backends import ANN_THRESHOLD, ExactBackend, USearchBackend

SIZE = 64  # thumbnail side kept per photo
COMPARE = 48  # side both crops are resampled to before correlating
BLUR = 2  # radius of the Gaussian blur taken away (the high-pass)
SMALLEST = 0.76  # smallest centre crop tried (a copy cropped by up to 24%)
SCALES = np.round(np.arange(SMALLEST, 1.0001, 0.02), 2)
PIXELS = 16  # side of the grey picture photos are searched by (nearest_photos)
QUERY_SCALES = (SMALLEST, round((SMALLEST + 1.0) / 2, 2), 1.0)  # centre crops searched with
NEAREST = 1  # photos found per centre crop (nearest_photos)


def thumbnail(image: Image.Image) -> np.ndarray:
    """A ``SIZE x SIZE`` RGB thumbnail (uint8) of a decoded photo."""
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), np.uint8)


def thumbnails(images: Sequence[Image.Image | None]) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnails of photos (zeros where missing) and which photos were present."""
    out = np.zeros((len(images), SIZE, SIZE, 3), np.uint8)
    present = np.zeros(len(images), bool)
    for row, image in enumerate(images):
        if image is not None:
            out[row], present[row] = thumbnail(image), True
    return out, present


def _standardised(pixels: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(len(pixels), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.where(norms > 0, norms, 1.0)


def centre_crops(thumb: np.ndarray, scales: Sequence[float] = SCALES) -> np.ndarray:
    """Centre crops of a thumbnail at ``scales`` (default :data:`SCALES`), resampled,
    high-passed and standardised: rows of ``COMPARE * COMPARE * 3`` (with the default
    scales, the last row is the whole thumbnail)."""
    image = Image.fromarray(thumb, "RGB")
    crops = []
    for scale in scales:
        side = int(round(SIZE * scale))
        start = (SIZE - side) // 2
        box = (start, start, start + side, start + side)
        crop = image.crop(box).resize((COMPARE, COMPARE), Image.BILINEAR)
        blurred = np.asarray(crop.filter(ImageFilter.GaussianBlur(BLUR)), np.float32)
        crops.append(np.asarray(crop, np.float32) - blurred)
    return _standardised(np.stack(crops))


def photo_matches(
    thumbs: np.ndarray, present: np.ndarray, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], float]:
    """Crop-tolerant correlation of each pair's photos (0.0 where either has none).

    Memory: each photo's whole high-passed thumbnail is kept (float16, 14 KB); its crops
    (13 rows, 360 KB) exist only while its own pairs are scored, so a feed of N photos holds
    about N x 26 KB with the thumbnails, never N x 360 KB.
    """
    pairs = list(pairs)
    partners: dict[int, list[int]] = {}
    for i, j in pairs:
        if present[i] and present[j]:
            partners.setdefault(i, []).append(j)
            partners.setdefault(j, []).append(i)
    wholes = {row: centre_crops(thumbs[row], (1.0,))[0].astype(np.float16) for row in partners}
    best: dict[tuple[int, int], float] = {pair: 0.0 for pair in pairs}
    for row, others in partners.items():
        crops = centre_crops(thumbs[row])
        whole = np.stack([wholes[other] for other in others]).astype(np.float32)
        scores = (crops @ whole.T).max(axis=0)  # this photo cropped vs the others whole
        for other, score in zip(others, scores, strict=True):
            pair = (min(row, other), max(row, other))
            best[pair] = max(best[pair], float(score))
    return best


def pixel_vectors(thumbs: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Each thumbnail's centre crop at ``scale`` as a ``PIXELS x PIXELS`` grey picture, centred
    and scaled to unit length (rows of ``PIXELS**2`` float32; zeros for a plain picture)."""
    side = int(round(SIZE * scale))
    start = (SIZE - side) // 2
    box = (start, start, start + side, start + side)
    out = np.zeros((len(thumbs), PIXELS * PIXELS), np.float32)
    for row, thumb in enumerate(thumbs):
        grey = Image.fromarray(thumb, "RGB").crop(box).convert("L")
        out[row] = np.asarray(grey.resize((PIXELS, PIXELS), Image.BILINEAR), np.float32).ravel()
    return _standardised(out)


def nearest_photos(
    thumbs: np.ndarray, present: np.ndarray, k: int = NEAREST, chunk: int = 4096
) -> set[tuple[int, int]]:
    """Pairs (i < j) of each photo with the ``k`` other photos whose whole picture is nearest
    (in pixels, :func:`pixel_vectors`) to each of its centre crops at :data:`QUERY_SCALES`:
    a cropped or resized copy is found however far apart the encoders put the two.

    Memory: ``PIXELS**2`` floats per photo (exact search below the ANN threshold, usearch's
    float16 graph above), queries ``chunk`` rows at a time.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> thumbs = rng.integers(0, 255, (4, SIZE, SIZE, 3), dtype=np.uint8)
        >>> copy = np.asarray(Image.fromarray(thumbs[0]).crop((6, 6, 58, 58)).resize((SIZE, SIZE)))
        >>> (0, 4) in nearest_photos(np.concatenate([thumbs, copy[None]]), np.ones(5, bool))
        True
    """
    rows = np.flatnonzero(present)
    if len(rows) < 2:
        return set()
    backend = ExactBackend() if len(rows) < ANN_THRESHOLD else USearchBackend(PIXELS * PIXELS)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        backend.add(part, pixel_vectors(thumbs[part]))
    pairs = set()
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        for scale in QUERY_SCALES:
            found, _ = backend.search(pixel_vectors(thumbs[part], scale), k + 1)
            for row, hits in zip(part, found, strict=True):
                others = [int(j) for j in hits if j >= 0 and j != row][:k]
                pairs.update((min(row, j), max(row, j)) for j in others)
    return pairs
