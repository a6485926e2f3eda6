"""Fit a photo of any shape to a vision model's square input without cutting the product off.

Vision processors (DINOv2, ViT, CLIP) resize the shortest side and crop the centre square, so a
tall 3:4 product shot loses its top and bottom (a shoe's toe, a dress's hem) and a wide banner
loses its sides. ``fit="pad"`` (the default everywhere) first letterboxes the photo onto a square
canvas filled with the photo's own border colour (the white of a studio shot stays white), so
the whole product reaches the model; a square photo is left as it is, pixel for pixel.
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

__all__ = ["DEFAULT_FIT", "FIT_MODES", "FitMode", "border_colour", "check_fit", "fit_image"]

FitMode = Literal["pad", "crop"]
FIT_MODES: tuple[str, ...] = ("pad", "crop")
DEFAULT_FIT: FitMode = "pad"


def check_fit(fit: str) -> FitMode:
    """``fit`` if it is a known mode, else a ``ValueError`` that lists the modes."""
    if fit not in FIT_MODES:
        raise ValueError(f"image fit must be one of {', '.join(FIT_MODES)}; got {fit!r}.")
    return fit  # type: ignore[return-value]


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """The median colour of the photo's outermost pixels (its background, for studio shots).

    Example:
        >>> border_colour(Image.new("RGB", (5, 3), (250, 250, 250)))
        (250, 250, 250)
    """
    pixels = np.asarray(image.convert("RGB"))
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def fit_image(image: Image.Image, fit: str = DEFAULT_FIT) -> Image.Image:
    """The photo framed for a square model input (see the module docstring).

    Args:
        image: A decoded RGB image (from :func:`multimodal_cat.imaging.open_image`).
        fit: ``"pad"`` letterboxes a non-square photo; ``"crop"`` returns it unchanged.

    Example:
        >>> tall = Image.new("RGB", (30, 40), "white")
        >>> fit_image(tall).size, fit_image(tall, "crop").size
        ((40, 40), (30, 40))
    """
    check_fit(fit)
    width, height = image.size
    if fit == "crop" or width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), border_colour(image))
    canvas.paste(image.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas
