"""Infer a mapping between two taxonomy trees, top-down, with a confidence on each rule.

Source categories are visited parents first. A category with a published rule keeps it;
any other is matched among candidates (see :mod:`multimodal_cat.align.candidates`) around
its parent's target, so a deep source leaf whose concept the target lacks maps to the
nearest suitable ancestor. The re-ranker's softmax over the candidates is the confidence.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> src = Taxonomy.from_paths(["Shoes", "Shoes > Boots", "Shoes > Boots > Rain Boots"])
    >>> dst = Taxonomy.from_paths(["Shoes", "Shoes > Boots"], ids=["1", "2"])
    >>> result = MappingAligner(text_encoder=None).align(src, dst)
    >>> result.mapping.map("Shoes > Boots > Rain Boots").target_ids
    ('2',)
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_cat.align.backoff import Choice, choose
from multimodal_cat.align.candidates import (
    Reference,
    build_index,
    candidate_features,
    lexical_share,
)
from multimodal_cat.align.embeddings import TreeView, encoding_settings, resolve_text_encoder
from multimodal_cat.align.rerank import SEMANTIC_WEIGHTS, CandidateGroup, ReRanker
from multimodal_cat.align.review import review_list
from multimodal_cat.align.structure import agreement, assign_roots, descendants, votes, with_support
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.taxonomy import Taxonomy


@dataclass(frozen=True)
class ReviewItem:
    """An inferred rule to check by hand, with the runner-up candidate."""

    source_id: str
    source_path: str
    target_id: str
    target_path: str
    confidence: float
    runner_up_id: str = ""
    runner_up_path: str = ""
    runner_up_confidence: float = 0.0
    kind: str = "best"
    reason: str = ""


@dataclass
class AlignmentResult:
    """What :meth:`MappingAligner.align` returns.

    Attributes:
        mapping: published rules kept as they are, plus ``inferred`` rules with confidences.
        review: the least confident inferred rules, least confident first.
        timings: seconds spent embedding the trees and inferring the rules.
        details: ``lexical_share`` (share of source categories with a shared path prefix or a
            same-named target) and ``ranker`` (``default``; ``semantic`` when that share is
            below ``lexical_min_share``; ``fitted`` or ``given``).
    """

    mapping: Mapping
    review: list[ReviewItem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    def write_review_csv(self, path: str | Path) -> Path:
        """Write the review list as CSV (one row per rule, header included)."""
        path = Path(path)
        names = list(ReviewItem.__dataclass_fields__)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            for item in self.review:
                writer.writerow(asdict(item))
        return path


@dataclass
class _Context:
    """What one :meth:`MappingAligner.align` call works on."""

    source: TreeView
    target: TreeView
    index: Any
    below: dict[int, list[int]]
    votes: list[int]
    ranker: ReRanker


class MappingAligner:
    """Infers rules from a source tree to a target tree.

    Args:
        text_encoder: a short name (``"minilm"``, the offline default), a hub id or folder,
            an object with ``encode(texts) -> np.ndarray``, ``key`` and ``dim``, or ``None``
            for lexical evidence only.
        cache: an :class:`~multimodal_cat.encoders.EmbeddingCache` (default: the user cache),
            or ``False`` to keep nothing on disk.
        top_k: nearest targets (by path and by name) added to each candidate set.
        review_fraction: share of the inferred rules put on the review list.
        ranker: candidate scorer; default weights are used until :meth:`fit` is called.
        ancestor_threshold: when the best candidate's probability is below it, map to the
            deepest candidate whose subtree (itself and its candidate descendants) holds that
            much probability, i.e. to an ancestor when unsure; ``None`` turns this off. 0.5 was
            chosen on a held-out fifth of the Shopify 2024-07 -> Google rules.
        bf16: encode the trees under bf16 autocast. ``None`` (default): on when the text
            encoder is a :class:`~multimodal_cat.encoders.TextEncoder` on hardware that runs
            bf16 natively (2.4x faster on this AMX CPU; MiniLM vectors keep a cosine
            above 0.9999 with fp32 and the mapping benchmark its accuracy); ``False`` keeps fp32.
            bf16 vectors are cached apart from fp32 ones.
        workers: threads that encode the trees, one torch thread each (see
            :meth:`~multimodal_cat.encoders.TextEncoder.encode`); ``None`` (default): one per
            torch thread on CPU. On cores shared with other jobs this is several times
            faster than one batch at a time on torch's threads.

    Example:
        >>> aligner = MappingAligner(text_encoder="minilm")  # doctest: +SKIP
        >>> old = Mapping.from_file("2024-07/from_shopify.yml", source=old_tree)  # doctest: +SKIP
        >>> aligner.fit(old, target=google)  # doctest: +SKIP
        >>> result = aligner.align(shopify, google, published=old)  # doctest: +SKIP
        >>> result.mapping.to_yaml("mapping.yml")  # doctest: +SKIP
    """

    def __init__(
        self,
        text_encoder: Any = "minilm",
        *,
        cache: Any = None,
        top_k: int = 10,
        review_fraction: float = 0.1,
        review_below: float | None = None,
        ranker: ReRanker | None = None,
        ancestor_threshold: float | None = 0.5,
        ahead: float = 3.0,
        lexical_floor: bool = True,
        sticky_threshold: float | None = 0.9,
        structure_weight: float = 1.0,
        root_reuse_penalty: float = 1.0,
        lexical_min_share: float = 0.2,
        family_penalty: float | None = 1.0,
        bf16: bool | None = None,
        workers: int | None = None,
        progress: bool = True,
    ) -> None:
        if not 0.0 <= review_fraction <= 1.0:
            raise ValueError(f"expected review_fraction in [0, 1]; got {review_fraction}")
        if review_below is not None and not 0.0 <= review_below <= 1.0:
            raise ValueError(f"expected review_below in [0, 1] or None; got {review_below}")
        if workers is not None and workers < 1:
            raise ValueError(f"expected workers >= 1 or None; got {workers}")
        self.text_encoder = text_encoder
        self.cache = cache
        self.top_k = top_k
        self.review_fraction = review_fraction
        self.review_below = review_below
        self.ranker = ranker or ReRanker()
        self._default_ranker = ranker is None
        self.lexical_min_share = lexical_min_share
        self.family_penalty = family_penalty
        self.ancestor_threshold = ancestor_threshold
        self.ahead = ahead
        self.lexical_floor = lexical_floor
        self.sticky_threshold = sticky_threshold
        self.structure_weight = structure_weight
        self.root_reuse_penalty = root_reuse_penalty
        self.bf16 = bf16
        self.workers = workers
        self.progress = progress
        self._encoder: Any = None
        self._views: dict[int, tuple[Taxonomy, TreeView]] = {}
        self.reference_: tuple[TreeView, dict[int, str]] | None = None

    # ------------------------------------------------------------------ helpers
    def view(self, taxonomy: Taxonomy) -> TreeView:
        """The embedded view of ``taxonomy`` (computed once per tree object)."""
        found = self._views.get(id(taxonomy))
        if found is not None and found[0] is taxonomy:
            return found[1]
        if self._encoder is None and self.text_encoder is not None:
            self._encoder = resolve_text_encoder(self.text_encoder)
        bf16, workers = encoding_settings(self._encoder, self.bf16, self.workers)
        view = TreeView.from_taxonomy(
            taxonomy, self._encoder, self.cache, bf16=bf16, workers=workers, progress=self.progress
        )
        self._views[id(taxonomy)] = (taxonomy, view)
        return view

    @staticmethod
    def _rule_positions(mapping: Mapping, source: TreeView, target: TreeView) -> dict[int, int]:
        """Source position -> first target position, for rules whose ids both trees have."""
        s_pos = {cid: i for i, cid in enumerate(source.ids)}
        t_pos = {cid: i for i, cid in enumerate(target.ids)}
        out = {}
        for sid, rule in mapping.rules.items():
            if sid in s_pos and rule.target_ids and rule.target_ids[0] in t_pos:
                out[s_pos[sid]] = t_pos[rule.target_ids[0]]
        return out

    # ------------------------------------------------------------------ learning
    def fit(
        self, known: Mapping, *, source: Taxonomy | None = None, target: Taxonomy | None = None
    ) -> MappingAligner:
        """Learn the re-ranker's weights from known rules (e.g. an older release's mapping).

        Each known rule becomes one choice among its candidates, its parent's known target
        as the anchor. The known rules also serve as nearest-neighbour evidence in
        :meth:`align` (a new category close to a known one tends to share its target).

        Raises:
            ValueError: when the trees are missing or no rule applies to them.
        """
        source = source or known.source
        target = target or known.target
        if source is None or target is None:
            raise ValueError(
                "expected the known mapping's source and target trees (pass source= and target=)"
            )
        self.ranker = ReRanker.fit(self._groups(known, source, target))
        self._default_ranker = False
        s_view, t_view = self.view(source), self.view(target)
        rules = self._rule_positions(known, s_view, t_view)
        self.reference_ = (s_view, {s: t_view.ids[t] for s, t in rules.items()})
        return self

    def _groups(self, known: Mapping, source: Taxonomy, target: Taxonomy) -> list[CandidateGroup]:
        """One candidate group per known rule whose parent's rule is known too.

        Raises:
            ValueError: when no rule applies to the trees.
        """
        s_view, t_view = self.view(source), self.view(target)
        rules = self._rule_positions(known, s_view, t_view)
        index = build_index(
            s_view,
            t_view,
            top_k=self.top_k,
            reference=Reference(s_view, rules),
            leave_one_out=True,
        )
        groups = []
        for s, truth in rules.items():
            parent = s_view.parents[s]
            if parent >= 0 and parent not in rules:
                continue
            cands, feats = candidate_features(s_view, t_view, index, s, rules.get(parent, -1))
            hits = np.nonzero(cands == truth)[0]
            if len(hits):
                groups.append(CandidateGroup(feats, int(hits[0])))
        if not groups:
            raise ValueError(
                f"expected known rules between {source.name!r} and {target.name!r}; none applies"
            )
        return groups

    # ------------------------------------------------------------------ inference
    def _reference(self, t_view: TreeView) -> Reference | None:
        """The fitted known rules as nearest-neighbour evidence, in ``t_view`` positions."""
        if self.reference_ is None:
            return None
        t_pos = {cid: i for i, cid in enumerate(t_view.ids)}
        ref_view, ref_targets = self.reference_
        return Reference(ref_view, {s: t_pos[t] for s, t in ref_targets.items() if t in t_pos})

    def _scored(self, ctx: _Context, s: int, anchor: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of source ``s`` and their probabilities (names, structure, support)."""
        cands, feats = candidate_features(
            ctx.source, ctx.target, ctx.index, s, anchor, floor=self.lexical_floor
        )
        if len(cands) == 0:
            return cands, np.zeros(0)
        probs = ctx.ranker.probabilities(feats)
        if self.structure_weight and anchor < 0 and s in ctx.below:  # roots: see structure.py
            support = agreement(ctx.target.parents, ctx.below, ctx.votes, s, cands)
            probs = with_support(probs, support, self.structure_weight)
        return cands, probs

    def _infer_family(
        self, ctx: _Context, family: list[int], anchor: int, sticky: bool
    ) -> dict[int, ReviewItem]:
        """Rules for sibling source categories whose parent maps to ``anchor``.

        Each sibling chooses alone (:func:`choose`); when two or more claim the same child of
        ``anchor``, the children of ``anchor`` are shared out jointly (:func:`assign_roots`
        with ``slot=anchor``): a sibling keeps a claimed target only when it is clearly the
        better claimant, otherwise takes its next best child of ``anchor``.
        """
        rows, out = {}, {}
        for s in family:
            cands, probs = self._scored(ctx, s, anchor)
            if len(cands):
                rows[s] = (cands, probs)
                out[s] = self._item(
                    ctx, s, cands, probs, self._choose(ctx, s, cands, probs, sticky)
                )
        claims = Counter(item.target_id for item in out.values())
        parents = ctx.target.parents
        contested = [
            s
            for s, item in out.items()
            if claims[item.target_id] > 1
            and parents[ctx.target.ids.index(item.target_id)] == anchor
        ]
        if anchor < 0 or self.family_penalty is None or len(contested) < 2:
            return out
        picked = assign_roots(
            {s: rows[s] for s in contested}, parents, reuse_penalty=self.family_penalty, slot=anchor
        )
        for s, (g, p) in picked.items():
            if g != ctx.target.ids.index(out[s].target_id) and parents[g] == anchor:
                out[s] = self._item(ctx, s, *rows[s], Choice(g, p, "family-assignment"))
        return out

    def _choose(
        self, ctx: _Context, s: int, cands: np.ndarray, probs: np.ndarray, sticky: bool
    ) -> Choice:
        return choose(
            ctx.target.parents,
            cands,
            probs,
            threshold=self.sticky_threshold if sticky else self.ancestor_threshold,
            ahead=float("inf") if sticky else self.ahead,
            source_is_root=ctx.source.parents[s] < 0,
        )

    def _infer_one(
        self, ctx: _Context, s: int, anchor: int, sticky: bool = False
    ) -> tuple[int, ReviewItem | None]:
        """The chosen target's position and a record of it, its confidence and the runner-up.

        Returns ``(-1, None)`` when there is no candidate at all.
        """
        s_view, t_view = ctx.source, ctx.target
        cands, probs = self._scored(ctx, s, anchor)
        if len(cands) == 0:
            return -1, None
        choice = choose(
            t_view.parents,
            cands,
            probs,
            threshold=self.sticky_threshold if sticky else self.ancestor_threshold,
            ahead=float("inf") if sticky else self.ahead,
            source_is_root=s_view.parents[s] < 0,
        )
        return choice.position, self._item(ctx, s, cands, probs, choice)

    @staticmethod
    def _item(
        ctx: _Context, s: int, cands: np.ndarray, probs: np.ndarray, choice: Choice
    ) -> ReviewItem:
        s_view, t_view = ctx.source, ctx.target
        best = choice.position
        order = np.argsort(-probs, kind="stable")
        runner = [j for j in order.tolist() if int(cands[j]) != best][:1]
        second = int(cands[runner[0]]) if runner else -1
        return ReviewItem(
            s_view.ids[s],
            s_view.paths[s],
            t_view.ids[best],
            t_view.paths[best],
            round(float(np.clip(choice.confidence, 0.0, 1.0)), 4),
            t_view.ids[second] if second >= 0 else "",
            t_view.paths[second] if second >= 0 else "",
            round(float(probs[runner[0]]), 4) if runner else 0.0,
            choice.kind,
        )

    def _align_roots(self, ctx: _Context, roots: list[int]) -> dict[int, ReviewItem]:
        """The source roots' rules, chosen jointly (see :func:`assign_roots`)."""
        rows = {}
        for s in roots:
            cands, probs = self._scored(ctx, s, -1)
            if len(cands):
                rows[s] = (cands, probs)
        if not rows:
            return {}
        picked = assign_roots(rows, ctx.target.parents, reuse_penalty=self.root_reuse_penalty)
        out = {}
        for s, (g, p) in picked.items():
            cands, probs = rows[s]
            out[s] = self._item(ctx, s, cands, probs, Choice(g, p, "root-assignment"))
        return out

    def align(
        self, source: Taxonomy, target: Taxonomy, *, published: Mapping | None = None
    ) -> AlignmentResult:
        """Map every source category; published rules are kept, the others inferred.

        Returns:
            An :class:`AlignmentResult` (mapping, review list, timings).
        """
        start = time.perf_counter()
        s_view, t_view = self.view(source), self.view(target)
        embedded = time.perf_counter()
        kept = self._rule_positions(published, s_view, t_view) if published is not None else {}
        index = build_index(s_view, t_view, top_k=self.top_k, reference=self._reference(t_view))
        share = lexical_share(s_view, index)
        semantic = self._default_ranker and share < self.lexical_min_share
        ranker = ReRanker(dict(SEMANTIC_WEIGHTS)) if semantic else self.ranker
        ctx = _Context(
            s_view,
            t_view,
            index,
            descendants(s_view),
            votes(s_view, t_view, index.lexical),
            ranker,
        )
        chosen: dict[int, int] = {}
        missing: set[int] = set()  # sources whose concept the target lacks (mapped coarser)
        items: dict[int, ReviewItem] = {}
        rules: list[MappingRule] = []
        unmapped = set(published.unmapped_ids) if published is not None else set()
        todo = []
        for s in s_view.top_down():
            sid = s_view.ids[s]
            if published is not None and sid in published.rules:
                rules.append(published.rules[sid])
                if s in kept:
                    chosen[s] = kept[s]
            elif sid not in unmapped:
                todo.append(s)
        roots = [s for s in todo if s_view.parents[s] < 0]
        for s, item in self._align_roots(ctx, roots).items():
            chosen[s], items[s] = t_view.ids.index(item.target_id), item
        waiting = set(todo)
        for s in todo:
            if s in items:
                continue
            parent = s_view.parents[s]
            anchor = chosen.get(parent, -1) if parent >= 0 else -1
            family = [c for c in s_view.children[parent] if c in waiting] if parent >= 0 else [s]
            waiting -= set(family)
            for c, item in self._infer_family(ctx, family, anchor, parent in missing).items():
                chosen[c], items[c] = t_view.ids.index(item.target_id), item
                if item.kind == "back-off" or chosen[c] == anchor:
                    missing.add(c)
        for item in items.values():
            rules.append(
                MappingRule(item.source_id, (item.target_id,), "inferred", item.confidence)
            )
        review = review_list(
            items,
            s_view.parents,
            t_view.parents,
            chosen,
            fraction=self.review_fraction,
            below=self.review_below,
        )
        mapping = Mapping(rules, source, target, unmapped_ids=sorted(unmapped & set(source.ids())))
        done = time.perf_counter()
        timings = {"embed_s": round(embedded - start, 3), "infer_s": round(done - embedded, 3)}
        details = {
            "lexical_share": round(share, 4),
            "ranker": "semantic" if semantic else "default",
        }
        if not self._default_ranker:
            details["ranker"] = "fitted" if self.reference_ is not None else "given"
        return AlignmentResult(mapping, review, timings, details)
