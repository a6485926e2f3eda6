"""Categorization at upload time: an HTTP service over the feed job's per-batch step.

Rooms: :mod:`.app` (routes), :mod:`.service` (model, images, batcher of one running service),
:mod:`.batcher` (micro-batching), :mod:`.inputs` (request bodies -> products),
:mod:`.limits` (body size, API key, refusals), :mod:`.admission` (503 at the front when
full), :mod:`.metrics` (Prometheus),
:mod:`.labelstudio` (Label Studio's ML backend), :mod:`.server` (uvicorn), ``page/`` (the
page at ``/``). Needs the ``serve`` extra: ``pip install 'multimodal-cat[serve]'``.

Example:
    $ multimodal-cat serve --taxonomy shopify --map-to google --port 8080
    $ curl -s localhost:8080/v1/categorize -H 'Content-Type: application/json' \\
        -d '{"title": "Leather ankle boots"}'
"""
