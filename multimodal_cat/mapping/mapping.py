"""The :class:`Mapping` between two taxonomy trees.

Example:
    >>> from multimodal_cat.mapping import Mapping
    >>> m = Mapping.load("shopify", "google")
    >>> m.map("aa-1-1").target_ids
    ('5322',)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.mapping.errors import MappingFormatError
from multimodal_cat.mapping.rule import MappedCategory, MappingRule
from multimodal_cat.mapping.rules_io import (
    read_rules_text,
    read_rules_yaml,
    text_header_names,
    write_rules_yaml,
)
from multimodal_cat.taxonomy.errors import UnknownCategoryError
from multimodal_cat.taxonomy.tree import Taxonomy, normalize_id


class Mapping:
    """Rules from a source tree to a target tree, with ancestor fallback.

    Args:
        rules: One rule per source id.
        source: The source tree (enables the ancestor fallback and checks the rules' ids).
        target: The target tree (gives target paths and checks the rules' ids).
        source_name: Name of the source tree; ``source.name`` when omitted.
        target_name: Name of the target tree; ``target.name`` when omitted.
        unmapped_ids: Source ids known to map to nothing (no ancestor fallback for them).

    Raises:
        MappingFormatError: On two rules for one source id, or ids the trees do not have.

    Example:
        >>> tax = Taxonomy.from_records([("a", None, "A"), ("b", "a", "B")])
        >>> m = Mapping([MappingRule("a", ("x",))], source=tax)
        >>> m.map("b").provenance
        'inherited'
    """

    def __init__(
        self,
        rules: Iterable[MappingRule],
        source: Taxonomy | None = None,
        target: Taxonomy | None = None,
        source_name: str | None = None,
        target_name: str | None = None,
        *,
        unmapped_ids: Iterable[str] = (),
    ) -> None:
        self.source = source
        self.target = target
        self.source_name = source_name or (source.name if source is not None else "source")
        self.target_name = target_name or (target.name if target is not None else "target")
        self.rules: dict[str, MappingRule] = {}
        for rule in rules:
            if rule.source_id in self.rules:
                raise MappingFormatError(
                    f"expected one rule per source id, found two for {rule.source_id!r}"
                )
            self.rules[rule.source_id] = rule
        self.unmapped_ids = tuple(normalize_id(u) for u in unmapped_ids)
        self._int_ids = (False, False)
        self._check_ids()

    def _check_ids(self) -> None:
        for tree, ids, side in (
            (self.source, [*self.rules, *self.unmapped_ids], "source"),
            (self.target, [t for r in self.rules.values() for t in r.target_ids], "target"),
        ):
            if tree is None:
                continue
            missing = [i for i in ids if i not in tree]
            if missing:
                raise MappingFormatError(
                    f"expected every {side} id of the mapping in {tree.name!r}, found "
                    f"{len(missing)} it does not have: {', '.join(missing[:5])}"
                )

    def __repr__(self) -> str:
        return f"Mapping({self.source_name!r} -> {self.target_name!r}, rules={len(self.rules)})"

    def __len__(self) -> int:
        return len(self.rules)

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def load(cls, source: str, target: str) -> Mapping:
        """A shipped mapping by tree names, composing or inverting shipped mappings as needed.

        Example:
            >>> Mapping.load("shopify/2022-02", "google").map("1").target_ids
            ('1',)
        """
        from multimodal_cat.mapping.shipped import load_mapping

        return load_mapping(source, target)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        source: Taxonomy | None = None,
        target: Taxonomy | None = None,
    ) -> Mapping:
        """Read a Shopify rule file: YAML (``*.yml``) or the ``→`` / ``⇒`` text form (``*.txt``).

        The text form names categories by path, so it needs both trees; when they are not given
        and the header names shipped trees, those are loaded.
        """
        path = Path(path)
        if path.suffix.lower() == ".txt":
            names = text_header_names(path)
            source = source or _shipped_or_none(names[0])
            target = target or _shipped_or_none(names[1])
            if source is None or target is None:
                raise InvalidArgumentError(
                    f"{path}: the text mapping form needs source= and target= taxonomies"
                )
            return cls(read_rules_text(path, source, target), source, target)
        parsed = read_rules_yaml(path)
        mapping = cls(
            parsed.rules,
            source,
            target,
            parsed.source_name,
            parsed.target_name,
            unmapped_ids=parsed.unmapped_ids,
        )
        mapping._int_ids = parsed.int_ids
        return mapping

    def to_yaml(self, path: str | Path) -> Path:
        """Write the rules in Shopify's YAML rule format (``from_file`` reads it back).

        When the mapping knows its trees, each rule is preceded by a comment with the
        categories' paths (``# Apparel > Shoes => Apparel & Accessories > Shoes``), so the file
        can be reviewed by eye; readers of the format skip comments.
        """
        return write_rules_yaml(
            self.rules.values(),
            path,
            self.source_name,
            self.target_name,
            self._int_ids,
            self.unmapped_ids,
            comments=self._path_comments(),
        )

    def _path_comments(self) -> list[str] | None:
        """One ``source path => target path(s)`` line per rule, or ``None`` without the trees."""
        if self.source is None and self.target is None:
            return None
        return [
            f"{_path_of(self.source, rule.source_id)} => "
            + ("; ".join(_path_of(self.target, t) for t in rule.target_ids) or "(nothing)")
            for rule in self.rules.values()
        ]

    # ------------------------------------------------------------------ lookups
    def rule_for(self, source_id: object) -> MappingRule | None:
        """The rule that applies: the category's own, else its nearest ancestor's, else ``None``.

        Raises:
            KeyError: When the source tree is known and does not have ``source_id``.
        """
        sid = normalize_id(source_id)
        rule = self.rules.get(sid)
        if rule is not None or sid in self.unmapped_ids or self.source is None:
            return rule
        for ancestor in reversed(self.source.ancestors(sid)):  # KeyError for unknown ids
            if ancestor.id in self.unmapped_ids:
                return None
            rule = self.rules.get(ancestor.id)
            if rule is not None:
                return rule
        return None

    def map(self, source_id: object) -> MappedCategory:
        """Map one source id; the result's provenance says how.

        ``published`` / ``inferred``: the category's own rule; ``inherited``: its nearest
        ancestor's rule; ``unmapped``: nothing applies (no targets, confidence 0).

        Raises:
            UnknownCategoryError: When the source tree is known and does not have ``source_id``
                (a ``KeyError`` too).

        Example:
            >>> Mapping.load("shopify", "google").map("aa-1-1-1").provenance
            'published'
        """
        sid = normalize_id(source_id)
        if self.source is not None and sid not in self.source:
            raise UnknownCategoryError(
                f"no category with id {source_id!r} in source taxonomy {self.source_name!r}"
            )
        rule = self.rule_for(sid)
        if rule is None or not rule.target_ids:
            return MappedCategory(self.target_name, (), (), "unmapped", 0.0)
        provenance = rule.provenance if rule.source_id == sid else "inherited"
        return MappedCategory(
            self.target_name,
            rule.target_ids,
            self._paths(rule.target_ids),
            provenance,
            rule.confidence,
        )

    def _paths(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        if self.target is None:
            return ()
        return tuple(self.target[i].full_path if i in self.target else i for i in ids)

    def unmapped(self, *, inherit: bool = False) -> list[str]:
        """Source ids without a rule of their own (with ``inherit``: without any rule that applies).

        Uses the source tree's order; without a source tree, the ids the file lists as unmapped.
        """
        if self.source is None:
            return list(self.unmapped_ids)
        if inherit:
            return [c.id for c in self.source if self.rule_for(c.id) is None]
        return [c.id for c in self.source if c.id not in self.rules]

    # ------------------------------------------------------------------ algebra
    def compose(self, other: Mapping) -> Mapping:
        """This mapping followed by ``other`` (A -> B then B -> C gives A -> C).

        Each target of a rule is mapped by ``other`` (with its ancestor fallback). The composed
        rule is ``inferred`` if either step is, ``inherited`` if a step used an ancestor's rule,
        else ``published``; its confidence is the product of the steps'.

        Example:
            >>> legacy = Mapping.load("shopify/2022-02", "shopify")
            >>> legacy.compose(Mapping.load("shopify", "google")).target_name
            'google/2021-09-21'
        """
        if self.target_name != other.source_name and "target" not in (
            self.target_name,
            other.source_name,
        ):
            raise InvalidArgumentError(
                f"cannot compose: expected the second mapping to start from {self.target_name!r}, "
                f"found {other.source_name!r}"
            )
        rules = []
        for rule in self.rules.values():
            targets: list[str] = []
            provenance, confidence = rule.provenance, rule.confidence
            for middle in rule.target_ids:
                step = other.map(middle) if other.source is None or middle in other.source else None
                if step is None or step.provenance == "unmapped":
                    continue
                targets.extend(t for t in step.target_ids if t not in targets)
                provenance = _combine(provenance, step.provenance)
                confidence = min(confidence, rule.confidence * step.confidence)
            if targets:
                rules.append(MappingRule(rule.source_id, tuple(targets), provenance, confidence))
        return Mapping(rules, self.source, other.target, self.source_name, other.target_name)

    def invert(self) -> Mapping:
        """The reverse mapping: each target id maps to every source id that maps to it.

        A rule read backwards gives candidates, not an answer: each inverted rule is
        ``inverted`` and its confidence is shared among its candidates (the lowest
        contributing confidence divided by their number). The candidates keep the source
        tree's order.

        Example:
            >>> google_to_shopify = Mapping.load("shopify", "google").invert()
            >>> mapped = google_to_shopify.map("5322")
            >>> "aa-1-1" in mapped.target_ids, mapped.provenance
            (True, 'inverted')
            >>> round(mapped.confidence * len(mapped.target_ids), 6)
            1.0
        """
        candidates: dict[str, list[MappingRule]] = {}
        for rule in self.rules.values():
            for target in rule.target_ids:
                candidates.setdefault(target, []).append(rule)
        order = {c.id: i for i, c in enumerate(self.source)} if self.source is not None else {}
        rules = []
        for target, found in candidates.items():
            found.sort(key=lambda r: order.get(r.source_id, len(order)))
            rules.append(
                MappingRule(
                    target,
                    tuple(r.source_id for r in found),
                    "inverted",
                    min(r.confidence for r in found) / len(found),
                )
            )
        if self.target is not None:
            position = {c.id: i for i, c in enumerate(self.target)}
            rules.sort(key=lambda r: position.get(r.source_id, len(position)))
        return Mapping(rules, self.target, self.source, self.target_name, self.source_name)


def _combine(first: str, second: str) -> str:
    """The provenance of two chained steps: the least certain of the two."""
    for provenance in ("inferred", "inverted", "inherited"):
        if provenance in (first, second):
            return provenance
    return "published"


def _path_of(tree: Taxonomy | None, category_id: str) -> str:
    """A category's full path, or its id where the tree is unknown or lacks it."""
    category = tree.get(category_id) if tree is not None else None
    return category.full_path if category is not None else category_id


def _shipped_or_none(name: str | None) -> Taxonomy | None:
    from multimodal_cat.taxonomy.shipped import canonical_name, is_shipped_name, load_shipped

    if name is None or not is_shipped_name(name):
        return None
    return load_shipped(canonical_name(name))
