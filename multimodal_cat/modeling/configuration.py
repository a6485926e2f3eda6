"""Configuration of :class:`~multimodal_cat.modeling.MultimodalCatModel`.

The config holds the two tower configs (any ``AutoConfig`` model type; either may be absent),
the fusion settings and the whole label space (taxonomy nodes and tag groups), so a saved
checkpoint can name its predictions without the taxonomy file. ``id2label`` / ``label2id``
follow the category head's leaves (full paths, in the order of ``category_logits``), so any
Hugging Face tool reads the label space.

Example:
    >>> from transformers import BertConfig, ViTConfig
    >>> config = MultimodalCatConfig.from_vision_text_configs(
    ...     ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
    ...               image_size=30, patch_size=10),
    ...     BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37),
    ...     labels=LabelSpace.from_paths(["Apparel > Shoes", "Apparel > Shirts"]),
    ...     tags={"color": ["red", "blue"]},
    ... )
    >>> config.num_categories, config.num_tag_values
    (3, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from multimodal_cat.modeling.labels import LabelSpace, TagGroup, build_tag_groups

FUSION_TYPES = ("concat", "gated")
INPUT_KINDS = ("text+image", "text", "image")  # what a product carries (Prediction.inputs)
POOLING_MODES = ("cls", "mean", "cls_mean")


def _sub_config(
    value: PretrainedConfig | Mapping[str, Any] | None, key: str
) -> PretrainedConfig | None:
    """Rebuild a tower config from its ``model_type`` (or keep a config object)."""
    if value is None or isinstance(value, PretrainedConfig):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"`{key}` must be a config, a dict or None; got {type(value).__name__}.")
    value = dict(value)
    model_type = value.pop("model_type", None)
    if not model_type:
        raise ValueError(
            f"`{key}` has no `model_type`; expected e.g. 'vit', 'dinov2', 'bert' to rebuild it."
        )
    return AutoConfig.for_model(model_type, **value)


class MultimodalCatConfig(PretrainedConfig):
    """Config of a product categorizer: towers, fusion, hierarchical category head, tag head.

    Args:
        vision_config: Image tower config (or its dict with ``model_type``); ``None`` = no images.
        text_config: Text tower config (or its dict); ``None`` = no text.
        category_ids: Taxonomy node ids, parents before children.
        category_parents: Parent index of each node, -1 for roots.
        category_names: Node names.
        category_paths: Full paths ``A > B > C``.
        taxonomy_name: Name of the taxonomy the nodes come from.
        tag_groups: ``[{"attribute", "values", "multi_valued"}]``; see :class:`TagGroup`.
        fusion_type: ``"concat"`` (concatenation + MLP) or ``"gated"`` (learned per-feature gate).
        solo_mlps: Modalities (``"image"``, ``"text"``; a list or a comma-separated string)
            whose rows, when they have only that one, go through an MLP of their own instead of
            the shared fusion MLP.
        projection_dim: Size each modality is projected to before fusion.
        fusion_hidden_dim: Size of the fused embedding the heads read.
        vision_pooling: ``cls``, ``mean`` or ``cls_mean`` (CLS + mean of patches, the encoders'
            default) over the image tower's tokens.
        text_pooling: Same for the text tower (mean uses the attention mask).
        dropout: Dropout in the fusion MLP and before the heads.
        modality_dropout: Training-time probability of hiding one modality of a row that has both.
        label_smoothing: Share of the category loss spread uniformly over the leaves.
        tag_loss_weight: Weight of the tag loss in the total loss.
        class_weights: Optional loss weight per node (same order as ``category_ids``).
        freeze_encoders: Keep the towers frozen (no gradients, always in eval mode).
        text_only_tag_groups: Tag attributes scored from the text alone when a product has
            text, ignoring its image (chosen after training, on held-out rows, for the tags the
            image does not help: e.g. a season the training photos happen to share).
        leaf_photo_counts: Training rows with a photo per leaf of the category head (in
            ``id2label`` order), counted when the model is built for training; with them the
            model falls back to the text's answer where the photo cannot vouch for a category
            (:mod:`~multimodal_cat.modeling.trust`).
        photo_trust_min_photos: Fewer training photos than this: the photo cannot vouch.
        photo_weight: Weight of the fused opinion against the text's alone for products with
            both inputs (1 = the fused answer).
        category_temperatures_by_input: Temperature per input kind (``"text+image"``,
            ``"text"``, ``"image"``), fitted on held-out rows of that kind; a kind not listed
            uses ``category_temperature``.
        confidence_thresholds_by_input: ``{kind: {target precision: threshold}}``, measured on
            held-out rows of each kind; a kind not listed uses ``confidence_thresholds``.
        orientation_probe: The probe that tells how a photo was turned
            (:class:`~multimodal_cat.modeling.orientation.OrientationProbe` as a dict), fitted
            on training photos after training; with it a sideways photo is read turned back.
        towers_referenced: The folder holds only the trainable part: the frozen towers are
            loaded from the encoders the tower configs name (``name_or_path``); used for the
            ``checkpoint-*`` folders of a frozen-encoder run.
        tower_sources: The encoder names the towers were built from (``{"image": "dinov2-small",
            "text": "minilm"}``: short names, folders or hub ids), where
            ``towers_referenced`` loads them from.
    """

    model_type = "multimodal-cat"
    sub_configs = {"vision_config": AutoConfig, "text_config": AutoConfig}
    # Trainer drops these outputs at evaluation, so predictions are (category_logits, tag_logits).
    keys_to_ignore_at_inference = [
        "node_log_probs", "image_embeds", "text_embeds", "fused_embeds", "image_mask", "text_mask"
    ]

    def __init__(
        self,
        vision_config: PretrainedConfig | Mapping[str, Any] | None = None,
        text_config: PretrainedConfig | Mapping[str, Any] | None = None,
        category_ids: Sequence[str] | None = None,
        category_parents: Sequence[int] | None = None,
        category_names: Sequence[str] | None = None,
        category_paths: Sequence[str] | None = None,
        taxonomy_name: str = "custom",
        tag_groups: Sequence[Mapping[str, Any] | TagGroup] | None = None,
        fusion_type: str = "concat",
        solo_mlps: Sequence[str] | None = None,
        projection_dim: int = 512,
        fusion_hidden_dim: int = 1024,
        vision_pooling: str = "cls_mean",
        text_pooling: str = "mean",
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
        label_smoothing: float = 0.0,
        tag_loss_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
        freeze_encoders: bool = False,
        category_temperature: float = 1.0,
        tag_temperature: float = 1.0,
        confidence_thresholds: Mapping[str, float] | None = None,
        text_only_tag_groups: Sequence[str] | None = None,
        leaf_photo_counts: Sequence[int] | None = None,
        photo_trust_min_photos: int = 10,
        photo_weight: float = 1.0,
        category_temperatures_by_input: Mapping[str, float] | None = None,
        confidence_thresholds_by_input: Mapping[str, Mapping[str, float]] | None = None,
        orientation_probe: Mapping[str, Any] | None = None,
        towers_referenced: bool = False,
        tower_sources: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.vision_config = _sub_config(vision_config, "vision_config")
        self.text_config = _sub_config(text_config, "text_config")
        self.category_ids = [str(x) for x in category_ids or []]
        self.category_parents = [int(x) for x in category_parents or []]
        self.category_names = [str(x) for x in category_names or []]
        self.category_paths = [str(x) for x in category_paths or []]
        self.taxonomy_name = taxonomy_name
        self.tag_groups = [g.to_dict() for g in build_tag_groups(list(tag_groups or []))]
        self.fusion_type = fusion_type
        if isinstance(solo_mlps, str):  # "image" or "image,text", as the command line gives it
            solo_mlps = [] if solo_mlps.lower() == "none" else solo_mlps.split(",")
        self.solo_mlps = [str(name).strip() for name in solo_mlps or [] if str(name).strip()]
        self.projection_dim = projection_dim
        self.fusion_hidden_dim = fusion_hidden_dim
        self.vision_pooling = vision_pooling
        self.text_pooling = text_pooling
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.label_smoothing = label_smoothing
        self.tag_loss_weight = tag_loss_weight
        self.class_weights = [float(w) for w in class_weights] if class_weights else None
        self.freeze_encoders = freeze_encoders
        self.category_temperature = float(category_temperature)  # fitted on held-out rows
        self.tag_temperature = float(tag_temperature)
        # target precision -> confidence threshold, measured on held-out rows after calibration
        self.confidence_thresholds = dict(confidence_thresholds or {})
        self.text_only_tag_groups = [str(name) for name in text_only_tag_groups or []]
        self.leaf_photo_counts = [int(n) for n in leaf_photo_counts] if leaf_photo_counts else None
        self.photo_trust_min_photos = int(photo_trust_min_photos)
        self.photo_weight = float(photo_weight)
        self.category_temperatures_by_input = {
            str(k): float(v) for k, v in (category_temperatures_by_input or {}).items()
        }
        self.confidence_thresholds_by_input = {
            str(k): dict(v) for k, v in (confidence_thresholds_by_input or {}).items()
        }
        self.orientation_probe = dict(orientation_probe) if orientation_probe else None
        self.towers_referenced = bool(towers_referenced)
        self.tower_sources = {str(k): str(v) for k, v in (tower_sources or {}).items()}
        super().__init__(**kwargs)
        if self.category_ids:  # derived, never read back: old checkpoints hold placeholders
            self.id2label = leaf_labels(self.label_space)
            self.label2id = {label: i for i, label in self.id2label.items()}
        self._check()
        # AutoModel looks the model class up only after it has the config: register it now.
        from multimodal_cat.modeling.auto import register_model

        register_model()

    def _check(self) -> None:
        if self.fusion_type not in FUSION_TYPES:
            raise ValueError(
                f"fusion_type must be one of {FUSION_TYPES}; got {self.fusion_type!r}."
            )
        for key in ("vision_pooling", "text_pooling"):
            if getattr(self, key) not in POOLING_MODES:
                raise ValueError(
                    f"{key} must be one of {POOLING_MODES}; got {getattr(self, key)!r}."
                )
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1); got {self.modality_dropout}.")
        if set(self.solo_mlps) - {"image", "text"}:
            raise ValueError(f"solo_mlps may name 'image' and 'text'; got {self.solo_mlps}.")
        unknown = set(self.text_only_tag_groups) - {g["attribute"] for g in self.tag_groups}
        if unknown:
            raise ValueError(
                f"text_only_tag_groups names tags the model does not have: {sorted(unknown)}; "
                f"its tags are {[g['attribute'] for g in self.tag_groups]}."
            )
        if not 0.0 <= self.photo_weight <= 1.0:
            raise ValueError(f"photo_weight must be in [0, 1]; got {self.photo_weight}.")
        unknown_kinds = (
            set(self.category_temperatures_by_input) | set(self.confidence_thresholds_by_input)
        ) - set(INPUT_KINDS)
        if unknown_kinds:
            raise ValueError(
                f"per-input calibration names input kinds {sorted(unknown_kinds)}; expected "
                f"some of {list(INPUT_KINDS)}."
            )
        if self.class_weights is not None and len(self.class_weights) != len(self.category_ids):
            raise ValueError(
                f"class_weights needs one weight per category ({len(self.category_ids)}); "
                f"got {len(self.class_weights)}."
            )

    @classmethod
    def from_vision_text_configs(
        cls,
        vision_config: PretrainedConfig | None,
        text_config: PretrainedConfig | None,
        labels: LabelSpace | Any | None = None,
        tags: Mapping[str, Sequence[str]] | Sequence[TagGroup] | None = None,
        multi_valued_tags: Sequence[str] = (),
        **kwargs: Any,
    ) -> MultimodalCatConfig:
        """Build a config from tower configs, a label space (or Taxonomy) and tag groups.

        Raises:
            ValueError: When both towers are missing.
        """
        if vision_config is None and text_config is None:
            raise ValueError(
                "A MultimodalCatModel needs at least one tower: got vision_config=None and "
                "text_config=None."
            )
        if labels is not None:
            kwargs.update(label_space_kwargs(LabelSpace.from_taxonomy(labels)))
        groups = [g.to_dict() for g in build_tag_groups(tags, multi_valued_tags)]
        return cls(
            vision_config=vision_config.to_dict() if vision_config is not None else None,
            text_config=text_config.to_dict() if text_config is not None else None,
            tag_groups=groups,
            **kwargs,
        )

    @property
    def label_space(self) -> LabelSpace:
        """The taxonomy nodes as a :class:`LabelSpace`."""
        return LabelSpace(
            list(self.category_ids),
            list(self.category_parents),
            list(self.category_names),
            list(self.category_paths),
            self.taxonomy_name,
        )

    @property
    def tag_group_list(self) -> list[TagGroup]:
        """The tag groups as :class:`TagGroup` records."""
        return [TagGroup.from_dict(g) for g in self.tag_groups]

    def temperature_for(self, kind: str) -> float:
        """The category temperature of products carrying ``kind`` (``"text+image"``...).

        Example:
            >>> config = MultimodalCatConfig(category_temperature=1.5,
            ...     category_temperatures_by_input={"image": 2.0})
            >>> config.temperature_for("image"), config.temperature_for("text")
            (2.0, 1.5)
        """
        return float(self.category_temperatures_by_input.get(kind, self.category_temperature))

    def thresholds_for(self, kind: str) -> dict[str, float]:
        """Auto-accept thresholds (target precision -> confidence) for products carrying
        ``kind``: the ones measured on that kind's held-out rows, else the shared ones.

        Example:
            >>> config = MultimodalCatConfig(confidence_thresholds={"0.98": 0.9},
            ...     confidence_thresholds_by_input={"image": {"0.98": 0.99}})
            >>> config.thresholds_for("image"), config.thresholds_for("text")
            ({'0.98': 0.99}, {'0.98': 0.9})
        """
        return dict(self.confidence_thresholds_by_input.get(kind) or self.confidence_thresholds)

    @property
    def num_categories(self) -> int:
        """Number of taxonomy nodes (inner nodes and leaves)."""
        return len(self.category_ids)

    @property
    def num_tag_values(self) -> int:
        """Total number of tag values over all groups (width of ``tag_logits``)."""
        return sum(len(g["values"]) for g in self.tag_groups)


def leaf_labels(space: LabelSpace) -> dict[int, str]:
    """``id2label`` of the category head: leaf logit ``i`` -> that leaf's full path.

    Paths are what Hugging Face tools (pipelines, the hub's widget) show best; when two leaves
    share a path, their ids are used instead (ids are unique).

    Example:
        >>> leaf_labels(LabelSpace.from_paths(["A > B", "A > C", "D"]))
        {0: 'A > B', 1: 'A > C', 2: 'D'}
    """
    leaves = space.leaves
    paths = [space.paths[i] for i in leaves]
    labels = paths if len(set(paths)) == len(paths) else [space.ids[i] for i in leaves]
    return dict(enumerate(labels))


def label_space_kwargs(space: LabelSpace) -> dict[str, Any]:
    """Config keyword arguments that store ``space``."""
    return {
        "category_ids": list(space.ids),
        "category_parents": list(space.parents),
        "category_names": list(space.names),
        "category_paths": list(space.paths),
        "taxonomy_name": space.taxonomy_name,
    }


# Last: AutoConfig / AutoProcessor know this class from here on (multimodal_cat.modeling.auto).
from multimodal_cat.modeling.auto import register_config  # noqa: E402

register_config()
