"""Registration with transformers: ``AutoConfig``, ``AutoModel``, ``AutoProcessor`` and the
``"product-categorization"`` pipeline task.

``import multimodal_cat`` alone makes a saved checkpoint load through the Auto classes without
importing transformers itself: each step runs when transformers first needs it (post-import
hooks, :func:`multimodal_cat._lazy.after_import`):

- the config, once ``transformers.models.auto.configuration_auto`` is imported (light: it
  imports only :mod:`~multimodal_cat.modeling.configuration`);
- the processor, once ``transformers.models.auto.processing_auto`` is imported;
- the model, when a :class:`~multimodal_cat.modeling.MultimodalCatConfig` is first built
  (``AutoModel`` always loads or receives the config before it looks up the model class; at
  the moment transformers' Auto modules are imported, ``transformers.modeling_utils`` may still
  be half-initialized, so the model class cannot be imported then);
- the pipeline task, once ``transformers.pipelines`` is imported.

Every step is idempotent; :func:`register` runs them all now.

Example:
    >>> import multimodal_cat  # doctest: +SKIP
    >>> from transformers import AutoModel, pipeline  # doctest: +SKIP
    >>> model = AutoModel.from_pretrained("ckpt")  # a MultimodalCatModel  # doctest: +SKIP
    >>> pipeline("product-categorization", model="ckpt")("Red running shoes")  # doctest: +SKIP
"""

from __future__ import annotations

import sys

PIPELINE_TASK = "product-categorization"

# module whose import triggers a step -> the step's name
TRIGGERS = {
    "transformers.models.auto.configuration_auto": "config",
    "transformers.models.auto.processing_auto": "processor",
    "transformers.pipelines": "pipeline",
}
_done: set[str] = set()


def _half_imported(module: str, name: str) -> bool:
    """Whether our ``module`` is being imported and has not defined ``name`` yet (its own
    import of transformers fired the hook); the module registers itself on its last line."""
    loaded = sys.modules.get(module)
    return loaded is not None and not hasattr(loaded, name)


def register_config() -> None:
    """``AutoConfig`` reads ``model_type: multimodal-cat``."""
    if "config" in _done or _half_imported(
        "multimodal_cat.modeling.configuration", "MultimodalCatConfig"
    ):
        return
    from transformers.models.auto.configuration_auto import AutoConfig

    from multimodal_cat.modeling.configuration import MultimodalCatConfig

    AutoConfig.register(MultimodalCatConfig.model_type, MultimodalCatConfig, exist_ok=True)
    _done.add("config")


def register_processor() -> None:
    """``AutoProcessor`` returns a :class:`~multimodal_cat.modeling.MultimodalCatProcessor`."""
    if "processor" in _done or _half_imported(
        "multimodal_cat.modeling.processing", "MultimodalCatProcessor"
    ):
        return
    register_config()
    from transformers.models.auto.processing_auto import AutoProcessor

    from multimodal_cat.modeling.configuration import MultimodalCatConfig
    from multimodal_cat.modeling.processing import MultimodalCatProcessor

    AutoProcessor.register(MultimodalCatConfig, MultimodalCatProcessor, exist_ok=True)
    _done.add("processor")


def register_model() -> None:
    """``AutoModel`` returns a :class:`~multimodal_cat.modeling.MultimodalCatModel`."""
    if "model" in _done or _half_imported(
        "multimodal_cat.modeling.modeling", "MultimodalCatModel"
    ):  # the next config built registers it
        return
    register_config()
    from transformers.models.auto.modeling_auto import AutoModel

    from multimodal_cat.modeling.configuration import MultimodalCatConfig
    from multimodal_cat.modeling.modeling import MultimodalCatModel

    AutoModel.register(MultimodalCatConfig, MultimodalCatModel, exist_ok=True)
    _done.add("model")


def register_pipeline() -> None:
    """``pipeline("product-categorization", model=checkpoint)``."""
    if "pipeline" in _done or _half_imported(
        "multimodal_cat.predictors.pipeline", "ProductCategorizationPipeline"
    ):
        return
    from transformers.models.auto.modeling_auto import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    # the task sits above the predictors (it runs ModelPredictor): imported here, on demand
    from multimodal_cat.predictors.pipeline import ProductCategorizationPipeline

    if "pipeline" in _done:  # that module's first import registered it already
        return
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK, pipeline_class=ProductCategorizationPipeline, pt_model=AutoModel,
        type="multimodal",
    )
    _done.add("pipeline")


_STEPS = {"config": register_config, "processor": register_processor, "pipeline": register_pipeline}


def on_import(module: object) -> None:
    """The post-import hook: run the step that ``module`` (one of :data:`TRIGGERS`) unlocks."""
    _STEPS[TRIGGERS[module.__name__]]()  # type: ignore[attr-defined]


def register() -> None:
    """Register everything now (safe to call repeatedly)."""
    register_config()
    register_processor()
    register_model()
    register_pipeline()
