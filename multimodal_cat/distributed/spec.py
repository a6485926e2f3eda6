"""A picklable recipe for the predictor of a job: each Ray worker builds its own from it.

A trained model or a zero-shot categorizer holds torch modules, encoders and caches that
should not travel between processes. :class:`PredictorSpec` holds only what builds them (the
checkpoint path, or the tree and encoders, and the job's options), so a worker builds its
predictor once, when it starts. The command line builds the local job's predictor from the
same spec, through the same :meth:`PredictorSpec.build`.

Example:
    >>> spec = PredictorSpec(dry_run=True)
    >>> built = spec.build()
    >>> type(built.predictor).__name__, built.mapper, built.names
    ('DryRunPredictor', None, [])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multimodal_cat.mapping.apply import CategoryMapper
    from multimodal_cat.predictors.base import Predictor
    from multimodal_cat.review.routing import ReviewRouter


@dataclass(frozen=True)
class PredictorSpec:
    """What builds a job's predictor, mapper and review router (plain, picklable values).

    Attributes:
        model: A checkpoint folder or hub id; ``None`` for zero-shot.
        taxonomy: Zero-shot: the tree to search (a shipped name or a file).
        dry_run: No model: placeholder categories (checks feed, images and output).
        bf16: Run the checkpoint's towers under bf16 autocast.
        num_threads: Torch threads of each predictor (``None``: torch's choice).
        image_encoder: Zero-shot only: an aligned image-text model.
        text_encoder: Zero-shot only: the text encoder.
        adapt: Zero-shot only: smooth each batch over its nearest neighbours.
        map_to: Taxonomy names or mapping files for the mapped columns.
        review_threshold: Auto-accept at or above this confidence; ``None``: no routing.
        review_source: Where the threshold comes from (for the summary).
    """

    model: str | None = None
    taxonomy: str | None = None
    dry_run: bool = False
    bf16: bool = False
    num_threads: int | None = None
    image_encoder: str | None = None
    text_encoder: str = "minilm"
    adapt: bool = False
    map_to: tuple[str, ...] = ()
    review_threshold: float | None = None
    review_source: str = ""

    def build(self) -> BuiltPredictor:
        """The predictor, its mapper and router, and the mapped trees' column names.

        Raises:
            ValueError, KeyError, OSError: The model, tree or a mapping cannot be loaded.
        """
        if self.dry_run:
            from multimodal_cat.predictors.dry_run import DryRunPredictor

            return BuiltPredictor(DryRunPredictor(), None, [], None)  # nothing to map
        from multimodal_cat.mapping import Mapping
        from multimodal_cat.mapping.apply import CategoryMapper
        from multimodal_cat.predictors.build import build_predictor

        if self.num_threads is not None:
            import torch

            torch.set_num_threads(self.num_threads)  # zero-shot encoders; a checkpoint sets its own
        predictor = build_predictor(
            model=self.model,
            taxonomy=self.taxonomy or (None if self.model else "shopify"),
            bf16=self.bf16,
            num_threads=self.num_threads,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
            adapt=self.adapt,
        )
        targets = [_map_target(target, predictor.taxonomy) for target in self.map_to]
        mapper = CategoryMapper.to_targets(predictor.taxonomy, targets) if targets else None
        # the output's columns: a mapping file's target tree by its short name (google_...)
        names = [t.target_name.split("/")[0] if isinstance(t, Mapping) else t for t in targets]
        return BuiltPredictor(predictor, mapper, names, self.router(predictor))

    def router(self, predictor: Any) -> ReviewRouter | None:
        """The review router over ``predictor``'s tree, or ``None`` without a threshold."""
        if self.review_threshold is None:
            return None
        from multimodal_cat.review.routing import ReviewRouter

        return ReviewRouter(predictor.taxonomy, self.review_threshold, self.review_source)


@dataclass
class BuiltPredictor:
    """What :meth:`PredictorSpec.build` returns."""

    predictor: Predictor
    mapper: CategoryMapper | None
    names: list[str]
    router: ReviewRouter | None


def _map_target(target: str, source: Any) -> Any:
    """A ``map_to`` value: a mapping file read against the predictor's tree, else the name."""
    from multimodal_cat.mapping.rules_io import is_mapping_file
    from multimodal_cat.mapping.shipped import load_mapping_file

    return load_mapping_file(target, source=source) if is_mapping_file(target) else target
