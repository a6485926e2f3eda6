"""Lexical evidence for zero-shot search: category names in the title, path words it shares.

Two signals, both computed from words (no encoder):

* **phrase match** (:class:`PhraseIndex`): 1 for the categories whose name (or one of its
  ``&`` / ``,`` / ``/`` parts, singular or plural, spaces and hyphens ignored) occurs in the
  text and no longer category name does.
* **path overlap** (:class:`PathOverlap`): the share of the text's IDF mass, over the words
  that occur anywhere in the tree, that a category's whole path covers. "Women's Top" then
  prefers a path through "Women's Clothing" over one through "Men's Clothing", which a
  sentence encoder barely tells apart.

Example:
    >>> index = PhraseIndex(["Casual Shoes", "Shoes", "Tshirts"])
    >>> index.match("Puma Casual Shoe black").tolist()
    [1.0, 0.0, 0.0]
    >>> overlap = PathOverlap(["Clothing > Men's Clothing > Tops", "Clothing > Women's Clothing > Tops"])
    >>> [round(float(x), 2) for x in overlap.scores(["Women's Top"])[0]]
    [0.42, 1.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

MAX_PHRASE_WORDS = 6


# The word helpers live in align.embeddings; imported when called, because the align package
# imports the zero-shot predictor, which imports this package (no import cycle that way).
def words(text: str) -> list[str]:
    """Lower-cased singular words (see :func:`multimodal_cat.align.embeddings.words`)."""
    from multimodal_cat.align.embeddings import words as _words

    return _words(text)


def word_set(text: str) -> frozenset[str]:
    """Content words as a set (see :func:`multimodal_cat.align.embeddings.word_set`)."""
    from multimodal_cat.align.embeddings import word_set as _word_set

    return _word_set(text)


def part_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (hyphens and apostrophes dropped), not singularized."""
    text = text.lower().replace("-", "").replace("'", "").replace("\u2019", "")
    return re.findall(r"[a-z0-9]+", text)


def name_phrases(name: str) -> set[str]:
    """Lexical forms of a category name: whole name and its ``&`` / ``,`` / ``/`` parts."""
    parts = [name, *re.split(r"\s*(?:&|,|/|\band\b)\s*", name)]
    out = set()
    for part in parts:
        tokens = words(part)
        if tokens and len(tokens) <= MAX_PHRASE_WORDS:
            # "Beanies" -> "beany" (singular rule) and "beanie" (plain s dropped)
            plain = [w[:-1] if w.endswith("ies") else w for w in part_words(part)]
            for form in (tokens, plain):
                out.add(" ".join(form))
                out.add("".join(form))
    return out


class PhraseIndex:
    """Which category names occur in a text (longest match wins).

    Args:
        names: one name per column.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.size = len(names)
        self.phrases: dict[str, list[int]] = {}
        for column, name in enumerate(names):
            for phrase in name_phrases(name):
                self.phrases.setdefault(phrase, []).append(column)

    def match(self, text: str) -> np.ndarray:
        """1.0 for the columns whose longest name form occurs in ``text``, else 0.0."""
        tokens = words(text)
        best: dict[int, int] = {}
        for size in range(1, MAX_PHRASE_WORDS + 1):
            for start in range(len(tokens) - size + 1):
                gram = tokens[start : start + size]
                for key in (" ".join(gram), "".join(gram)):
                    for column in self.phrases.get(key, ()):
                        best[column] = max(best.get(column, 0), len("".join(gram)))
        out = np.zeros(self.size, dtype=np.float32)
        if best:
            longest = max(best.values())
            out[[c for c, n in best.items() if n == longest]] = 1.0
        return out

    def matches(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`match` of each text, stacked (len(texts), columns)."""
        out = np.zeros((len(texts), self.size), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.match(text)
        return out


class PathOverlap:
    """IDF-weighted share of a text's tree words that each category path contains.

    Args:
        paths: one full path per column; IDF is computed over these paths.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.size = len(paths)
        postings: dict[str, list[int]] = {}
        for column, path in enumerate(paths):
            for word in word_set(path):
                postings.setdefault(word, []).append(column)
        self.postings = {w: np.asarray(c, dtype=np.int64) for w, c in postings.items()}
        self.idf = {
            w: math.log((self.size + 1) / (len(c) + 1)) + 1.0 for w, c in self.postings.items()
        }

    def score(self, text: str) -> np.ndarray:
        """Scores in [0, 1] for one text (zeros when it shares no word with the tree)."""
        out = np.zeros(self.size, dtype=np.float32)
        known = [w for w in word_set(text) if w in self.postings]
        total = sum(self.idf[w] for w in known)
        for word in known:
            out[self.postings[word]] += self.idf[word] / total
        return out

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`score` of each text, stacked (len(texts), columns)."""
        out = np.zeros((len(texts), self.size), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.score(text)
        return out
