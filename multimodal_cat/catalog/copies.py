"""Is one photo a copy of the other (re-encoded, resized, cropped)? Local features with
geometric verification, then a pixel and colour comparison after alignment.

Encoder cosines and small thumbnails (``catalog.thumbs``) answer "do the photos look alike?",
and on product photos shot on white, different products of one brand look alike (DINOv2 cosine
>= 0.95, thumbnail correlation 0.92-0.95). A copy is something else: one picture maps onto the
other through a similarity transform (scale and shift; a crop, a resize), and once aligned the
two differ only by the re-encoding. :func:`compare_photos`:

1. brings both photos to :data:`WORK` pixels on the longer side and finds SIFT keypoints;
2. matches them (Lowe's ratio test) and fits a similarity transform with RANSAC: ``inliers``;
3. warps the photo that shows more onto the one that shows less (the crop), at that one's own
   size (at most :data:`COMPARE` pixels), and measures the ``correlation`` of their high-pass greys (detail, not the white
   background and silhouette every product shot shares) over the overlap;
4. measures the ``colour_difference``: the share of the overlap whose (blurred) colour differs
   by more than :data:`COLOUR_DELTA` (CIELAB units), so that a colour variant shot in the
   same pose, or a recoloured copy, is not taken for a copy.

Only two photos are held at a time; a pair takes about 20 ms on one core.

Example:
    >>> from PIL import Image, ImageDraw
    >>> photo = Image.new("RGB", (224, 224), "white")
    >>> draw = ImageDraw.Draw(photo)
    >>> for k in range(12):
    ...     draw.ellipse((10 + 15 * k, 20 + 13 * k, 30 + 15 * k, 35 + 14 * k), fill=(20 * k, 90, 200 - 15 * k))
    >>> copy = photo.crop((20, 20, 204, 204)).resize((112, 112))
    >>> compare_photos(photo, copy).is_copy()
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import ModuleType

import numpy as np
from PIL import Image

from multimodal_cat.errors import MissingPackageError

WORK = 224  # longer side both photos are brought to before keypoints are found
COMPARE = 256  # most pixels on the longer side of the frame the photos are compared in
RATIO = 0.8  # Lowe's ratio test
REPROJECTION = 3.0  # RANSAC inlier distance, pixels at WORK size
HIGH_PASS = 2.0  # Gaussian sigma taken away before correlating (pixels of the compared frame)
COLOUR_BLUR = 2.0  # sigma of the blur before colours are compared (JPEG noise away)
COLOUR_DELTA = 25.0  # CIELAB distance above which a pixel's colour differs
FLAT = 0.5  # grey levels of high-pass detail (RMS) below which a photo is plain
MIN_OVERLAP = 0.5  # share of the smaller photo the other must cover once aligned
# verdict defaults, chosen on the fashion benchmark's dev half (benchmarks/catalog_qc.py,
# duplicates_fashion: dev copies' correlation 0.48-0.93, median 0.88; colour share <= 0.035)
MIN_CORRELATION = 0.7
MAX_COLOUR = 0.03


def _cv2() -> ModuleType:
    try:
        import cv2
    except ModuleNotFoundError:
        raise MissingPackageError(
            "checking whether one photo is a copy of another needs the package "
            "'opencv-python-headless', which is not installed: pip install "
            "'multimodal-cat[catalog]' (or pip install opencv-python-headless)",
            name="cv2",
        ) from None
    return cv2


@dataclass(frozen=True)
class PhotoComparison:
    """How well one photo maps onto another.

    Attributes:
        inliers: keypoint matches that agree with one similarity transform (0: none found).
        scale: how much larger the content appears in the photo that shows less (>= 1).
        correlation: high-pass grey correlation after alignment (1.0: identical detail).
        colour_difference: share of the overlap whose colour differs by over COLOUR_DELTA.
        overlap: share of the compared frame both photos cover.
    """

    inliers: int = 0
    scale: float = 0.0
    correlation: float = 0.0
    colour_difference: float = 1.0
    overlap: float = 0.0

    def is_copy(
        self, min_correlation: float = MIN_CORRELATION, max_colour: float = MAX_COLOUR
    ) -> bool:
        """Whether the photos are one picture (aligned, same detail, same colours)."""
        return (
            self.overlap >= MIN_OVERLAP
            and self.correlation >= min_correlation
            and self.colour_difference <= max_colour
        )

    def evidence(self) -> dict[str, float]:
        """The comparison, rounded, for a finding's evidence."""
        return {key: round(float(value), 4) for key, value in asdict(self).items()}


def _working(image: Image.Image) -> np.ndarray:
    """RGB uint8 with the longer side at :data:`WORK` pixels."""
    rgb = image.convert("RGB")
    factor = WORK / max(rgb.size)
    size = (max(1, round(rgb.size[0] * factor)), max(1, round(rgb.size[1] * factor)))
    resample = Image.LANCZOS if factor < 1 else Image.BICUBIC
    return np.asarray(rgb.resize(size, resample), np.uint8)


