"""The catalog index: image, text and fused vectors of a catalog's products, with their ids,
the encoders that made them, and each product's category; searchable, incremental, removable
by id, restricted to a branch of the tree, saved to and loaded from a folder.

Vectors are unit length; "fused" (kept when the index has both modalities) is the concatenation
of the text vector times ``text_weight`` and the image vector times ``sqrt(1 - text_weight^2)``
(zeros where a product lacks one), scaled to unit length, so for products that have both a
fused score is ``w^2`` x the text cosine + ``(1 - w^2)`` x the image cosine (equal weights by
default: heavier text weights ranked no better on fashion's validation split). Searches can re-rank the
nearest ``pool`` by the category the query is predicted to be (``same_kind``): with the
index's kind probes (:meth:`CatalogIndex.learn_kinds`, linear probes of the text and the image
vectors, :mod:`~multimodal_cat.catalog.probes`) the probability of each result's category for
the query, else how much of the pool's similarity each result's category holds. Exact numpy search answers below
:data:`~multimodal_cat.catalog.backends.ANN_THRESHOLD` rows and every query restricted to a
branch smaller than that; usearch answers the others (a large branch: the graph's nearest,
oversampled by the branch's share, kept in the branch). From that size the usearch graphs hold
the vectors (float16) and the index keeps no second, float32 copy:
:meth:`CatalogIndex.vectors_of` reads them back by label, in chunks, for exact and small-branch
queries, the kind probes and saving.

Example:
    >>> import numpy as np
    >>> index = CatalogIndex(encoders={"text": "text:demo"})
    >>> index.add(["a", "b"], text=np.eye(2, dtype=np.float32), categories=["X > Y", "Z"])
    >>> index.search(np.array([[0.0, 1.0]], dtype=np.float32), kind="text", k=1)[0][0]
    ('b', 1.0)
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.catalog.backends import ANN_THRESHOLD, USearchBackend, exact_top_k
from multimodal_cat.catalog.probes import KindProbe, combine, load_probes, probe_rows, save_probes
from multimodal_cat.errors import MultimodalCatError
from multimodal_cat.taxonomy.index import path_key

KINDS = ("text", "image", "fused")
TEXT_WEIGHT = 0.5**0.5  # equal weights: 0.8 and 0.9 ranked no better (fashion validation split)
SAME_KIND_POOL = 30  # nearest re-ranked by the pool's own category shares
PROBE_POOL = 100  # nearest re-ranked by the kind probes (fashion validation: 0.96 vs 0.94 at 30)
OVERSAMPLE = 4  # restricted ANN queries fetch 4 x k / (the branch's share of the index)
EXACT_CHUNK = 32_768  # rows read back from a graph at a time (exact search, saving)
IDENTICAL = 0.999  # a cosine from which a hit is the query's own vector
FORMAT_VERSION = 1
META_FILE = "catalog_index.json"
KINDS_FILE = "kind_probes.npz"


class CatalogIndexError(MultimodalCatError, ValueError):
    """A catalog index used in a way it cannot answer (another encoder, an unknown branch,
    an unknown id, a folder that holds no index)."""


def unit_rows(vectors: np.ndarray | None) -> np.ndarray | None:
    """Rows scaled to unit length (zero rows stay zero)."""
    if vectors is None:
        return None
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def fuse(
    text: np.ndarray | None, image: np.ndarray | None, text_weight: float = TEXT_WEIGHT
) -> np.ndarray:
    """The fused vectors of unit text and image rows (either may be None or hold zero rows):
    ``[w * text, sqrt(1 - w^2) * image]`` scaled to unit length."""
    if text is None and image is None:
        raise CatalogIndexError("a fused vector needs a text or an image vector")
    if not 0.0 <= text_weight <= 1.0:
        raise CatalogIndexError(f"expected a text weight in [0, 1]; found {text_weight}")
    weights = (text_weight, float(np.sqrt(1.0 - text_weight**2)))
    parts = [w * unit_rows(part) for part, w in zip((text, image), weights, strict=True)
             if part is not None]
    return unit_rows(np.hstack(parts))  # type: ignore[return-value]


class CatalogIndex:
    """Vectors, ids, categories and encoder keys of a catalog, with nearest-neighbour search.

    Args:
        encoders: encoder key per modality (``{"text": "text:minilm|...", "image": ...}``):
            a query made with another encoder is refused.
        ann_threshold: rows from which unrestricted queries go to the ANN library.
        text_weight: the text part's weight in fused vectors (see :func:`fuse`).
    """

    def __init__(
        self,
        *,
        encoders: dict[str, str],
        ann_threshold: int = ANN_THRESHOLD,
        text_weight: float = TEXT_WEIGHT,
    ) -> None:
        if not encoders or set(encoders) - {"text", "image"}:
            raise CatalogIndexError(
                f"expected encoders for 'text' and/or 'image'; found {sorted(encoders)}"
            )
        self.encoders = dict(encoders)
        self.specs: dict[str, dict[str, Any]] = {}  # how to load each encoder again
        self.ann_threshold = ann_threshold
        self.text_weight = text_weight
        self.ids: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.labels = np.zeros(0, dtype=np.int64)
        self.vectors: dict[str, np.ndarray] = {}  # float32, while no ANN graph holds them
        self.dims: dict[str, int] = {}
        self.has: dict[str, np.ndarray] = {}
        self._next_label = 0
        self._position: dict[str, int] = {}
        self._ann: dict[str, USearchBackend] = {}
        self._branches: dict[str, np.ndarray] = {}  # branch key -> its rows (until a change)
        self.kind_probes: dict[str, KindProbe] = {}  # modality -> probe (learn_kinds)

    # ----------------------------------------------------------------- contents
    @property
    def kinds(self) -> list[str]:
        """The vector kinds this index holds (``text``, ``image``, ``fused``)."""
        return [kind for kind in KINDS if kind in self.dims]

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, product_id: object) -> bool:
        return str(product_id) in self._position

    def check_encoder(self, modality: str, key: str) -> None:
        """Refuse a query vector made by another encoder than the index's.

        Raises:
            CatalogIndexError: the index has no such modality, or was built with another encoder.
        """
        if modality not in self.encoders:
            raise CatalogIndexError(
                f"this index holds no {modality} vectors (it was built with "
                f"{', '.join(sorted(self.encoders))} only)"
            )
        if self.encoders[modality] != key:
            raise CatalogIndexError(
                f"the index's {modality} vectors were made with encoder "
                f"{self.encoders[modality]!r}; the query was encoded with {key!r}. "
                "Query with the same encoder, or rebuild the index."
            )

    def add(
        self,
        ids: Sequence[Any],
        *,
        text: np.ndarray | None = None,
        image: np.ndarray | None = None,
        categories: Sequence[str | None] | None = None,
        records: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Add products (a product already in the index is replaced).

        Args:
            ids: one id per product (kept as text).
            text, image: (n, dim) vectors; zero rows for products without that input.
            categories: each product's category path (``"Apparel > Shoes"``), or None.
            records: what to show for each product (title, image path, seller...).
        """
        ids = [str(product_id) for product_id in ids]
        if len(set(ids)) != len(ids):
            raise CatalogIndexError("expected unique ids; found repeated ids in one add")
        given = {"text": text, "image": image}
        for modality, vectors in given.items():
            if vectors is not None and modality not in self.encoders:
                raise CatalogIndexError(f"this index was built without {modality} vectors")
            if vectors is not None and len(vectors) != len(ids):
                raise CatalogIndexError(
                    f"expected {len(ids)} {modality} vectors (one per id); found {len(vectors)}"
                )
        if not ids:
            return
        self.remove([i for i in ids if i in self._position], missing="ignore")
        self.kind_probes = {}  # new products may bring new categories: learn_kinds() again
        unit = {m: unit_rows(given[m]) for m in self.encoders}
        for modality in self.encoders:
            if unit[modality] is None:
                unit[modality] = np.zeros((len(ids), self._dim(modality)), np.float32)
        new = {m: unit[m] for m in self.encoders}
        if len(new) == 2:  # a one-modality index would hold the same vectors twice
            new["fused"] = fuse(new["text"], new["image"], self.text_weight)
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._next_label += len(ids)
        for kind, vectors in new.items():
            present = np.linalg.norm(vectors, axis=1) > 0
            self.dims[kind] = vectors.shape[1]
            self.has[kind] = np.concatenate([self.has.get(kind, np.zeros(0, bool)), present])
            if kind in self._ann:  # the graph holds the vectors: no float32 copy
                self._ann[kind].add(labels[present], vectors[present])
            else:
                self.vectors[kind] = _stack(self.vectors.get(kind), vectors)
        categories = list(categories) if categories is not None else [None] * len(ids)
        records = list(records) if records is not None else [{} for _ in ids]
        for product_id, category, record in zip(ids, categories, records, strict=True):
            self._position[product_id] = len(self.ids)
            self.ids.append(product_id)
            self.records.append({**record, "category": category or None})
        self.labels = np.concatenate([self.labels, labels])
        self._branches = {}
        self._refresh_ann()

    def _dim(self, modality: str) -> int:
        if modality in self.dims:
            return self.dims[modality]
        raise CatalogIndexError(
            f"the first products added must carry {modality} vectors (zero rows where missing), "
            "so the index knows their size"
        )

    def remove(self, ids: Sequence[Any], *, missing: str = "error") -> int:
        """Remove products by id; return how many were removed.

        Raises:
            CatalogIndexError: an id is not in the index (unless ``missing="ignore"``).
        """
        ids = [str(product_id) for product_id in ids]
        unknown = [i for i in ids if i not in self._position]
        if unknown and missing == "error":
            raise CatalogIndexError(f"ids not in the index: {unknown[:5]}")
        rows = sorted({self._position[i] for i in ids if i in self._position})
        if not rows:
            return 0
        keep = np.ones(len(self.ids), bool)
        keep[rows] = False
        for backend in self._ann.values():
            backend.remove(self.labels[rows])
        for kind in list(self.vectors):
            self.vectors[kind] = self.vectors[kind][keep]
        for kind in list(self.has):
            self.has[kind] = self.has[kind][keep]
        self.labels = self.labels[keep]
        self.ids = [i for i, k in zip(self.ids, keep, strict=True) if k]
        self.records = [r for r, k in zip(self.records, keep, strict=True) if k]
        self._position = {product_id: row for row, product_id in enumerate(self.ids)}
        self._branches = {}
        return len(rows)

    def _refresh_ann(self) -> None:
        """Build the ANN graphs once the index passes the threshold (later adds go in directly);
        a graph then holds its kind's vectors, and the float32 copy is let go."""
        if len(self) < self.ann_threshold:
            return
        for kind in self.kinds:
            if kind not in self._ann:
                backend = USearchBackend(self.dims[kind])
                backend.add(self.labels[self.has[kind]], self.vectors[kind][self.has[kind]])
                self._ann[kind] = backend
            self.vectors.pop(kind, None)

    def vectors_of(self, kind: str, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(n, dim) float32 unit vectors of ``kind`` at row positions ``rows`` (default: every
        row), zero rows for products without that input; read from the ANN graph (float16
        precision) when it holds them.

        Example:
            >>> index = CatalogIndex(encoders={"text": "t"})
            >>> index.add(["a", "b"], text=np.eye(2, dtype=np.float32))
            >>> index.vectors_of("text", [1]).tolist()
            [[0.0, 1.0]]
        """
        if kind not in self.dims:
            raise CatalogIndexError(f"this index holds no {kind} vectors; it has {self.kinds}")
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, np.int64)
        if kind in self.vectors:
            return self.vectors[kind][rows]
        out = np.zeros((len(rows), self.dims[kind]), np.float32)
        present = self.has[kind][rows]
        out[present] = self._ann[kind].get(self.labels[rows[present]])
        return out

    def _within(self, kind: str, allowed: np.ndarray, queries: np.ndarray, k: int, exact: bool
                ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` among row positions ``allowed`` (a branch): exact below the ANN threshold
        (or when asked), else the graph's nearest :data:`OVERSAMPLE` x ``k`` / the branch's
        share, kept in the branch; a query left with fewer than ``k`` is answered exactly."""
        if exact or kind not in self._ann or len(allowed) < self.ann_threshold:
            return self._exact(kind, allowed, queries, k)
        present = int(self.has[kind].sum())
        pool = min(present, int(np.ceil(OVERSAMPLE * k * present / len(allowed))))
        labels, scores = self._ann[kind].search(queries, pool)
        rows = self._rows_of_labels(labels)
        member = np.zeros(len(self), bool)
        member[allowed] = True
        inside = (rows >= 0) & member[np.maximum(rows, 0)]
        out_rows = np.full((len(queries), k), -1, np.int64)
        out_scores = np.zeros((len(queries), k), np.float32)
        for q in range(len(queries)):
            hits = np.flatnonzero(inside[q])[:k]
            if len(hits) < min(k, len(allowed)):  # too few in the branch: exact for this one
                found, found_scores = self._exact(kind, allowed, queries[q : q + 1], k)
                out_rows[q, : found.shape[1]] = found[0]
                out_scores[q, : found.shape[1]] = found_scores[0]
            else:
                out_rows[q, : len(hits)] = rows[q, hits]
                out_scores[q, : len(hits)] = scores[q, hits]
        return out_rows, out_scores

    def _exact(self, kind: str, allowed: np.ndarray, queries: np.ndarray, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` among row positions ``allowed``: rows and scores (vectors read
        :data:`EXACT_CHUNK` rows at a time when the graph holds them)."""
        if kind in self.vectors or len(allowed) <= EXACT_CHUNK:
            rows, scores = exact_top_k(self.vectors_of(kind, allowed), queries, k)
            return allowed[rows], scores
        best_rows, best_scores = [], []
        for start in range(0, len(allowed), EXACT_CHUNK):
            chunk = allowed[start : start + EXACT_CHUNK]
            rows, scores = exact_top_k(self.vectors_of(kind, chunk), queries, k)
            best_rows.append(chunk[rows])
            best_scores.append(scores)
        rows, scores = np.hstack(best_rows), np.hstack(best_scores)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def learn_kinds(self) -> dict[str, KindProbe]:
        """Fit a kind probe per modality on the index's products and categories (needs two
        categories or more; :meth:`add` drops them, :meth:`remove` keeps them): :meth:`search`
        then re-ranks by the query's predicted category, and the images audit reads them."""
        labels = [r.get("category") for r in self.records]
        classes = sorted({label for label in labels if label})
        self.kind_probes = {}
        if len(classes) < 2:
            return self.kind_probes
        for modality in self.encoders:
            rows = np.array([i for i, label in enumerate(labels) if label and self.has[modality][i]],
                            dtype=np.int64)
            if len({labels[i] for i in rows}) >= 2:  # read back only the rows it is fitted on
                picked = rows[probe_rows(len(rows))]
                self.kind_probes[modality] = KindProbe.fit(
                    self.vectors_of(modality, picked), [labels[i] for i in picked],
                    classes=classes, prior_labels=[labels[i] for i in rows])
        return self.kind_probes

    def query_kinds(self, queries: np.ndarray, kind: str) -> np.ndarray | None:
        """(q, classes) category distribution of ``kind`` queries from the kind probes (a
        fused query's text and image parts combined), or None without probes."""
        modalities = [kind] if kind != "fused" else list(self.encoders)
        if not self.kind_probes or any(m not in self.kind_probes for m in modalities):
            return None
        if kind != "fused":
            return self.kind_probes[kind].predict_proba(queries)
        width = self.dims["text"]
        parts = {"text": unit_rows(queries[:, :width]), "image": unit_rows(queries[:, width:])}
        probes = self.kind_probes
        return combine(probes["text"].predict_proba(parts["text"]),
                       probes["image"].predict_proba(parts["image"]), probes["text"].prior)

    @property
    def backend(self) -> str:
        """``"usearch"`` when the ANN graphs answer unrestricted queries, else ``"exact"``."""
        return "usearch" if self._ann else "exact"

    # ----------------------------------------------------------------- search
    def row_of(self, product_id: Any) -> int:
        """Row position of an id.

        Raises:
            CatalogIndexError: the id is not in the index.
        """
        try:
            return self._position[str(product_id)]
        except KeyError:
            raise CatalogIndexError(f"id {product_id!r} is not in the index") from None

    def branch_rows(self, within: str) -> np.ndarray:
        """Row positions whose category is ``within`` or below it.

        Raises:
            CatalogIndexError: no product of the index is in that branch (the message suggests
                close branch names).
        """
        key = path_key(within)
        if key in self._branches:  # found once per change of the contents, not per query
            return self._branches[key]
        keys = [path_key(r["category"]) if r.get("category") else "" for r in self.records]
        rows = [i for i, k in enumerate(keys) if k == key or k.startswith(key + " > ")]
        if not rows:
            branches = sorted({" > ".join(k.split(" > ")[:d]) for k in keys if k for d in (1, 2)})
            close = difflib.get_close_matches(key, branches, n=3, cutoff=0.5)
            hint = f"; close branches: {close}" if close else f"; branches: {branches[:8]}"
            raise CatalogIndexError(
                f"--within {within!r}: no branch of the index's tree has that path{hint}"
            )
        self._branches[key] = np.asarray(rows, dtype=np.int64)
        return self._branches[key]

    def search(
        self,
        queries: np.ndarray,
        *,
        kind: str,
        k: int = 10,
        within: str | None = None,
        exact: bool = False,
        exclude: Sequence[str] = (),
        same_kind: float = 0.0,
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest products of each query: ``(id, score)`` lists, best first.

        Args:
            queries: (q, dim) vectors of ``kind`` (made with the index's encoders).
            kind: ``"text"``, ``"image"`` or ``"fused"``.
            within: restrict to a branch of the tree (``"Apparel > Shoes"``); exact below the
                ANN threshold (or with ``exact``), else the ANN's hits in the branch.
            exact: force exact search.
            exclude: ids never returned (e.g. the query product itself).
            same_kind: re-rank the :data:`PROBE_POOL` nearest by cosine + ``same_kind`` x
                the probability of each one's category for the query (the kind probes, see
                :meth:`learn_kinds`), else the :data:`SAME_KIND_POOL` nearest by cosine +
                ``same_kind`` x the share of the pool's summed cosine that its category holds
                (0: off; the scores returned stay cosines).
        """
        if kind not in self.dims:
            raise CatalogIndexError(f"this index holds no {kind} vectors; it has {self.kinds}")
        queries = unit_rows(np.atleast_2d(queries))
        if same_kind > 0:
            kinds = self.query_kinds(queries, kind)
            size = SAME_KIND_POOL if kinds is None else PROBE_POOL
            pool = self.search(queries, kind=kind, k=max(k, size), within=within,
                               exact=exact, exclude=exclude)
            return [self._by_kind(hits, same_kind, None if kinds is None else kinds[q])[:k]
                    for q, hits in enumerate(pool)]
        wanted = k + len(exclude)
        if within is not None:
            allowed = self.branch_rows(within)
            rows, scores = self._within(kind, allowed[self.has[kind][allowed]], queries, wanted,
                                        exact)
        elif exact or kind not in self._ann:
            rows, scores = self._exact(kind, np.flatnonzero(self.has[kind]), queries, wanted)
        else:
            labels, scores = self._ann[kind].search(queries, wanted)
            rows = self._rows_of_labels(labels)
        skip = set(map(str, exclude))
        out = []
        for row_list, score_list in zip(rows, scores, strict=True):
            hits = [
                (self.ids[r], round(float(s), 6))
                for r, s in zip(row_list, score_list, strict=True)
                if r >= 0 and self.ids[r] not in skip
            ]
            out.append(hits[:k])
        return out

    def _by_kind(self, hits: list[tuple[str, float]], weight: float,
                 kinds: np.ndarray | None = None) -> list[tuple[str, float]]:
        """``hits`` re-ranked by cosine + ``weight`` x their category's probability for the
        query (``kinds``, over the probes' classes), else its share of the cosines."""
        category = [self.records[self._position[i]].get("category") for i, _ in hits]
        if kinds is not None:
            column = {name: c for c, name in enumerate(next(iter(self.kind_probes.values()))
                                                       .classes)}
            mass = {name: float(kinds[column[name]]) for name in category if name in column}
        else:
            mass = {}
            for name, (_, score) in zip(category, hits, strict=True):
                if name:
                    mass[name] = mass.get(name, 0.0) + max(score, 0.0)
        total = sum(mass.values()) if kinds is None else 1.0
        if not total:
            return hits
        bonus = [weight * mass.get(name, 0.0) / total if name else 0.0 for name in category]
        # the query itself (an identical vector) stays first whatever its neighbours' kind
        order = sorted(range(len(hits)), key=lambda r: (hits[r][1] < IDENTICAL,
                                                        -(hits[r][1] + bonus[r])))
        return [hits[r] for r in order]

    def _rows_of_labels(self, labels: np.ndarray) -> np.ndarray:
        """Rows of the backend's ``labels`` (-1 where none). ``self.labels`` is ascending (new
        labels count up and are appended; removal keeps the order), so no per-query sort."""
        if len(self.labels) == 0:
            return np.full(np.shape(labels), -1, dtype=np.int64)
        rows = np.clip(np.searchsorted(self.labels, labels), 0, len(self.labels) - 1)
        return np.where(self.labels[rows] == labels, rows, -1)

    # ----------------------------------------------------------------- save / load
    def save(self, folder: str | Path) -> Path:
        """Write the index into ``folder`` (created): vectors as .npy, the rest as JSON."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for kind in self.kinds:
            saved = np.lib.format.open_memmap(folder / f"{kind}.npy", mode="w+", dtype=np.float32,
                                              shape=(len(self), self.dims[kind]))
            for start in range(0, len(self), EXACT_CHUNK):  # a chunk of vectors at a time
                rows = np.arange(start, min(start + EXACT_CHUNK, len(self)))
                saved[rows] = self.vectors_of(kind, rows)
            saved.flush()
            del saved
        np.save(folder / "labels.npy", self.labels)
        for stale in folder.glob("*.usearch"):
            stale.unlink()
        for kind, backend in self._ann.items():
            backend.save(folder / f"{kind}.usearch")
        meta = {
            "format_version": FORMAT_VERSION,
            "encoders": self.encoders,
            "specs": self.specs,
            "ann_threshold": self.ann_threshold,
            "text_weight": self.text_weight,
            "ids": self.ids,
            "records": self.records,
        }
        (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        save_probes(folder / KINDS_FILE, self.kind_probes)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> CatalogIndex:
        """Read an index written by :meth:`save` (its ANN graphs too, so nothing is rebuilt).

        Raises:
            CatalogIndexError: the folder holds no catalog index.
        """
        folder = Path(folder)
        if not (folder / META_FILE).is_file():
            raise CatalogIndexError(
                f"{folder}: expected a catalog index folder (with {META_FILE}); found none. "
                "Build one with: multimodal-cat index build FEED -o INDEX"
            )
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        threshold = meta["ann_threshold"]
        index = cls(encoders=meta["encoders"], ann_threshold=len(meta["ids"]) + 1,
                    text_weight=meta.get("text_weight", 0.5**0.5))  # before: equal weights
        index.specs = meta.get("specs", {})
        if not meta["ids"]:
            index.ann_threshold = threshold
            return index
        vectors = {m: np.load(folder / f"{m}.npy") for m in meta["encoders"]}
        records = meta["records"]
        index.add(
            meta["ids"],
            text=vectors.get("text"),
            image=vectors.get("image"),
            categories=[r.get("category") for r in records],
            records=[{k: v for k, v in r.items() if k != "category"} for r in records],
        )
        index.ann_threshold = threshold
        if (folder / "labels.npy").is_file():
            index.labels = np.load(folder / "labels.npy")
            index._next_label = int(index.labels.max(initial=-1)) + 1
        for kind in index.kinds:
            graph = folder / f"{kind}.usearch"
            if graph.is_file() and len(index) >= threshold:
                backend = USearchBackend(index.dims[kind])
                backend.load(graph)
                index._ann[kind] = backend
                index.vectors.pop(kind)  # the graph holds them
        index._refresh_ann()  # builds only the graphs that were not saved
        index.kind_probes = load_probes(folder / KINDS_FILE)
        return index


def _stack(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    return new if old is None else np.vstack([old, new])
