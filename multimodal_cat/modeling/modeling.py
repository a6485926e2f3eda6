"""The product categorizer: image and text towers, fusion, hierarchical category and tag heads.

:class:`MultimodalCatModel` is a plain ``PreTrainedModel``: ``save_pretrained`` /
``from_pretrained`` / ``push_to_hub`` work as for any Hugging Face model, ``forward`` returns a
:class:`~multimodal_cat.modeling.outputs.MultimodalCatOutput` carrying ``loss`` when labels are
given (so the stock ``Trainer`` trains it), and it accepts pooled tower outputs
(``image_embeds`` / ``text_embeds``) instead of pixels / tokens, the fast path for training the
head on cached embeddings. Each modality's projection starts with a LayerNorm, so raw and
L2-normalized embeddings give the same result (the encoders' ``encode(normalize=True)`` is fine).

Example:
    >>> model = MultimodalCatModel.from_encoders(text="minilm", taxonomy=space)  # doctest: +SKIP
    >>> out = model(text_embeds=torch.randn(4, 384))  # doctest: +SKIP
    >>> model.decode(out)[0].category_path  # doctest: +SKIP
    'Apparel > Shoes > Sneakers'
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from multimodal_cat.encoders import pool
from multimodal_cat.encoders.registry import base_model_id
from multimodal_cat.modeling.card import write_model_card
from multimodal_cat.modeling.configuration import INPUT_KINDS, MultimodalCatConfig
from multimodal_cat.modeling.decoding import decode_predictions
from multimodal_cat.modeling.fusion import ModalityProjection, build_fusion, modality_dropout
from multimodal_cat.modeling.heads import HeadOutput, HierarchicalHead, TagHead, training_loss
from multimodal_cat.modeling.labels import LabelSpace, TagGroup
from multimodal_cat.modeling.outputs import MultimodalCatOutput
from multimodal_cat.modeling.trust import trusted_leaf_logits
from multimodal_cat.predictions import Prediction

logger = logging.getLogger(__name__)


def _pool(states: torch.Tensor, mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """The encoders' pooling, so cached ``*_embeds`` equal what the towers give here."""
    return pool(states, mask, mode)


def _pooled_dim(hidden_size: int, mode: str) -> int:
    return _pool(torch.zeros(1, 2, hidden_size, device="cpu"), None, mode).shape[-1]


