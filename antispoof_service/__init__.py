"""``antispoof serve``: an HTTP scoring service and a web page over any installed scorer.

The service answers ``POST /v1/score`` with the same JSON object as ``antispoof score --format json`` for the same
file (one function, :func:`antispoof_service.results.score_upload`, makes both), streams segment results over a
websocket (``/v1/stream``), and serves a single page that needs nothing from the internet. The modules:

:mod:`~antispoof_service.settings`
    What a running service is configured with (scorers, limits, key, temporary folder).
:mod:`~antispoof_service.results`
    The one adapter from (scorer, audio, options) to the result object.
:mod:`~antispoof_service.admission`
    The bounded inference slots and the bounded waiting queue (503 beyond it).
:mod:`~antispoof_service.uploads`
    Receiving a request body or a multipart field under a size cap checked while streaming: in memory while
    small, spooled to a temporary file beyond.
:mod:`~antispoof_service.streaming`
    Windows of a live PCM stream, scored as soon as each is complete.
:mod:`~antispoof_service.metrics`
    Prometheus text exposition of request counts, latencies, in-flight and queued requests.
:mod:`~antispoof_service.app`
    The FastAPI application (:func:`~antispoof_service.app.create_app`).
:mod:`~antispoof_service.server`
    Running it under uvicorn with one or several worker processes and a graceful shutdown.

FastAPI, uvicorn and websockets are the ``[serve]`` extra; only ``app`` and ``server`` import them.
"""
