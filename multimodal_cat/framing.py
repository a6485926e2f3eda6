"""Fit a photo of any shape to a vision model's square input without cutting the product off.

Vision processors (DINOv2, ViT, CLIP) resize the shortest side and crop the centre square, so a
tall 3:4 product shot loses its top and bottom (a shoe's toe, a dress's hem) and a wide banner
loses its sides. ``fit="pad"`` (the default everywhere) first letterboxes the photo onto a square
canvas filled with the photo's own border colour (the white of a studio shot stays white), so
the whole product reaches the model; a square photo is left as it is, pixel for pixel. A photo
that is not square often already carries letterbox bars (a phone's black bands, a banner's
bands): :func:`trim_bars` takes flat dark lines off its edges first, so the padding comes from
the photo itself rather than from the bars. (Flat light margins are left alone: they are the
studio background a product shot is padded with anyway.)
``fit="crop"`` hands the photo to the processor unchanged (its own resize and centre crop).
Training and inference use the same function, so a checkpoint sees photos framed the same way.

Example:
    >>> from PIL import Image
    >>> fit_image(Image.new("RGB", (300, 200), "white"), "pad").size
    (300, 300)
    >>> square = Image.new("RGB", (64, 64))
    >>> fit_image(square, "pad") is square
    True
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from multimodal_cat.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_FIT",
    "FIT_MODES",
    "FitMode",
    "border_colour",
    "check_fit",
    "fit_image",
    "framing_tag",
    "trim_bars",
]

FitMode = Literal["pad", "crop"]
FIT_MODES: tuple[str, ...] = ("pad", "crop")
DEFAULT_FIT: FitMode = "pad"
_FLAT_STD = 6.0  # a line whose pixels vary less than this (0-255, per channel) is flat
_SAME_BAR = 16.0  # and whose mean colour is this close to the edge line's belongs to its bar
_KEEP = 0.5  # trimming never keeps less than this share of a side
_DARK = 48.0  # only bars darker than this (every channel, 0-255) are trimmed


def check_fit(fit: str) -> FitMode:
    """``fit`` if it is a known mode, else a ``ValueError`` that lists the modes."""
    if fit not in FIT_MODES:
        raise InvalidArgumentError(f"image fit must be one of {', '.join(FIT_MODES)}; got {fit!r}.")
    return fit  # type: ignore[return-value]


def framing_tag(fit: str) -> str:
    """The name of ``fit``'s framing in embedding-cache keys (it changes when the framing does).

    Example:
        >>> framing_tag("pad"), framing_tag("crop")
        ('pad-trim', 'crop')
    """
    return "pad-trim" if check_fit(fit) == "pad" else fit


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """The median colour of the photo's outermost pixels (its background, for studio shots).

    Example:
        >>> border_colour(Image.new("RGB", (5, 3), (250, 250, 250)))
        (250, 250, 250)
    """
    pixels = np.asarray(image.convert("RGB"))
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def _bar_depth(lines: np.ndarray, limit: int) -> int:
    """How many leading lines of ``lines`` (n, length, 3) are one flat dark bar."""
    first = lines[0].mean(axis=0)
    if first.max() > _DARK:
        return 0
    depth = 0
    while depth < limit:
        line = lines[depth]
        if line.std(axis=0).max() > _FLAT_STD or np.abs(line.mean(axis=0) - first).max() > _SAME_BAR:
            break
        depth += 1
    return depth


def trim_bars(image: Image.Image) -> Image.Image:
    """The photo without the flat dark bars along its edges (at most a quarter of each side).

    Example:
        >>> photo = Image.new("RGB", (40, 60), (0, 0, 0))
        >>> photo.paste((200, 30, 30), (0, 10, 40, 50))  # black bands above and below
        >>> trim_bars(photo).size
        (40, 40)
    """
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    rows, cols = int(height * (1 - _KEEP) / 2), int(width * (1 - _KEEP) / 2)
    top = _bar_depth(pixels, rows)
    bottom = _bar_depth(pixels[::-1], rows)
    left = _bar_depth(pixels.transpose(1, 0, 2), cols)
    right = _bar_depth(pixels.transpose(1, 0, 2)[::-1], cols)
    if not top + bottom + left + right:
        return image
    return image.crop((left, top, width - right, height - bottom))


def fit_image(image: Image.Image, fit: str = DEFAULT_FIT) -> Image.Image:
    """The photo framed for a square model input (see the module docstring).

    Args:
        image: A decoded RGB image (from :func:`multimodal_cat.imaging.open_image`).
        fit: ``"pad"`` letterboxes a non-square photo; ``"crop"`` returns it unchanged.

    Example:
        >>> tall = Image.new("RGB", (30, 40), "white")
        >>> fit_image(tall).size, fit_image(tall, "crop").size
        ((40, 40), (30, 40))

    A non-square photo loses its letterbox bars first; a square one is never changed.
    """
    check_fit(fit)
    if fit == "crop" or image.width == image.height:
        return image
    image = trim_bars(image)
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), border_colour(image))
    canvas.paste(image.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas
