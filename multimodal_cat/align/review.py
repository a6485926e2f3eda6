"""The review list: the inferred rules a person should check, and why.

Two kinds of rules go on it:

- ``low confidence``: the least confident ``fraction`` of the inferred rules, and every rule
  below ``below`` (either may be off);
- structural signals among the others, however confident: ``siblings disagree`` (the rule
  sends its category to another top-level target branch than most of its siblings' rules)
  and ``outside parent's target`` (its target is neither at, above nor below its parent's
  target: the category left its parent's branch, as a whole family of siblings sent to one
  wrong branch does).

Example:
    >>> from multimodal_cat.align.infer import ReviewItem
    >>> items = {0: ReviewItem("a", "A", "1", "X", 0.2), 1: ReviewItem("b", "B", "2", "Y", 0.9)}
    >>> [i.source_id for i in review_list(items, [-1, -1], [-1, -1], {0: 0, 1: 1}, fraction=0.5)]
    ['a']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from multimodal_cat.align.backoff import lineage

LOW = "low confidence"
SIBLINGS = "siblings disagree"
OUTSIDE = "outside parent's target"


def _branch(parents: Sequence[int], position: int) -> int:
    """The target's ancestor at depth 1 (itself when it is a root or at depth 1)."""
    line = lineage(parents, position)
    return line[-2] if len(line) >= 2 else line[-1]


def structure_flags(
    items: dict[int, Any],
    source_parents: Sequence[int],
    target_parents: Sequence[int],
    chosen: dict[int, int],
) -> dict[int, str]:
    """Source position -> structural reason to review its inferred rule (see module doc)."""
    flags: dict[int, str] = {}
    families: dict[int, list[int]] = {}
    for s in items:
        if source_parents[s] >= 0:
            families.setdefault(source_parents[s], []).append(s)
    for parent, family in families.items():
        anchor = chosen.get(parent, -1)
        if anchor >= 0:
            around = set(lineage(target_parents, anchor))
            for s in family:
                if chosen[s] not in around and anchor not in lineage(target_parents, chosen[s]):
                    flags[s] = OUTSIDE
        if len(family) < 3:
            continue
        branches = Counter(_branch(target_parents, chosen[s]) for s in family)
        major, count = branches.most_common(1)[0]
        if count * 2 > len(family):
            for s in family:
                if _branch(target_parents, chosen[s]) != major:
                    flags.setdefault(s, SIBLINGS)
    return flags


def review_list(
    items: dict[int, Any],
    source_parents: Sequence[int],
    target_parents: Sequence[int],
    chosen: dict[int, int],
    *,
    fraction: float = 0.1,
    below: float | None = None,
    structure: bool = True,
) -> list[Any]:
    """The rules to review: low-confidence ones first (least confident first), then the
    structurally suspicious ones (least confident first), each with its ``reason``.

    Args:
        items: source position -> :class:`~multimodal_cat.align.infer.ReviewItem`.
        source_parents, target_parents: parent position of each position (-1: root).
        chosen: source position -> chosen target position (inferred and published rules).
        fraction: share of the inferred rules listed as least confident.
        below: also list every rule whose confidence is below this.
        structure: add the structural signals.
    """
    order = sorted(items, key=lambda s: items[s].confidence)
    low = set(order[: math.ceil(fraction * len(order))])
    if below is not None:
        low |= {s for s in order if items[s].confidence < below}
    flags = structure_flags(items, source_parents, target_parents, chosen) if structure else {}
    first = [replace(items[s], reason=LOW) for s in order if s in low]
    then = [replace(items[s], reason=flags[s]) for s in order if s in flags and s not in low]
    return first + then
