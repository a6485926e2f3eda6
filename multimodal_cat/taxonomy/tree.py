"""The immutable :class:`Taxonomy` tree.

Example:
    >>> tax = Taxonomy.from_paths(["Apparel", "Apparel > Shoes", "Apparel > Shirts"])
    >>> [c.name for c in tax.children("Apparel")]
    ['Shoes', 'Shirts']
    >>> tax.find("apparel >  SHOES").id
    'Apparel > Shoes'
    >>> [c.name for c in tax.ancestors(tax.find("Apparel > Shoes"))]  # a Category works as an id
    ['Apparel']
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from multimodal_cat.errors import InvalidArgumentError
from multimodal_cat.taxonomy.category import Category
from multimodal_cat.taxonomy.errors import TaxonomyFormatError, UnknownCategoryError
from multimodal_cat.taxonomy.index import PATH_SEPARATOR, TaxonomyIndex, path_key, split_path

logger = logging.getLogger(__name__)

SHOPIFY_GID_PREFIX = "gid://shopify/TaxonomyCategory/"
_WORD = re.compile(r"[^\W_]+")


def normalize_id(category_id: object) -> str:
    """Turn an id as users write it into the stored form (``gid://...aa-1`` -> ``aa-1``, ``5`` -> ``"5"``).

    A :class:`Category` stands for its id.

    Example:
        >>> normalize_id("gid://shopify/TaxonomyCategory/aa-1"), normalize_id(5)
        ('aa-1', '5')
    """
    if isinstance(category_id, Category):
        return category_id.id
    text = str(category_id).strip()
    if text.startswith(SHOPIFY_GID_PREFIX):
        text = text[len(SHOPIFY_GID_PREFIX) :]
    return text


class Taxonomy:
    """An immutable tree of categories with lookups, traversal and an index form.

    The constructor checks the input and derives each category's ``path`` and ``depth`` from the
    parent chain, so callers only need ``id``, ``name`` and ``parent_id`` to be right.
    Iteration order is the input order when that lists every parent before its children (as
    published files do), else depth-first; siblings always keep their input order.

    Args:
        categories: The categories, in any order.
        name: Name of the tree, e.g. ``"shopify/2025-01-unstable"``.
        attribute_values: Attribute handle -> value names, or a zero-argument callable that
            returns it (read lazily on first use).

    Raises:
        TaxonomyFormatError: On duplicate ids, a parent that does not exist, or a cycle.

    Example:
        >>> tax = Taxonomy.from_records([("1", None, "Animals"), ("2", "1", "Pets")])
        >>> tax["2"].full_path, tax["2"].depth
        ('Animals > Pets', 2)
    """

    def __init__(
        self,
        categories: Iterable[Category],
        name: str = "custom",
        *,
        attribute_values: dict[str, list[str]] | Callable[[], dict[str, list[str]]] | None = None,
    ) -> None:
        self.name = name
        given: dict[str, Category] = {}
        for category in categories:
            problem = name_problem(category.name)
            if problem:
                raise TaxonomyFormatError(
                    f"category {category.id!r} in taxonomy {name!r}: {problem}", found=category.name
                )
            if category.id in given:
                raise TaxonomyFormatError(
                    f"duplicate category id {category.id!r} in taxonomy {name!r}: expected each id "
                    f"once, found it for {given[category.id].name!r} and {category.name!r}"
                )
            given[category.id] = category
        children: dict[str | None, list[str]] = {}
        for category in given.values():
            if category.parent_id is not None and category.parent_id not in given:
                raise TaxonomyFormatError(
                    f"category {category.id!r} ({category.name!r}) names parent "
                    f"{category.parent_id!r}, which is not in taxonomy {name!r}"
                )
            children.setdefault(category.parent_id, []).append(category.id)
        self._by_id = self._build(given, children)
        if len(self._by_id) != len(given):
            raise TaxonomyFormatError(_describe_cycle(given, self._by_id))
        if _parents_first(given):  # keep the input order when it already lists parents first
            self._by_id = {cid: self._by_id[cid] for cid in given}
        self._children = {key: tuple(value) for key, value in children.items()}
        self._order = {cid: i for i, cid in enumerate(self._by_id)}
        self._by_path = {path_key(c.path): c for c in self._by_id.values()}
        if len(self._by_path) < len(self._by_id):
            _warn_same_paths(self._by_id.values(), name)
        self._attribute_values = attribute_values
        self._words: list[tuple[Category, list[str], set[str]]] | None = None
        self._index: TaxonomyIndex | None = None

    @staticmethod
    def _build(
        given: dict[str, Category], children: dict[str | None, list[str]]
    ) -> dict[str, Category]:
        """Walk from the roots depth-first, fixing each category's path and depth."""
        ordered: dict[str, Category] = {}
        stack: list[tuple[str, tuple[str, ...]]] = [
            (cid, ()) for cid in reversed(children.get(None, []))
        ]
        while stack:
            cid, parent_path = stack.pop()
            category = given[cid]
            path = (*parent_path, category.name)
            if category.path != path or category.depth != len(path):
                category = replace(category, path=path, depth=len(path))
            ordered[cid] = category
            stack.extend((child, path) for child in reversed(children.get(cid, [])))
        return ordered

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_records(
        cls, records: Iterable[tuple[object, object | None, str]], name: str = "custom"
    ) -> Taxonomy:
        """Build a tree from ``(id, parent_id or None, name)`` tuples.

        Example:
            >>> Taxonomy.from_records([("a", None, "A"), ("b", "a", "B")])["b"].path
            ('A', 'B')
        """
        categories = []
        for cid, parent, cname in records:
            parent_id = None if parent in (None, "") else normalize_id(parent)
            categories.append(Category(normalize_id(cid), str(cname), (str(cname),), parent_id, 1))
        return cls(categories, name=name)

    @classmethod
    def from_paths(
        cls, paths: Iterable[str], ids: Iterable[object] | None = None, name: str = "custom"
    ) -> Taxonomy:
        """Build a tree from ``"A > B > C"`` strings; missing intermediate nodes are created.

        Args:
            paths: Full paths, one per category.
            ids: Ids for the paths (same order); a path's own string is its id when omitted,
                and so are the ids of created intermediate nodes.
            name: Name of the tree.

        Example:
            >>> Taxonomy.from_paths(["A > B"], ids=["7"]).ids()
            ['A', '7']
        """
        path_list = [split_path(path) for path in paths]
        id_list = [normalize_id(i) for i in ids] if ids is not None else None
        if id_list is not None and len(id_list) != len(path_list):
            raise TaxonomyFormatError(
                f"expected one id per path, found {len(id_list)} ids for {len(path_list)} paths"
            )
        return cls(categories_from_paths(path_list, id_list), name=name)

    @classmethod
    def load(
        cls,
        name_or_path: str | Path,
        format: str | None = None,
        *,
        missing_parents: str = "error",
    ) -> Taxonomy:
        """Load a shipped tree by name or read a file or folder.

        Args:
            name_or_path: ``"google"``, ``"shopify"``, ``"shopify/2025-01-unstable"``,
                ``"shopify/2022-02"``, ... or a path to a taxonomy file or Shopify folder.
            format: Force a reader (``google``, ``shopify_txt``, ``shopify_yaml``,
                ``full_names``, ``csv``); detected from the name and content when omitted.
            missing_parents: For a path: ``"error"`` or ``"create"`` a category for a parent
                path that has no line of its own.

        Example:
            >>> Taxonomy.load("shopify")["aa-1-1"].full_path
            'Apparel & Accessories > Clothing > Activewear'
        """
        from multimodal_cat.taxonomy import shipped

        return shipped.load_taxonomy(name_or_path, format=format, missing_parents=missing_parents)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the tree in one of the reader formats (detected from the file name by default)."""
        from multimodal_cat.taxonomy.writers import write_taxonomy

        return write_taxonomy(self, path, format=format)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_id.values())

    def __contains__(self, category_id: object) -> bool:
        return normalize_id(category_id) in self._by_id

    def __getitem__(self, category_id: object) -> Category:
        category = self._by_id.get(normalize_id(category_id))
        if category is None:
            shown = category_id.id if isinstance(category_id, Category) else category_id
            raise UnknownCategoryError(f"no category with id {shown!r} in taxonomy {self.name!r}")
        return category

    def __repr__(self) -> str:
        return f"Taxonomy(name={self.name!r}, categories={len(self)}, max_depth={self.max_depth})"

    def get(self, category_id: object, default: Category | None = None) -> Category | None:
        """The category with this id, or ``default``."""
        return self._by_id.get(normalize_id(category_id), default)

    def ids(self) -> list[str]:
        """All ids in iteration order."""
        return list(self._by_id)

    def find(self, full_path: str | Category) -> Category:
        """The category with this full path, ignoring case and extra spaces (a
        :class:`Category` stands for its path).

        Raises:
            UnknownCategoryError: When no category has that path (a ``KeyError`` too).
        """
        if isinstance(full_path, Category):
            full_path = full_path.full_path
        category = self._by_path.get(path_key(full_path))
        if category is None:
            raise UnknownCategoryError(f"no category with path {full_path!r} in taxonomy {self.name!r}")
        return category

    def resolve(self, id_or_path: str | Category) -> Category:
        """A category by id, else by full path (what a command line accepts).

        Raises:
            UnknownCategoryError: When neither an id nor a path matches (a ``KeyError`` too).
        """
        category = self.get(id_or_path)
        if category is None and isinstance(id_or_path, str):
            category = self._by_path.get(path_key(id_or_path))
        if category is None:
            raise UnknownCategoryError(f"no category with id or path {id_or_path!r} in taxonomy {self.name!r}")
        return category

    # ------------------------------------------------------------------ structure
    def parent(self, category_id: object) -> Category | None:
        """The parent category, ``None`` for a root."""
        parent_id = self[category_id].parent_id
        return None if parent_id is None else self._by_id[parent_id]

    def ancestors(self, category_id: object, include_self: bool = False) -> list[Category]:
        """Ancestors, root first (and the category itself last when ``include_self``).

        ``category_id`` (here and in every structure method) is an id or a :class:`Category`.

        Raises:
            UnknownCategoryError: When the tree has no such category (a ``KeyError`` too).
        """
        category = self[category_id]
        chain = [category] if include_self else []
        while category.parent_id is not None:
            category = self._by_id[category.parent_id]
            chain.append(category)
        return chain[::-1]

    def children(self, category_id: object) -> list[Category]:
        """Direct children in iteration order."""
        return [self._by_id[c] for c in self._children.get(self[category_id].id, ())]

    def roots(self) -> list[Category]:
        """Top-level categories."""
        return [self._by_id[c] for c in self._children.get(None, ())]

    def is_leaf(self, category_id: object) -> bool:
        """True when the category has no children."""
        return not self._children.get(self[category_id].id)

    def leaves(self) -> list[Category]:
        """Categories without children, in iteration order."""
        return [c for c in self._by_id.values() if not self._children.get(c.id)]

    def descendants(self, category_id: object, include_self: bool = False) -> list[Category]:
        """All categories below this one, in iteration order."""
        root = self[category_id]
        out = [root] if include_self else []
        stack = list(reversed(self._children.get(root.id, ())))
        while stack:
            cid = stack.pop()
            out.append(self._by_id[cid])
            stack.extend(reversed(self._children.get(cid, ())))
        return out

    def subtree(self, category_id: object) -> Taxonomy:
        """The category and everything below it as a new tree; the category becomes its root."""
        nodes = self.descendants(category_id, include_self=True)
        top = replace(nodes[0], parent_id=None)
        return Taxonomy(
            [top, *nodes[1:]], name=f"{self.name}:{top.id}", attribute_values=self._attribute_values
        )

    def cut(self, depth: int) -> Taxonomy:
        """The tree without categories deeper than ``depth`` (``depth >= 1``)."""
        if depth < 1:
            raise InvalidArgumentError(f"expected a depth of at least 1, found {depth}")
        kept = [c for c in self._by_id.values() if c.depth <= depth]
        return Taxonomy(kept, name=f"{self.name}@{depth}", attribute_values=self._attribute_values)

    @property
    def max_depth(self) -> int:
        """Depth of the deepest category (0 for an empty tree)."""
        return max((c.depth for c in self._by_id.values()), default=0)

    @property
    def attribute_values(self) -> dict[str, list[str]]:
        """Attribute handle -> value names (Shopify trees read with their attributes, else ``{}``)."""
        if callable(self._attribute_values):
            self._attribute_values = self._attribute_values()
        return self._attribute_values or {}

    # ------------------------------------------------------------------ search and index
    def search(self, words: str, limit: int = 20) -> list[Category]:
        """Categories whose path contains the words (prefix match), best first.

        Categories matching more of the words come first; a word found in the category's own
        name counts more than one found in an ancestor; shallower categories win ties.

        Example:
            >>> Taxonomy.from_paths(["Apparel > Shoes", "Toys > Shoe Toys"]).search("shoes")[0].name
            'Shoes'
        """
        query = [w.casefold() for w in _WORD.findall(words)]
        if not query:
            return []
        if self._words is None:
            self._words = [
                (c, _WORD.findall(c.name.casefold()), set(_WORD.findall(c.full_path.casefold())))
                for c in self._by_id.values()
            ]
        scored = []
        for category, name_words, path_words in self._words:
            matched, score = 0, 0.0
            for word in query:
                if any(w.startswith(word) for w in name_words):
                    matched, score = matched + 1, score + 2.0 + (word in name_words)
                elif any(w.startswith(word) for w in path_words):
                    matched, score = matched + 1, score + 1.0
            if matched == 0:
                continue
            if name_words == query:
                score += 5.0
            scored.append((-matched, -score, category.depth, self._order[category.id], category))
        scored.sort(key=lambda item: item[:4])
        return [item[4] for item in scored[:limit]]

    def to_index(self) -> TaxonomyIndex:
        """The tree's flat index (positions in iteration order, parents before children).

        Example:
            >>> Taxonomy.from_paths(["A > B", "C"]).to_index().parents
            [-1, 0, -1]
        """
        if self._index is None:
            cats = list(self._by_id.values())
            self._index = TaxonomyIndex(
                ids=list(self._by_id),
                parents=[-1 if c.parent_id is None else self._order[c.parent_id] for c in cats],
                names=[c.name for c in cats],
                paths=[c.full_path for c in cats],
                taxonomy_name=self.name,
            )
        return self._index


def categories_from_paths(
    paths: list[tuple[str, ...]], ids: list[str] | None = None
) -> list[Category]:
    """Categories for full paths, creating missing ancestors (their id is their path string)."""
    explicit: dict[tuple[str, ...], str] = {}
    for i, path in enumerate(paths):
        if path in explicit:
            raise TaxonomyFormatError(
                f"duplicate path: expected each path once, found {PATH_SEPARATOR.join(path)!r} twice"
            )
        explicit[path] = ids[i] if ids is not None else PATH_SEPARATOR.join(path)
    by_path: dict[tuple[str, ...], str] = {}
    out: list[Category] = []
    for path in explicit:
        for k in range(1, len(path) + 1):
            node = path[:k]
            if node not in by_path:
                by_path[node] = explicit.get(node, PATH_SEPARATOR.join(node))
                parent = by_path[node[:-1]] if k > 1 else None
                out.append(Category(by_path[node], node[-1], node, parent, k))
    return out


MAX_NAME = 1_000  # characters in one category name (a seller category text is cut there too)


def name_problem(name: str) -> str:
    """What makes ``name`` unusable as a category name (``""`` when nothing does).

    A name may not hold ``" > "`` (the path separator: its path would read as two levels) nor
    control characters (they break the Label Studio XML and the output files' readers), nor
    run past :data:`MAX_NAME` characters (the feeds' own cap on a category text).

    Example:
        >>> name_problem("Mugs"), name_problem("Kitchen > Mugs")
        ('', "expected a name without ' > ' (the path separator)")
    """
    if len(name) > MAX_NAME:
        return f"expected a name of at most {MAX_NAME:,} characters; found {len(name):,}"
    if " > " in name:
        return "expected a name without ' > ' (the path separator)"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "expected a name without control characters (tabs, line breaks, \\x00-\\x1f)"
    return ""


def _warn_same_paths(categories: Iterable[Category], name: str) -> None:
    """Warn once about sibling categories sharing a name (their paths are the same)."""
    by_path: dict[str, list[Category]] = {}
    for category in categories:
        by_path.setdefault(path_key(category.path), []).append(category)
    same = [group for group in by_path.values() if len(group) > 1]
    shown = "; ".join(
        f"{' > '.join(group[0].path)!r} (ids {', '.join(c.id for c in group)})" for group in same[:5]
    )
    logger.warning(
        "taxonomy %r: %d group(s) of sibling categories share a name, so a path names only the "
        "last of each: %s", name, len(same), shown,
    )


def _parents_first(given: dict[str, Category]) -> bool:
    seen: set[str] = set()
    for cid, category in given.items():
        if category.parent_id is not None and category.parent_id not in seen:
            return False
        seen.add(cid)
    return True


def _describe_cycle(given: dict[str, Category], reached: dict[str, Category]) -> str:
    """A message naming one cycle among the categories that no root reaches."""
    start = next(cid for cid in given if cid not in reached)
    seen: list[str] = []
    cid: str | None = start
    while cid is not None and cid not in seen:
        seen.append(cid)
        cid = given[cid].parent_id
    loop = seen[seen.index(cid) :] if cid in seen else seen
    chain = " -> ".join([*loop, loop[0]])
    return (
        f"cycle in parent links: expected every category to lead up to a root, found {chain} "
        f"({len(given) - len(reached)} categories affected)"
    )