def _similarity(cv2: ModuleType, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The similarity transform taking ``a``'s pixels to ``b``'s, and its RANSAC inliers."""
    sift = cv2.SIFT_create()
    found = [sift.detectAndCompute(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), None) for x in (a, b)]
    (keys_a, desc_a), (keys_b, desc_b) = found
    if desc_a is None or desc_b is None or len(keys_a) < 3 or len(keys_b) < 3:
        return None, 0
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_a, desc_b, k=2)
    good = [m[0] for m in matches if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 3:
        return None, 0
    points_a = np.float32([keys_a[m.queryIdx].pt for m in good])
    points_b = np.float32([keys_b[m.trainIdx].pt for m in good])
    matrix, inliers = cv2.estimateAffinePartial2D(
        points_a, points_b, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION
    )
    if matrix is None:
        return None, 0
    return matrix, int(inliers.sum())


def _aligned(cv2: ModuleType, a: np.ndarray, b: np.ndarray, matrix: np.ndarray, side: int):
    """``a`` warped into ``b``'s frame, both at ``side`` pixels on ``b``'s longer side, and
    the mask of pixels ``a`` covers."""
    factor = side / max(b.shape[:2])
    size = (max(1, round(b.shape[1] * factor)), max(1, round(b.shape[0] * factor)))
    to_frame = np.float64(matrix) * factor
    warped = cv2.warpAffine(a.astype(np.float32), to_frame, size, flags=cv2.INTER_AREA,
                            borderValue=(-1.0, -1.0, -1.0))
    target = cv2.resize(b, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    return warped, target, warped[..., 0] >= 0


def _high_pass_correlation(cv2: ModuleType, a: np.ndarray, b: np.ndarray, mask: np.ndarray
                           ) -> float:
    values = []
    for x in (a, b):
        grey = cv2.cvtColor(np.clip(x, 0, 255), cv2.COLOR_RGB2GRAY)
        values.append((grey - cv2.GaussianBlur(grey, (0, 0), HIGH_PASS))[mask].astype(np.float64))
    x, y = (v - v.mean() for v in values)
    flat = [np.sqrt(v @ v / len(v)) < FLAT for v in (x, y)]
    if any(flat):  # no detail to compare: two plain pictures are alike, plain and detailed not
        return 1.0 if all(flat) else 0.0
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


def _colour_difference(cv2: ModuleType, a: np.ndarray, b: np.ndarray, mask: np.ndarray
                       ) -> float:
    lab = []
    for x in (a, b):
        blurred = cv2.GaussianBlur(np.clip(x, 0, 255).astype(np.uint8), (0, 0), COLOUR_BLUR)
        lab.append(cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB).astype(np.float32))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    delta = np.linalg.norm(lab[0] - lab[1], axis=2)[inner if inner.any() else mask]
    return float((delta > COLOUR_DELTA).mean())


def _identity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The transform of a plain resize (``a``'s frame stretched onto ``b``'s)."""
    return np.float64([[b.shape[1] / a.shape[1], 0, 0], [0, b.shape[0] / a.shape[0], 0]])


def _compare(cv2: ModuleType, pixels: list[np.ndarray], sides: list[int], matrix: np.ndarray,
             inliers: int) -> PhotoComparison:
    """The comparison of two working photos under one transform (``pixels[0]`` to
    ``pixels[1]``): the photo that shows more is warped onto the other."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 1.0:  # the first photo is the crop: warp the second, which shows more
        matrix = cv2.invertAffineTransform(matrix)
        pixels, sides, scale = pixels[::-1], sides[::-1], 1.0 / max(scale, 1e-9)
    warped, target, mask = _aligned(cv2, pixels[0], pixels[1], matrix, sides[1])
    overlap = float(mask.mean())
    if overlap < MIN_OVERLAP:
        return PhotoComparison(inliers=inliers, scale=scale, overlap=overlap)
    return PhotoComparison(
        inliers=inliers,
        scale=scale,
        correlation=_high_pass_correlation(cv2, warped, target, mask),
        colour_difference=_colour_difference(cv2, warped, target, mask),
        overlap=overlap,
    )


def compare_photos(a: Image.Image, b: Image.Image) -> PhotoComparison:
    """Whether ``b`` is ``a`` cropped, resized or re-encoded, or the other way round.

    Two alignments are tried, the keypoints' similarity transform (when RANSAC finds one) and a
    plain resize (for photos with too little texture for keypoints); the better one counts.

    Args:
        a: a decoded photo.
        b: another decoded photo.

    Returns:
        A :class:`PhotoComparison`; ``.is_copy()`` gives the verdict.

    Raises:
        MissingPackageError: OpenCV (``opencv-python-headless``) is not installed.
    """
    cv2 = _cv2()
    cv2.setNumThreads(1)
    pixels = [_working(a), _working(b)]
    sides = [min(COMPARE, max(photo.size)) for photo in (a, b)]  # the detail each one holds
    matrix, inliers = _similarity(cv2, *pixels)
    transforms = [_identity(*pixels)] + ([matrix] if matrix is not None else [])
    found = [_compare(cv2, pixels, sides, m, inliers) for m in transforms]
    return max(found, key=lambda comparison: comparison.correlation)
