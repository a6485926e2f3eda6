"""Size limits of the taxonomy readers, checked before a tree is built.

Every category stores its full path, so a chain of ``n`` levels costs memory quadratic in
``n``: 100,000 levels would need billions of path entries. Published trees are under 10
levels deep; :data:`MAX_DEPTH` refuses anything deeper than 256, in time linear in the tree.

Example:
    >>> check_depth({"a": None, "b": "a"}, Path("t.csv"), {})
"""

from __future__ import annotations

from pathlib import Path

from multimodal_cat.taxonomy.errors import TaxonomyFormatError

MAX_DEPTH = 256


def check_depth(parent_of: dict[str, str | None], path: Path, line_of: dict[str, int]) -> None:
    """Refuse a tree deeper than :data:`MAX_DEPTH` before any path is built (linear time)."""
    depth: dict[str, int] = {}
    for start in parent_of:
        chain, seen, node = [], set(), start
        while node is not None and node not in depth and node not in seen and node in parent_of:
            chain.append(node)
            seen.add(node)
            node = parent_of[node]
        base = depth.get(node, 0) if node is not None else 0
        for offset, cid in enumerate(reversed(chain), start=1):
            depth[cid] = base + offset
            if depth[cid] > MAX_DEPTH:
                raise TaxonomyFormatError(
                    f"expected a tree at most {MAX_DEPTH} levels deep, found category {cid!r} "
                    f"at depth {depth[cid]:,} or more",
                    path=path,
                    line=line_of.get(cid),
                )