class MultimodalCatModel(PreTrainedModel):
    """Categorize products (image and/or text) into a taxonomy tree and tag their attributes.

    A config without tag groups builds an :class:`UntaggedMultimodalCatModel` (this class, with
    a ``forward`` that takes no ``tag_labels``, so the ``Trainer`` evaluates it without
    ``label_names``). ``save_pretrained`` and ``push_to_hub`` also write the model card
    (:mod:`~multimodal_cat.modeling.card`).

    Args:
        config: The model config (towers, fusion, label space).
        vision_model: Optional ready image tower (else built from ``config.vision_config``).
        text_model: Optional ready text tower (else built from ``config.text_config``).
    """

    config_class = MultimodalCatConfig
    base_model_prefix = "multimodal_cat"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __new__(cls, config: Any = None, *args: Any, **kwargs: Any) -> MultimodalCatModel:
        # A model without tag groups is built as UntaggedMultimodalCatModel, whose forward has
        # no `tag_labels`: the Trainer takes every forward argument whose name holds "label"
        # for a label it needs in each batch, and a batch without one counts as unlabelled (no
        # eval loss, no metrics). That subclass is what keeps the plain Trainer working.
        if (
            cls is MultimodalCatModel
            and isinstance(config, MultimodalCatConfig)
            and not config.tag_groups
        ):
            cls = UntaggedMultimodalCatModel
        return super().__new__(cls)

    def __init__(
        self,
        config: MultimodalCatConfig,
        vision_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ) -> None:
        if not isinstance(config, MultimodalCatConfig):
            raise ValueError(f"config must be a MultimodalCatConfig; got {type(config).__name__}.")
        if config.vision_config is None and config.text_config is None:
            raise ValueError(
                "config has neither vision_config nor text_config; at least one tower is needed."
            )
        if not config.category_ids:
            raise ValueError("config has no categories; build it with a taxonomy or label space.")
        super().__init__(config)
        self.vision_model = self._tower(config.vision_config, vision_model)
        self.text_model = self._tower(config.text_config, text_model)
        dims = {}
        if self.vision_model is not None:
            dims["image"] = _pooled_dim(config.vision_config.hidden_size, config.vision_pooling)
        if self.text_model is not None:
            dims["text"] = _pooled_dim(config.text_config.hidden_size, config.text_pooling)
        self.fusion = build_fusion(
            config.fusion_type,
            dims,
            config.projection_dim,
            config.fusion_hidden_dim,
            config.dropout,
            solo=config.solo_mlps,
        )
        self.head_dropout = nn.Dropout(config.dropout)
        self.category_head = HierarchicalHead(config.label_space, config.fusion_hidden_dim)
        self.tag_head = TagHead(config.tag_group_list, config.fusion_hidden_dim)
        self._label_space = config.label_space
        self.post_init()
        if config.freeze_encoders:
            self.freeze_encoders()

    @staticmethod
    def _tower(sub_config: Any, model: PreTrainedModel | None) -> PreTrainedModel | None:
        if sub_config is None:
            return None
        model = model if model is not None else AutoModel.from_config(sub_config)
        # One config object, so edits stay in sync; keep the attention implementation the tower
        # was built with (without it, padded batches are masked differently).
        sub_config._attn_implementation = model.config._attn_implementation
        model.config = sub_config
        return model

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, ModalityProjection):
            nn.init.normal_(module.missing, std=0.02)
        elif isinstance(module, (nn.Linear, nn.LayerNorm)):
            super()._init_weights(module)

    # ----------------------------------------------------------------- towers
    def freeze_encoders(self) -> None:
        """Freeze both towers: no gradients, and they stay in eval mode (no dropout)."""
        self.config.freeze_encoders = True
        for tower in (self.vision_model, self.text_model):
            if tower is not None:
                tower.requires_grad_(False)
                tower.eval()

    def train(self, mode: bool = True) -> MultimodalCatModel:
        super().train(mode)
        if self.config.freeze_encoders:
            for tower in (self.vision_model, self.text_model):
                if tower is not None:
                    tower.eval()
        return self

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled image tower output (what ``image_embeds`` expects)."""
        if self.vision_model is None:
            raise ValueError("This model has no image tower (config.vision_config is None).")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoders):
            states = self.vision_model(pixel_values=pixel_values).last_hidden_state
        return _pool(states, None, self.config.vision_pooling)

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pooled text tower output (what ``text_embeds`` expects)."""
        if self.text_model is None:
            raise ValueError("This model has no text tower (config.text_config is None).")
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoders):
            out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return _pool(out.last_hidden_state, attention_mask, self.config.text_pooling)

    # ---------------------------------------------------------------- forward
    def _modality(
        self,
        name: str,
        embeds: torch.Tensor | None,
        compute: Any,
        mask: torch.Tensor | None,
        batch: int,
        device: torch.device,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        tower = self.vision_model if name == "image" else self.text_model
        if embeds is None and compute is not None:
            embeds = compute()
        if embeds is not None and tower is None:
            raise ValueError(f"Got {name} inputs but this model has no {name} tower.")
        if embeds is None:
            return None, torch.zeros(batch, dtype=torch.bool, device=device)
        expected = self.fusion.projections[name].norm.normalized_shape[0]
        if embeds.dim() != 2 or embeds.shape != (batch, expected):
            pooling = getattr(self.config, f"{'vision' if name == 'image' else 'text'}_pooling")
            raise ValueError(
                f"{name}_embeds must have shape ({batch}, {expected}) (the {name} tower's output "
                f"pooled with {pooling!r}); got {tuple(embeds.shape)}."
            )
        if mask is None:
            return embeds, torch.ones(batch, dtype=torch.bool, device=device)
        return embeds, mask.to(device=device).bool().reshape(batch)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        tag_labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MultimodalCatOutput:
        """Score categories and tags for a batch.

        Args:
            pixel_values: (batch, 3, H, W) images, or use ``image_embeds``.
            input_ids: (batch, seq) token ids, with ``attention_mask``; or use ``text_embeds``.
            attention_mask: (batch, seq) padding mask for ``input_ids``.
            token_type_ids: Optional segment ids for BERT-like towers.
            image_embeds: (batch, d) pooled image tower outputs (cached embeddings).
            text_embeds: (batch, d) pooled text tower outputs.
            image_mask: (batch,) 1 where the row has an image; default all rows when images are given.
            text_mask: (batch,) 1 where the row has text.
            labels: (batch,) category node indices, -100 when unknown.
            tag_labels: (batch, n_tag_values) 0/1, -100 when unknown.
        """
        sources = [pixel_values, input_ids, image_embeds, text_embeds]
        first = next((t for t in sources if t is not None), None)
        if first is None:
            raise ValueError(
                "forward needs pixel_values, input_ids, image_embeds or text_embeds; got none."
            )
        batch, device = first.shape[0], first.device
        image = None if pixel_values is None else (lambda: self.get_image_features(pixel_values))
        text = None
        if input_ids is not None:
            text = lambda: self.get_text_features(input_ids, attention_mask, token_type_ids)  # noqa: E731
        image_embeds, image_mask = self._modality(
            "image", image_embeds, image, image_mask, batch, device
        )
        text_embeds, text_mask = self._modality("text", text_embeds, text, text_mask, batch, device)
        masks = {"image": image_mask, "text": text_mask}
        masks = {k: v for k, v in masks.items() if k in self.fusion.projections}
        if self.training:
            masks = modality_dropout(masks, self.config.modality_dropout)
        embeds = {"image": image_embeds, "text": text_embeds}
        fused = self.fusion(embeds, masks)
        features = self.head_dropout(fused)
        head: HeadOutput = self.category_head(features)
        tag_logits = self.tag_head(features)
        if not self.training:
            head, tag_logits = self._trusted(head, tag_logits, embeds, masks)
        loss = training_loss(
            self.category_head, self.tag_head, self.config, (head, tag_logits), labels, tag_labels
        )
        return MultimodalCatOutput(
            loss=loss,
            category_logits=head.leaf_logits,
            node_log_probs=head.node_log_probs,
            tag_logits=tag_logits,
            image_embeds=image_embeds,
            text_embeds=text_embeds,
            fused_embeds=fused,
            image_mask=masks.get("image"),
            text_mask=masks.get("text"),
        )

    def _trusted(
        self,
        head: HeadOutput,
        tag_logits: torch.Tensor | None,
        embeds: dict[str, torch.Tensor | None],
        masks: dict[str, torch.Tensor],
    ) -> tuple[HeadOutput, torch.Tensor | None]:
        """At inference, on rows with text and an image: the category answer that trusts the
        photo only where it can vouch (:mod:`~multimodal_cat.modeling.trust`), and
        ``config.text_only_tag_groups`` re-scored from the text alone."""
        both = masks["image"] & masks["text"] if {"image", "text"} <= set(masks) else None
        config = self.config
        trust = config.leaf_photo_counts is not None or config.photo_weight < 1.0
        gate_tags = tag_logits is not None and bool(config.text_only_tag_groups)
        if both is None or not bool(both.any()) or not (trust or gate_tags):
            return head, tag_logits
        text_only = self.fusion(embeds, {**masks, "image": torch.zeros_like(both)})
        if gate_tags:
            tag_logits = self.tag_head.take_groups(
                tag_logits, self.tag_head(text_only), both, config.text_only_tag_groups
            )
        if trust:
            counts = config.leaf_photo_counts
            leaf_logits = trusted_leaf_logits(
                head.leaf_logits,
                self.category_head.classifier(text_only),
                both,
                None if counts is None else torch.tensor(counts),
                config.photo_trust_min_photos,
                config.photo_weight,
            )
            head = HeadOutput(leaf_logits, self.category_head.node_log_probs(leaf_logits))
        return head, tag_logits

    # ------------------------------------------------------------------ saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.from_pretrained``; a folder saved without its frozen towers
        (``config.towers_referenced``, the ``checkpoint-*`` folders of a frozen-encoder run)
        gets them from the encoders it names (``config.tower_sources``).

        Raises:
            ValueError: A referenced tower cannot be loaded from its encoder.
        """
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(
            pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
        )
        if getattr(model.config, "towers_referenced", False):
            model.load_referenced_towers()
            towers = ("vision_model.", "text_model.")
            info["missing_keys"] = type(info["missing_keys"])(
                k for k in info["missing_keys"] if not k.startswith(towers)
            )
        return (model, info) if wants_info else model

    def load_referenced_towers(self) -> None:
        """Copy the pretrained weights of each tower from the encoder ``config.tower_sources``
        names (the towers of a frozen-encoder run are those weights, unchanged)."""
        for kind, tower in (("image", self.vision_model), ("text", self.text_model)):
            if tower is None:
                continue
            sub = self.config.vision_config if kind == "image" else self.config.text_config
            source = self.config.tower_sources.get(kind) or sub.name_or_path
            if not source:
                raise ValueError(
                    f"this checkpoint holds no {kind} tower weights and names no encoder to load "
                    "them from (config.tower_sources); load the final model folder instead"
                )
            tower.load_state_dict(_load_tower(source).state_dict())
        self.config.towers_referenced = False
        if self.config.freeze_encoders:
            self.freeze_encoders()

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights without the frozen towers (what a frozen-encoder checkpoint stores)."""
        towers = ("vision_model.", "text_model.")
        return {k: v for k, v in self.state_dict().items() if not k.startswith(towers)}

    def save_pretrained(self, save_directory: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        """``PreTrainedModel.save_pretrained``, plus the model card (``README.md``, see
        :mod:`~multimodal_cat.modeling.card`; its metrics come from ``all_results.json`` in the
        folder, if any). ``push_to_hub=True`` uploads through :meth:`push_to_hub`, card included.
        """
        push = kwargs.pop("push_to_hub", False)
        repo_id = kwargs.pop("repo_id", None)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            write_model_card(save_directory, self.config)
        if push:
            self.push_to_hub(repo_id or Path(save_directory).name, token=kwargs.get("token"))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        tags: list[str] | None = None,
        **save_kwargs: Any,
    ) -> Any:
        """Upload the model with its model card (``README.md``) to the hub repo ``repo_id``.

        The card replaces the generic one ``PreTrainedModel.push_to_hub`` would write; upload
        the processor too (``processor.push_to_hub(repo_id)``) so the repo loads with
        ``AutoProcessor``, the pipeline and ``Categorizer.from_pretrained``.
        """
        import transformers.utils.hub as hub

        if hasattr(hub, "hf_api"):  # transformers 5: its shared client
            created = hub.hf_api().create_repo(repo_id, private=private, token=token, exist_ok=True)
        else:  # transformers 4
            from huggingface_hub import create_repo

            created = create_repo(repo_id, private=private, token=token, exist_ok=True)
        repo_id = created.repo_id
        with tempfile.TemporaryDirectory() as folder:
            super().save_pretrained(folder, **save_kwargs)
            write_model_card(folder, self.config, model_id=repo_id, tags=tags)
            return self._upload_modified_files(
                folder,
                repo_id,
                files_timestamps={},
                commit_message=commit_message,
                token=token,
                create_pr=create_pr,
                revision=revision,
            )

    # --------------------------------------------------------------- decoding
    @property
    def label_space(self) -> LabelSpace:
        """The taxonomy nodes this model predicts."""
        return self._label_space

    def decode(
        self,
        outputs: MultimodalCatOutput,
        top_k: int = 5,
        min_confidence: float | None = None,
        tag_threshold: float = 0.5,
    ) -> list[Prediction]:
        """Turn a forward output into one :class:`~multimodal_cat.predictions.Prediction` per row.

        Args:
            outputs: What ``forward`` returned.
            top_k: Number of alternatives to list (the prediction first).
            min_confidence: When set, predict the deepest node on the best leaf's path whose
                probability reaches it (a coarser but surer category); ``None`` = the leaf.
            tag_threshold: Multi-valued tags are listed when their probability reaches it;
                single-valued groups always list their best value with its probability.

        Example:
            >>> from multimodal_cat.modeling.testing import tiny_model
            >>> model = tiny_model(vision=None)  # a random 7-node tree under Apparel and Home
            >>> out = model(text_embeds=torch.randn(2, 32))
            >>> leaf = model.decode(out, top_k=3)[0]
            >>> sure = model.decode(out, top_k=3, min_confidence=0.99)[0]  # backs off to a root
            >>> leaf.category_path.startswith(sure.category_path), sure.category_path in ("Apparel", "Home")
            (True, True)
        """
        node_log_probs, tag_scores = self.calibrated_scores(outputs)
        return decode_predictions(
            node_log_probs,
            self.label_space,
            top_k=top_k,
            min_confidence=min_confidence,
            tag_scores=tag_scores,
            tag_groups=self.config.tag_group_list,
            tag_threshold=tag_threshold,
        )

    def row_temperatures(self, outputs: MultimodalCatOutput) -> torch.Tensor:
        """(batch, 1) category temperature of each row, by what it carries (text and image,
        text, image: ``config.temperature_for``); ``category_temperature`` without masks."""
        logits = outputs.category_logits
        batch = logits.shape[0]
        config = self.config
        if outputs.image_mask is None and outputs.text_mask is None:
            return logits.new_full((batch, 1), config.category_temperature).float()
        absent = torch.zeros(batch, dtype=torch.bool, device=logits.device)
        image = absent if outputs.image_mask is None else outputs.image_mask.to(logits.device)
        text = absent if outputs.text_mask is None else outputs.text_mask.to(logits.device)
        values = [config.temperature_for(kind) for kind in INPUT_KINDS]  # text+image, text, image
        out = torch.full((batch,), config.category_temperature, device=logits.device)
        for value, rows in zip(values, (image & text, text & ~image, image & ~text), strict=True):
            out = torch.where(rows, torch.tensor(value, device=logits.device), out)
        return out.unsqueeze(-1).float()

    @torch.no_grad()
    def calibrated_leaf_probs(self, outputs: MultimodalCatOutput) -> torch.Tensor:
        """Leaf probabilities (CPU, float, columns in head order) under each row's category
        temperature (see :meth:`row_temperatures`)."""
        leaf_logits = outputs.category_logits.detach().float()
        return torch.softmax(leaf_logits / self.row_temperatures(outputs), dim=-1).cpu()

    @torch.no_grad()
    def calibrated_scores(
        self, outputs: MultimodalCatOutput
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node log-probabilities and tag probabilities (CPU, float) under the checkpoint's
        temperatures (each row's category temperature by its inputs / ``tag_temperature``, 1.0 until
        calibrated: see :func:`multimodal_cat.training.calibrate.calibrate`)."""
        node_log_probs = outputs.node_log_probs.detach().float()  # forward's, at temperature 1
        temperatures = self.row_temperatures(outputs)
        if bool((temperatures != 1.0).any()):
            leaf_logits = outputs.category_logits.detach().float()
            node_log_probs = self.category_head.node_log_probs(leaf_logits / temperatures)
        tag_scores = None
        if outputs.tag_logits is not None:
            scaled = outputs.tag_logits.detach().float() / self.config.tag_temperature
            tag_scores = self.tag_head.scores(scaled).cpu()
        return node_log_probs.cpu(), tag_scores

    # ------------------------------------------------------------ constructor
    @classmethod
    def from_encoders(
        cls,
        vision: str | None = None,
        text: str | None = None,
        *,
        taxonomy: Any,
        tags: Mapping[str, Sequence[str]] | Sequence[TagGroup] | None = None,
        multi_valued_tags: Sequence[str] = (),
        freeze_encoders: bool = False,
        **config_kwargs: Any,
    ) -> MultimodalCatModel:
        """Build a model on pretrained towers, with new fusion and heads.

        Args:
            vision: Image encoder: a short name (``dinov2-small``), a hub id or a folder; ``None``
                for a text-only model.
            text: Text encoder (``minilm``, a hub id, a folder); ``None`` for an image-only model.
            taxonomy: A ``multimodal_cat.taxonomy.Taxonomy`` or a :class:`LabelSpace`.
            tags: ``{attribute: [values]}`` or :class:`TagGroup` list.
            multi_valued_tags: Attributes of ``tags`` that are multi-valued.
            freeze_encoders: Freeze both towers (train only fusion and heads).
            **config_kwargs: Other :class:`MultimodalCatConfig` fields (``fusion_type``, ...).

        Example:
            >>> model = MultimodalCatModel.from_encoders(
            ...     "dinov2-small", "minilm", taxonomy=Taxonomy.load("shopify"),
            ...     tags={"color": ["red", "blue"]}, vision_pooling="cls_mean")  # doctest: +SKIP
        """
        towers = {
            key: _load_tower(name) for key, name in (("vision", vision), ("text", text)) if name
        }
        config = MultimodalCatConfig.from_vision_text_configs(
            towers["vision"].config if "vision" in towers else None,
            towers["text"].config if "text" in towers else None,
            labels=taxonomy,
            tags=tags,
            multi_valued_tags=multi_valued_tags,
            freeze_encoders=freeze_encoders,
            tower_sources={k: n for k, n in (("image", vision), ("text", text)) if n},
            **config_kwargs,
        )
        for sub, name in ((config.vision_config, vision), (config.text_config, text)):
            if sub is not None:  # the hub id, not the local folder a short name resolves to
                sub.name_or_path = base_model_id(name) or name
        model = cls(config, vision_model=towers.get("vision"), text_model=towers.get("text"))
        new = [
            n
            for n, _ in model.named_parameters()
            if not n.startswith(("vision_model.", "text_model."))
        ]
        logger.warning(
            "Loaded towers %s; these weights of MultimodalCatModel are newly initialized and need "
            "training: %s",
            {k: m.config.name_or_path for k, m in towers.items()},
            new,
        )
        return model


class UntaggedMultimodalCatModel(MultimodalCatModel):
    """A :class:`MultimodalCatModel` without tag groups (``MultimodalCatModel(config)`` builds
    one by itself when ``config.tag_groups`` is empty; ``isinstance(m, MultimodalCatModel)``).

    Its ``forward`` takes no ``tag_labels``, so the ``Trainer`` infers ``label_names`` =
    ``["labels"]`` (from the forward arguments whose names hold "label") and evaluates batches
    that carry only ``labels``: eval loss and metrics without ``label_names=["labels"]``.

    Example:
        >>> from multimodal_cat.modeling.testing import tiny_model
        >>> from transformers.utils.generic import find_labels
        >>> model = tiny_model(vision=None, tags=None)
        >>> type(model).__name__, find_labels(type(model))
        ('UntaggedMultimodalCatModel', ['labels'])
        >>> find_labels(type(tiny_model(vision=None)))
        ['labels', 'tag_labels']
    """

    def __init__(
        self,
        config: MultimodalCatConfig,
        vision_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ) -> None:
        if isinstance(config, MultimodalCatConfig) and config.tag_groups:
            raise ValueError(
                f"UntaggedMultimodalCatModel is for configs without tag groups; this one has "
                f"{[g['attribute'] for g in config.tag_groups]}: build a MultimodalCatModel."
            )
        super().__init__(config, vision_model, text_model)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MultimodalCatOutput:
        """:meth:`MultimodalCatModel.forward` without ``tag_labels`` (there is no tag head)."""
        return super().forward(
            pixel_values=pixel_values,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            image_embeds=image_embeds,
            text_embeds=text_embeds,
            image_mask=image_mask,
            text_mask=text_mask,
            labels=labels,
            **kwargs,
        )


def _load_tower(name: str) -> PreTrainedModel:
    from multimodal_cat.encoders import resolve_encoder
    from multimodal_cat.encoders.registry import UnknownEncoderError, unknown_encoder_message

    path = resolve_encoder(name)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:  # not a folder, not a reachable hub id
        if isinstance(error, UnknownEncoderError):
            raise
        raise UnknownEncoderError(unknown_encoder_message(name, error)) from None
    return AutoModel.from_pretrained(path, config=config)
