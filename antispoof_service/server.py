"""Running the service under uvicorn: one process, or ``workers`` processes sharing the port.

The scorers are loaded before the port is bound (a bad model file fails the command, not the first request). With
several workers, uvicorn starts each from :func:`app_from_environment`, which reads the settings from
:data:`~antispoof_service.settings.SETTINGS_ENV` and loads its own scorers.

SIGTERM or Ctrl-C: uvicorn stops accepting connections, lets in-flight requests finish for up to
``shutdown_timeout_s``, and :func:`serve` returns normally, so the command exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from lfcc_gmm.scorers import Scorer, load_scorer

from .settings import SETTINGS_ENV, ServiceSettings


def load_scorers(settings: ServiceSettings) -> dict[str, Scorer]:
    """Every scorer of ``settings``, loaded (errors as :func:`lfcc_gmm.scorers.load_scorer` raises them)."""
    return {spec.name: load_scorer(spec.name, spec.model, **spec.options) for spec in settings.scorers}


def app_from_environment() -> Any:
    """The application of one worker process of ``--workers N`` (a uvicorn factory)."""
    from .app import create_app

    _log_to_stderr()
    return create_app(ServiceSettings.from_json(os.environ[SETTINGS_ENV]))


def _log_to_stderr() -> None:
    logger = logging.getLogger("antispoof.service")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Load the scorers, serve until SIGTERM/SIGINT, then shut down gracefully and return.

    The scorers are loaded before the port is bound, so that an unknown scorer or a bad model file raises here
    (:class:`~lfcc_gmm.scorers.ScorerNotFoundError`, :class:`~lfcc_gmm.scorers.ScorerOptionError`, the scorer's
    own errors); with several workers this copy only checks them, and every worker loads its own.

    Parameters
    ----------
    settings : the service's configuration.
    host, port : where to listen (port 0: any free port; the log names it).
    workers : processes sharing the port.
    """
    scorers = load_scorers(settings)
    import uvicorn

    from .app import create_app

    _log_to_stderr()
    config: dict[str, Any] = {"host": host, "port": port, "access_log": False, "log_level": "info",
                              "timeout_graceful_shutdown": settings.shutdown_timeout_s, "server_header": False,
                              # The service reads bodies itself under its own cap; uvicorn's websocket frames
                              # are capped at a generous size for PCM chunks.
                              "ws_max_size": 4 * 1024 * 1024}
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler turns that into a normal
    # return (exit code 0) instead of the command's SIGTERM-as-interrupt handler.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if workers > 1:
            del scorers
            os.environ[SETTINGS_ENV] = settings.to_json()
            uvicorn.run("antispoof_service.server:app_from_environment", factory=True, workers=workers, **config)
        else:
            uvicorn.run(create_app(settings, scorers), **config)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
