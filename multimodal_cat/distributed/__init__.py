"""Past one machine: categorize feeds and Ray datasets on a Ray cluster.

Rooms: :mod:`.spec` (the picklable recipe each worker builds its predictor from),
:mod:`.staging` (a feed read once into numbered Parquet parts), :mod:`.ray` (the actors and
:func:`categorize_dataset`), :mod:`.parts` (output parts: the check of finished ones, the merge
by ``row``), :mod:`.job` (the feed job: stage, categorize, merge, resume). Needs the ``ray``
extra: ``pip install 'multimodal-cat[ray]'``.

Example:
    $ multimodal-cat categorize feed.csv --taxonomy shopify --engine ray --workers 4 -o out.csv
    $ multimodal-cat categorize feed.csv --engine ray --ray-address auto -o out.csv --resume
"""

from __future__ import annotations

from multimodal_cat._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "PredictorSpec": "multimodal_cat.distributed.spec",
        "categorize_dataset": "multimodal_cat.distributed.ray",
        "categorize_feed_on_ray": "multimodal_cat.distributed.job",
        "RayFeedSummary": "multimodal_cat.distributed.job",
    },
)

__all__ = ["PredictorSpec", "RayFeedSummary", "categorize_dataset", "categorize_feed_on_ray"]
