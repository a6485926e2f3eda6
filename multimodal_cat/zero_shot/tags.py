"""Zero-shot tags: attribute values from Shopify's published vocabularies, found in the text.

Shopify's taxonomy ships, for each category, the attributes it uses (``color``,
``target_gender``, ``material``...) and each attribute's values. :class:`ZeroShotTagger`
reads a product's title (and description) for those values and a few plain synonyms
("women's" -> Female, "grey" -> Gray, "stainless" -> Stainless steel), so a zero-shot run
fills the ``tags`` column with no training. In a Shopify tree only the predicted category's
own attributes are tagged; in any other tree all of :data:`ZERO_SHOT_ATTRIBUTES`.

A value's score is a fixed confidence for that kind of match (title, or description only),
divided among the values found for the same attribute. On fashion titles
(``benchmarks/zero_shot_benchmark.py``, non-test rows) title tags were 100% right for gender
and 95% for colour; :data:`TITLE_SCORE` stays below that for less explicit titles.
Description matches have no labelled data to measure them here.

Example:
    >>> tagger = ZeroShotTagger({"color": ["Red", "Blue"], "target_gender": ["Female", "Male"]})
    >>> [(t.attribute, t.value) for t in tagger.tags("Women's Red Leather Jacket")]
    [('color', 'Red'), ('target_gender', 'Female')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multimodal_cat.predictions import TagScore
from multimodal_cat.zero_shot.lexical import MAX_PHRASE_WORDS, part_words

ZERO_SHOT_ATTRIBUTES = ("color", "target_gender", "age_group", "material")
TITLE_SCORE = 0.9  # fashion titles: gender 1.00, colour 0.95 right (not tuned further)
DESCRIPTION_SCORE = 0.6  # a value named in the description only (not measured)

# Plain words for values whose names a title seldom uses (lower-cased, apostrophes dropped).
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "color": {"Gray": ("grey",), "Multicolor": ("multi", "multicolour", "multicoloured")},
    "target_gender": {
        "Female": ("women", "womens", "woman", "ladies", "lady", "girl", "girls", "female"),
        "Male": ("men", "mens", "man", "boy", "boys", "male", "gents"),
        "Unisex": ("unisex",),
    },
    "age_group": {
        "Kids": ("kid", "kids", "children", "childrens", "child", "boys", "girls"),
        "Babies": ("baby", "babies", "infant", "infants"),
        "Toddlers": ("toddler", "toddlers"),
        "Teens": ("teen", "teens", "teenager"),
    },
    "material": {"Stainless steel": ("stainless",), "Wood": ("wooden",)},
}


def _forms(attribute: str, value: str) -> set[str]:
    """Word sequences (space-joined, lower case) that name ``value``."""
    forms = {" ".join(part_words(value))}
    forms.update(SYNONYMS.get(attribute, {}).get(value, ()))
    return {f for f in forms if f}


class ZeroShotTagger:
    """Tags products with attribute values named in their text.

    Args:
        vocabularies: attribute handle -> value names (e.g. ``Taxonomy.attribute_values``);
            only :data:`ZERO_SHOT_ATTRIBUTES` are used unless ``attributes`` says otherwise.
        attributes: the attribute handles to tag.
    """

    def __init__(
        self,
        vocabularies: Mapping[str, Iterable[str]],
        attributes: Iterable[str] = ZERO_SHOT_ATTRIBUTES,
    ) -> None:
        self.attributes = tuple(a for a in attributes if a in vocabularies)
        self.forms: dict[str, dict[str, str]] = {}
        for attribute in self.attributes:
            table = self.forms.setdefault(attribute, {})
            for value in vocabularies[attribute]:
                if value.lower() not in ("other", "universal", "all ages"):
                    for form in _forms(attribute, value):
                        table.setdefault(form, value)

    def _found(self, attribute: str, text: str) -> list[str]:
        """Values of ``attribute`` named in ``text`` (longest phrases first, no overlaps)."""
        tokens = part_words(text)
        table, taken, out = self.forms[attribute], set(), []
        for size in range(MAX_PHRASE_WORDS, 0, -1):
            for start in range(len(tokens) - size + 1):
                span = set(range(start, start + size))
                value = table.get(" ".join(tokens[start : start + size]))
                if value and not span & taken:
                    taken |= span
                    if value not in out:
                        out.append(value)
        return out

    def tags(
        self, title: str, description: str = "", attributes: Iterable[str] | None = None
    ) -> list[TagScore]:
        """Scored tags for one product; ``attributes`` limits them (e.g. a category's own)."""
        wanted = (
            self.attributes if attributes is None else [a for a in attributes if a in self.forms]
        )
        out: list[TagScore] = []
        for attribute in wanted:
            in_title = self._found(attribute, title)
            values = in_title or self._found(attribute, description)
            score = TITLE_SCORE if in_title else DESCRIPTION_SCORE
            out.extend(TagScore(attribute, v, round(score / len(values), 4)) for v in values)
        return out
