"""Infer a mapping between two taxonomy trees, top-down, with a confidence on each rule.

A category with a published rule keeps it. The source roots are aligned jointly first
(:mod:`~multimodal_cat.align.structure`); then each family of siblings is matched among
candidates (:mod:`~multimodal_cat.align.candidates`) around its parent's target, scored by
the re-ranker, and each picks its best candidate or backs off to an ancestor holding the
probability mass (:mod:`~multimodal_cat.align.backoff`); siblings contesting one target
share them out jointly. The chosen target's probability (or mass) is the confidence, capped
at the parent's confidence when the rule stays at or under the parent's target
(:func:`~multimodal_cat.align.review.parent_capped`).

The mode follows the trees' languages (:mod:`~multimodal_cat.align.mode`): across languages
the families are matched as a whole by names and shape first
(:mod:`~multimodal_cat.align.families`). A rule whose category and descendants vote for
another target branch is listed for review with its confidence lowered
(:func:`~multimodal_cat.align.review.vote_support`).

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> src = Taxonomy.from_paths(["Shoes", "Shoes > Boots", "Shoes > Boots > Rain Boots"])
    >>> dst = Taxonomy.from_paths(["Shoes", "Shoes > Boots"], ids=["1", "2"])
    >>> result = MappingAligner(text_encoder=None).align(src, dst)
    >>> result.mapping.map("Shoes > Boots > Rain Boots").target_ids
    ('2',)
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from multimodal_cat.align.backoff import Choice, choose
from multimodal_cat.align.candidates import (
    Reference,
    build_index,
    candidate_features,
    lexical_share,
    rule_positions,
)
from multimodal_cat.align.embeddings import TreeView, encoding_settings, resolve_text_encoder
from multimodal_cat.align.families import FamilyMatcher, matched_items
from multimodal_cat.align.language import TreeLanguage, tree_language
from multimodal_cat.align.mode import (
    MULTILINGUAL,
    LanguageWarning,
    choose_mode,
    encoder_advice,
    encoder_name,
)
from multimodal_cat.align.rerank import SEMANTIC_WEIGHTS, CandidateGroup, ReRanker
from multimodal_cat.align.result import AlignmentResult, ReviewItem, review_item
from multimodal_cat.align.review import parent_capped, review_list, vote_support
from multimodal_cat.align.structure import (
    agreement,
    assign_roots,
    descendants,
    outbid_rows,
    votes,
    with_support,
)
from multimodal_cat.mapping import Mapping, MappingRule
from multimodal_cat.taxonomy import Taxonomy


@dataclass
class _Context:
    """What one :meth:`MappingAligner.align` call works on."""

    source: TreeView
    target: TreeView
    index: Any
    below: dict[int, list[int]]
    votes: list[int]
    ranker: ReRanker
    learned: bool = False  # known rules fitted: the no-rules heuristics are off (see fit)
    matcher: FamilyMatcher | None = None  # families matched by shape first (see families.py)


class MappingAligner:
    """Infers rules from a source tree to a target tree.

    Args:
        text_encoder: a short name (``"minilm"``, the offline default), a hub id or folder,
            an object with ``encode(texts) -> np.ndarray``, ``key`` and ``dim``, or ``None``
            for lexical evidence only.
        cache: an :class:`~multimodal_cat.encoders.EmbeddingCache` (default: the user cache),
            or ``False`` to keep nothing on disk.
        top_k: nearest targets (by path and by name) added to each candidate set.
        review_fraction, review_below: the least confident share of inferred rules, and every
            rule below ``review_below``, go on the review list (with the structural signals).
        ranker: candidate scorer; default weights are used until :meth:`fit` is called
            (``SEMANTIC_WEIGHTS``, without the word features, when the trees are in two
            languages: see :mod:`~multimodal_cat.align.mode`).
        ancestor_threshold, ahead: back-off (see :func:`~multimodal_cat.align.backoff.choose`);
            0.5 was chosen on a held-out fifth of the Shopify 2024-07 -> Google rules, ahead 3
            on legacy 2022-02 -> 2025-01. ``None`` keeps the best candidate.
        sticky_threshold: threshold for the children of a category mapped coarser (the
            target lacks its concept, likely theirs too).
        lexical_floor: keep candidates at or below the longest shared path prefix. After
            :meth:`fit` it is off, with ``ahead`` and ``sticky_threshold``, and back-off stays
            among the candidates (learned weights carry that evidence; see the benchmarks).
        structure_weight: weight of the descendants' votes for the source roots' candidates.
        root_reuse_penalty, family_penalty: log-cost of each further source root (sibling)
            sent to one target root (child of the parent's target); ``None``: siblings alone.
        family_structure: match each family of siblings as a whole by names and shape first
            (:mod:`~multimodal_cat.align.families`); ``None`` (default): on when the trees
            are in different languages (:mod:`~multimodal_cat.align.language`); where a
            tree's language is not recognised, when under ``lexical_min_share`` of the source
            categories share a path prefix or a name with the target.
        multilingual: the encoder (a name or an object, as ``text_encoder``) used instead of
            an English-only ``text_encoder`` when a tree is in another language and that
            encoder is installed (and nothing was fitted);
            ``None``: only warn (:class:`~multimodal_cat.align.mode.LanguageWarning`).
        bf16: encode the trees under bf16 autocast. ``None`` (default): on when the text
            encoder is a :class:`~multimodal_cat.encoders.TextEncoder` on hardware that runs
            bf16 natively (2.4x faster on this AMX CPU; MiniLM vectors keep a cosine
            above 0.9999 with fp32 and the mapping benchmark its accuracy); ``False`` keeps fp32.
            bf16 vectors are cached apart from fp32 ones.
        workers: threads that encode the trees, one torch thread each (see
            :meth:`~multimodal_cat.encoders.TextEncoder.encode`); ``None`` (default): one per
            torch thread on CPU. On cores shared with other jobs this is several times
            faster than one batch at a time on torch's threads.
        progress: show a progress bar while trees are encoded.

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
        family_structure: bool | None = None,
        multilingual: Any = MULTILINGUAL,
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
        self.family_structure = family_structure
        self.multilingual = multilingual
        self.ancestor_threshold = ancestor_threshold
        self.ahead = ahead
        self.lexical_floor = lexical_floor
        self.sticky_threshold = sticky_threshold
        self.structure_weight = structure_weight
        self.root_reuse_penalty = root_reuse_penalty
        self.bf16 = bf16
        self.workers = workers
        self.progress = progress
        self._encoders: dict[Any, Any] = {}  # name (or the object's id) -> encoder
        self._views: dict[tuple[int, Any], tuple[Taxonomy, TreeView]] = {}
        self.reference_: tuple[TreeView, dict[int, str]] | None = None

    def view(self, taxonomy: Taxonomy, encoder: Any = None) -> TreeView:
        """The embedded view of ``taxonomy`` (computed once per tree object and encoder;
        ``encoder`` defaults to ``text_encoder``)."""
        spec = self.text_encoder if encoder is None else encoder
        name = spec if spec is None or isinstance(spec, str) else id(spec)
        found = self._views.get((id(taxonomy), name))
        if found is not None and found[0] is taxonomy:
            return found[1]
        if name not in self._encoders:
            self._encoders[name] = resolve_text_encoder(spec)
        resolved = self._encoders[name]
        bf16, workers = encoding_settings(resolved, self.bf16, self.workers)
        view = TreeView.from_taxonomy(
            taxonomy, resolved, self.cache, bf16=bf16, workers=workers, progress=self.progress
        )
        self._views[(id(taxonomy), name)] = (taxonomy, view)
        return view

    def _encoder_for(self, source: TreeLanguage, target: TreeLanguage) -> tuple[Any, list[str]]:
        """The encoder for trees in these languages, and the warnings to give (see
        :func:`~multimodal_cat.align.mode.encoder_advice`); a fitted aligner keeps its own."""
        fitted = self.reference_ is not None
        switch_to, message = encoder_advice(
            self.text_encoder, source, target, switch_to=None if fitted else self.multilingual
        )
        if not message:
            return None, []
        if switch_to is None:
            warnings.warn(message, LanguageWarning, stacklevel=3)
        return switch_to, [message]

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
            raise ValueError("expected the known mapping's trees (pass source= and target=)")
        self.ranker = ReRanker.fit(self._groups(known, source, target))
        self._default_ranker = False
        s_view, t_view = self.view(source), self.view(target)
        rules = rule_positions(known, s_view, t_view)
        self.reference_ = (s_view, {s: t_view.ids[t] for s, t in rules.items()})
        return self

    def _groups(self, known: Mapping, source: Taxonomy, target: Taxonomy) -> list[CandidateGroup]:
        """One candidate group per known rule whose parent's rule is known too.

        Raises:
            ValueError: when no rule applies to the trees.
        """
        s_view, t_view = self.view(source), self.view(target)
        rules = rule_positions(known, s_view, t_view)
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
            ctx.source,
            ctx.target,
            ctx.index,
            s,
            anchor,
            floor=self.lexical_floor and not ctx.learned,
        )
        if len(cands) == 0:
            return cands, np.zeros(0)
        probs = ctx.ranker.probabilities(feats)
        if self.structure_weight and anchor < 0 and s in ctx.below:  # roots: see structure.py
            support = agreement(ctx.target.parents, ctx.below, ctx.votes, s, cands)
            probs = with_support(probs, support, self.structure_weight)
        return cands, probs

    def _infer_family(
        self, ctx: _Context, family: list[int], anchor: int, sticky: bool, confidence: float = 1.0
    ) -> dict[int, ReviewItem]:
        """Rules for sibling source categories whose parent maps to ``anchor``.

        Each sibling chooses alone (:func:`choose`); when two or more claim the same child of
        ``anchor`` as their best candidate, the children of ``anchor`` are shared out jointly
        (:func:`assign_roots` with ``slot=anchor``): a sibling keeps a claimed target only when
        it is clearly the better claimant, otherwise takes its next best child of ``anchor``,
        unless another sibling scores that one higher (:func:`outbid_rows`: no permutation of
        siblings). Siblings that backed off to a broader target claim nothing (GS1's food
        families may all belong under Google's Food Items). With a matcher, the siblings it
        matches (``confidence``: their parent's) are settled first.
        """
        matched = matched_items(ctx.matcher, family, anchor, confidence) if anchor >= 0 else {}
        rows, out = {}, {}
        for s in (s for s in family if s not in matched):
            cands, probs = self._scored(ctx, s, anchor)
            if len(cands):
                rows[s] = (cands, probs)
                choice = self._choose(ctx, s, cands, probs, sticky)
                out[s] = review_item(ctx.source, ctx.target, s, cands, probs, choice)
        best = {s: item for s, item in out.items() if item.kind == "best"}
        claims = Counter(item.target_id for item in best.values())
        parents = ctx.target.parents
        contested = [
            s
            for s, item in best.items()
            if claims[item.target_id] > 1
            and parents[ctx.target.index.position(item.target_id)] == anchor
        ]
        if anchor < 0 or self.family_penalty is None or len(contested) < 2:
            return {**out, **matched}
        picked = assign_roots(
            {s: rows[s] for s in contested}, parents, reuse_penalty=self.family_penalty, slot=anchor
        )
        outbid = outbid_rows(picked, {c: rows[c] for c in contested})
        for s, (g, p) in picked.items():
            if s in outbid:
                continue  # another sibling matches g better: no permutation of siblings
            if g != ctx.target.index.position(out[s].target_id) and parents[g] == anchor:
                out[s] = review_item(
                    ctx.source, ctx.target, s, *rows[s], Choice(g, p, "family-assignment")
                )
        return {**out, **matched}

    def _choose(
        self, ctx: _Context, s: int, cands: np.ndarray, probs: np.ndarray, sticky: bool
    ) -> Choice:
        sticky = sticky and self.sticky_threshold is not None and not ctx.learned
        return choose(
            ctx.target.parents,
            cands,
            probs,
            threshold=self.sticky_threshold if sticky else self.ancestor_threshold,
            ahead=float("inf") if sticky or ctx.learned else self.ahead,
            source_is_root=ctx.source.parents[s] < 0,
            candidates_only=ctx.learned,
        )

    def _align_roots(self, ctx: _Context, roots: list[int]) -> dict[int, ReviewItem]:
        """The source roots' rules, chosen jointly (see :func:`assign_roots`).

        A root that keeps a deep (non-root) candidate keeps it as any best candidate is kept
        (:func:`choose`: probable enough or clearly ahead); otherwise it backs off along that
        candidate's line to the target holding the mass (GS1's root "Tools/Equipment - Power"
        took Google's "Power Tool Batteries", and its whole subtree followed)."""
        out = matched_items(ctx.matcher, roots, -1, 1.0)
        rows = {}
        for s in (s for s in roots if s not in out):
            cands, probs = self._scored(ctx, s, -1)
            if len(cands):
                rows[s] = (cands, probs)
        if not rows:
            return out
        picked = assign_roots(rows, ctx.target.parents, reuse_penalty=self.root_reuse_penalty)
        for s, (g, p) in picked.items():
            cands, probs = rows[s]
            choice = Choice(g, p, "root-assignment")
            if ctx.target.parents[g] >= 0:  # a deep target: kept only as any best would be
                alone = self._choose(ctx, s, cands, probs, False)
                if alone.position != g and alone.position in ctx.target.ancestors(g):
                    choice = Choice(alone.position, alone.confidence, "root-assignment")
            out[s] = review_item(ctx.source, ctx.target, s, cands, probs, choice)
        return out

    def align(
        self, source: Taxonomy, target: Taxonomy, *, published: Mapping | None = None
    ) -> AlignmentResult:
        """Map every source category; published rules are kept, the others inferred.

        Returns:
            An :class:`AlignmentResult` (mapping, review list, timings).
        """
        start = time.perf_counter()
        languages = tree_language(source), tree_language(target)
        encoder, notes = self._encoder_for(*languages)
        s_view, t_view = self.view(source, encoder), self.view(target, encoder)
        embedded = time.perf_counter()
        kept = rule_positions(published, s_view, t_view) if published is not None else {}
        index = build_index(s_view, t_view, top_k=self.top_k, reference=self._reference(t_view))
        share = lexical_share(s_view, index)
        mode = choose_mode(
            *languages,
            family_structure=self.family_structure,
            lexical_share=share,
            min_share=self.lexical_min_share,
        )
        semantic = self._default_ranker and mode.semantic
        ranker = ReRanker(dict(SEMANTIC_WEIGHTS)) if semantic else self.ranker
        structural = mode.family_structure
        ctx = _Context(
            s_view,
            t_view,
            index,
            descendants(s_view),
            votes(s_view, t_view, index.lexical),
            ranker,
            self.reference_ is not None,
            FamilyMatcher(s_view, t_view).refined() if structural else None,
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
            chosen[s], items[s] = t_view.index.position(item.target_id), item
        waiting = set(todo)
        for s in todo:
            if s in items:
                continue
            parent = s_view.parents[s]
            anchor = chosen.get(parent, -1) if parent >= 0 else -1
            family = [c for c in s_view.children[parent] if c in waiting] if parent >= 0 else [s]
            waiting -= set(family)
            confidence = items[parent].confidence if parent in items else 1.0
            inferred = self._infer_family(ctx, family, anchor, parent in missing, confidence)
            for c, item in inferred.items():
                chosen[c], items[c] = t_view.index.position(item.target_id), item
                if item.kind == "back-off" or chosen[c] == anchor:
                    missing.add(c)
        unrelated = vote_support(items, ctx.below, ctx.votes, t_view.parents, chosen)
        for s, factor in unrelated.items():
            items[s] = replace(items[s], confidence=round(items[s].confidence * factor, 4))
        for s, confidence in parent_capped(items, s_view, t_view.parents, chosen).items():
            items[s] = replace(items[s], confidence=confidence)
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
            unrelated=unrelated,
        )
        mapping = Mapping(rules, source, target, unmapped_ids=sorted(unmapped & set(source.ids())))
        done = time.perf_counter()
        timings = {"embed_s": round(embedded - start, 3), "infer_s": round(done - embedded, 3)}
        kind = "semantic" if semantic else "default" if self._default_ranker else "fitted/given"
        details = {
            "mode": mode.name,
            "mode_reason": mode.reason,
            "languages": {"source": languages[0].code, "target": languages[1].code},
            "language_evidence": {"source": languages[0].evidence, "target": languages[1].evidence},
            "encoder": encoder_name(encoder or self.text_encoder),
            "warnings": notes,
            "lexical_share": round(share, 4),
            "ranker": kind,
            "family_structure": structural,
        }
        return AlignmentResult(mapping, review, timings, details)
