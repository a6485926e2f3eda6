"""Where a checkpoint is, checked in plain words before torch or the hub are imported.

The command line calls :func:`check_checkpoint_name` while checking its arguments, so a wrong
``--model`` is answered at once; :meth:`ModelPredictor.from_pretrained` calls it too.

Example:
    >>> check_checkpoint_name(".")  # an existing folder passes
"""

from __future__ import annotations

import re
from pathlib import Path

from multimodal_cat.errors import MissingFileError, NotAFolderError

# A hub repo id: ``name`` or ``namespace/name`` (letters, digits, ``-``, ``_``, ``.``).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def check_checkpoint_name(name_or_path: str) -> None:
    """Fail at once, in plain words, for a checkpoint that can only be missing.

    An existing folder passes; so does a hub id, unless the hub is offline and the id is not in
    the local cache. Anything else (``./ckpt``, ``/models/ckpt``, ``a/b/c``: not a hub id) is a
    local folder that does not exist. This spares the hub's retries and their traceback.

    Raises:
        MissingFileError: The checkpoint cannot be found (a ``FileNotFoundError`` too).
        NotAFolderError: ``name_or_path`` is a file (a ``NotADirectoryError`` too).

    Example:
        >>> check_checkpoint_name("./ckpt_missing")
        Traceback (most recent call last):
        ...
        multimodal_cat.errors.MissingFileError: model folder './ckpt_missing' not found: expected a folder written by save_pretrained (config.json and weights), or a hub id such as 'user/model'
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return
    expected = "expected a folder written by save_pretrained (config.json and weights)"
    if path.exists():
        raise NotAFolderError(f"model {name!r} is a file: {expected}")
    if not _HUB_ID.fullmatch(name):
        raise MissingFileError(
            f"model folder {name!r} not found: {expected}, or a hub id such as 'user/model'"
        )
    from huggingface_hub import is_offline_mode, try_to_load_from_cache

    if is_offline_mode() and not isinstance(try_to_load_from_cache(name, "config.json"), str):
        raise MissingFileError(
            f"model {name!r} is neither a local folder nor in the hub cache, and the hub is "
            f"offline (HF_HUB_OFFLINE=1): {expected}"
        )
