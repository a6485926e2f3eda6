"""One switch for the library's progress bars and info lines.

Every progress bar of the library is made by :func:`progress_bar` and every info line goes
through :func:`info`, so the command line's ``--no-progress`` (:func:`set_progress`) and
``--quiet`` (:func:`set_quiet`) reach them all, wherever they are drawn. The settings are
plain module state, set by the caller (nothing happens at import, no environment variable is
read or written); turning bars off also turns off the Hugging Face hub's download bars and,
through them, transformers' weight-loading bars.

Example:
    >>> set_progress(False)
    >>> bar = progress_bar(total=3, desc="encoding 3 titles", unit="title")
    >>> bar.disable
    True
    >>> bar.close(); set_progress(True)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_settings = {"bars": True, "info": True}


def set_progress(enabled: bool) -> None:
    """Show (``True``) or hide (``False``) every progress bar, the libraries' own included."""
    _settings["bars"] = bool(enabled)
    _library_bars(enabled)


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) progress bars and info lines; warnings and errors still print."""
    _settings["info"] = not quiet
    set_progress(not quiet)


@contextmanager
def switched(*, bars: bool = True, info: bool = True) -> Iterator[None]:
    """Turn bars and/or info lines off inside the block, then put the settings back.

    What is already off stays off; the hub's bars are touched only when bars are turned off.

    Example:
        >>> with switched(info=False):
        ...     info("not shown")
    """
    before = dict(_settings)
    hub_before = _hub_bars_enabled()
    try:
        if not info:
            _settings["info"] = False
        if not bars and before["bars"]:
            set_progress(False)
        yield
    finally:
        _settings.update(before)
        if not bars and before["bars"] and hub_before:
            _library_bars(True)


def bars_enabled() -> bool:
    """True unless bars were turned off."""
    return _settings["bars"]


def progress_bar(iterable: Any = None, *, desc: str, unit: str, disable: bool = False, **kwargs: Any) -> Any:
    """A tqdm bar on stderr named in words (``desc``, e.g. ``"encoding 9,583 photos"``).

    Args:
        iterable: What to iterate over, as for ``tqdm``; ``None`` for a bar updated by hand.
        desc: What the bar does, in words, with the count ("categorizing 60,000 rows").
        unit: The item counted, singular ("photo", "row").
        disable: Hide this bar (it is hidden anyway when bars are turned off).
        **kwargs: Passed to ``tqdm`` (``total``, ``initial``, ``mininterval``...).
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit=unit, disable=disable or not _settings["bars"], **kwargs)


def info(message: str) -> None:
    """Print an info line on stderr, unless quiet."""
    if _settings["info"]:
        print(message, file=sys.stderr)


def plural(count: int, noun: str) -> str:
    """``"1 photo"``, ``"9,583 photos"``.

    Example:
        >>> plural(9583, "photo"), plural(1, "row"), plural(2, "category")
        ('9,583 photos', '1 row', '2 categories')
    """
    if count == 1:
        return f"1 {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{count:,} {noun[:-1]}ies"
    return f"{count:,} {noun}{'es' if noun.endswith(('s', 'x', 'ch', 'sh')) else 's'}"


def _hub_bars_enabled() -> bool:
    try:
        from huggingface_hub.utils import are_progress_bars_disabled
    except ImportError:
        return False
    return not are_progress_bars_disabled()


def follow_switch() -> None:
    """Hide the bars of the libraries imported since bars were turned off (``datasets``'
    ``map`` bars); call it after importing them. Nothing happens while bars are on."""
    if not _settings["bars"]:
        _library_bars(False)


def _library_bars(enabled: bool) -> None:
    """The hub's bars; transformers' bars follow them when it is imported later, so they are
    set here without importing transformers (which stays unloaded until a model is needed).
    ``datasets`` keeps its own switch, set when it is already imported."""
    try:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:  # the hub client is not installed: no bars of its own to hide
        return
    (enable_progress_bars if enabled else disable_progress_bars)()
    if "transformers" in sys.modules:  # already imported: its flag was read at import
        from transformers.utils import logging as transformers_logging

        if enabled:
            transformers_logging.enable_progress_bar()
        else:
            transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        from datasets.utils import disable_progress_bars as off
        from datasets.utils import enable_progress_bars as on

        (on if enabled else off)()
