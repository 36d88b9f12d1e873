"""The FastAPI application of ``antispoof serve`` (:func:`create_app`).

Routes: ``POST /v1/score``, ``GET /v1/scorers``, ``WS /v1/stream``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics``, ``GET /`` (the page) and ``/static/*`` (its assets), ``GET /openapi.json``. The interactive
documentation pages are off: FastAPI's load Swagger UI from a CDN, and the service works offline.

Every error is JSON ``{"error": {"code", "message"}}`` (:mod:`antispoof_service.errors`). Every answered request
writes one JSON log line on the ``antispoof.service`` logger: method, route, scorer, status, duration, the part of
it spent decoding and scoring (``score_ms``), bytes received, error code; never the audio, the query's values or
the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lfcc_gmm import __version__
from lfcc_gmm.scorers import Scorer, load_scorer

from .admission import Admission
from .errors import ServiceError, bad_parameter, error_body
from .metrics import ServiceMetrics
from .results import (
    SAMPLE_RATE,
    ScoreOptions,
    analyse_upload,
    result_object,
    score_upload,
    score_window,
    scores_windows,
    stream_grid,
)
from .settings import ServiceSettings
from .streaming import WAV_SUBTYPES, StreamBuffer, StreamError, StreamFormat
from .uploads import Upload, spool_body, spool_signal

log = logging.getLogger("antispoof.service")

#: Routes by name in metrics and logs; anything else is "other" (so that scanners cannot grow the label set).
ROUTES = ("/", "/v1/score", "/v1/scorers", "/v1/stream", "/healthz", "/readyz", "/metrics", "/openapi.json")
#: Status logged for a client that went away before its answer (nginx's convention).
CLIENT_CLOSED = 499
#: The ``file`` of a stream's result.
STREAM_NAME = "stream"


class ServiceState:
    """What the routes share: settings, loaded scorers, admission, metrics, readiness."""

    def __init__(self, settings: ServiceSettings, scorers: dict[str, Scorer] | None):
        self.settings = settings
        self.scorers: dict[str, Scorer] = dict(scorers or {})
        self.default = settings.scorers[0].name
        self.admission = Admission(settings.max_concurrency, settings.queue)
        self.api_key = settings.api_key()
        self.ready = False
        self.in_flight = 0
        self.metrics = ServiceMetrics({
            "antispoof_in_flight_requests": ("Requests being received, scored or answered.",
                                             lambda: self.in_flight),
            "antispoof_queued_requests": ("Admitted requests waiting for an inference slot or still uploading.",
                                          lambda: self.admission.waiting),
            "antispoof_scoring_requests": ("Requests holding an inference slot.", lambda: self.admission.running),
            "antispoof_ready": ("1 once every scorer is loaded and warm.", lambda: float(self.ready)),
        })

    def prepare(self) -> None:
        """Load the scorers not given (from the settings), then score one second of noise with each, so that the
        first request pays no lazy initialisation; then :attr:`ready`. Errors propagate: a worker that cannot load
        its scorers must not serve."""
        for spec in self.settings.scorers:
            if spec.name not in self.scorers:
                self.scorers[spec.name] = load_scorer(spec.name, spec.model, **spec.options)
        noise = 0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)
        warm_up = spool_signal(noise, "FLOAT", self.settings.upload_dir, "warm-up")
        for scorer in self.scorers.values():
            score_upload(scorer, warm_up)
        self.ready = True

    def scorer(self, name: str | None) -> Scorer:
        name = name or self.default
        if name not in self.scorers and name not in {spec.name for spec in self.settings.scorers}:
            raise bad_parameter(f"scorer {name!r} is not served here (served: {', '.join(self.served())})")
        if not self.ready:
            raise ServiceError(503, "not-ready", "the scorers are still loading; retry shortly", {"Retry-After": "2"})
        return self.scorers[name]

    def served(self) -> list[str]:
        return [spec.name for spec in self.settings.scorers]

    def authorize(self, header: str | None) -> None:
        """401 unless ``header`` is ``Bearer <key>`` with the configured key (compared in constant time)."""
        if self.api_key is None:
            return
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.api_key.encode()):
            raise ServiceError(401, "unauthorized", "missing or wrong API key: send 'Authorization: Bearer <key>'",
                               {"WWW-Authenticate": "Bearer"})


def _route(path: str) -> str:
    if path in ROUTES:
        return path
    return "/static" if path.startswith("/static/") else "other"


class RequestLog:
    """ASGI middleware: one JSON log line and the metrics of every HTTP request, and the in-flight gauge."""

    def __init__(self, app: ASGIApp, state: ServiceState):
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "received": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["received"] += len(message.get("body", b""))
            elif message["type"] == "http.disconnect":
                seen.setdefault("disconnected", True)
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key == b"x-error-code":
                        seen["error"] = value.decode()
            await send(message)

        self.state.in_flight += 1
        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            self.state.in_flight -= 1
            status = CLIENT_CLOSED if scope.get("state", {}).get("client_closed") else seen["status"]
            seconds = time.perf_counter() - started
            route = _route(scope["path"])
            self.state.metrics.observe_request(route, status, seconds)
            line = {"event": "request", "method": scope["method"], "route": route,
                    "scorer": scope.get("state", {}).get("scorer"), "status": status,
                    "duration_ms": round(1000 * seconds, 2), "score_ms": scope.get("state", {}).get("score_ms"),
                    "bytes_in": seen["received"], "error": seen.get("error")}
            (log.warning if status >= 500 and status != 503 else log.info)(json.dumps(line))


def _error_response(error: ServiceError) -> JSONResponse:
    return JSONResponse(error.body(), error.status, {**error.headers, "X-Error-Code": error.code})


def _score_upload(scorer: Scorer, upload: Upload, options: ScoreOptions,
                  max_duration_s: float) -> tuple[bytes, float]:
    """The JSON answer to an upload and the seconds its decoding and scoring took (the bare call the CLI makes;
    the result's conversion after it is the service's own work, done here in the slot's thread)."""
    start = time.perf_counter()
    result = analyse_upload(scorer, upload, options, max_duration_s)
    seconds = time.perf_counter() - start
    return _json_bytes(result_object(result)), seconds


def _json_bytes(content: Any) -> bytes:
    """``content`` as JSONResponse renders it (UTF-8, compact, no NaN)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class ScoreRoute:
    """ASGI middleware that answers ``/v1/score`` itself, ahead of the exception middleware and the router, and
    passes every other request on.

    It is the service's hot path: FastAPI's per-request machinery (request objects, dependency solving, response
    classes) was a third of the service's own time per request at one client on 2 cores, with an LFCC-GMM scorer
    that decodes and scores a demo file in ~5 ms; the exception middleware and the router in front of it were
    another 60 µs. Its errors are answered here, as the application's handler answers them elsewhere.
    """

    def __init__(self, app: ASGIApp, state: ServiceState):
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/score":
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] != "POST":
                raise ServiceError(405, "method-not-allowed", f"{scope['method']} /v1/score: Method Not Allowed",
                                   {"Allow": "POST"})
            await self._score(scope, receive, send)
        except ServiceError as exc:
            await _error_response(exc)(scope, receive, send)

    async def _score(self, scope: Scope, receive: Receive, send: Send) -> None:
        state, settings = self.state, self.state.settings
        request = Request(scope, receive)
        state.authorize(request.headers.get("authorization"))
        query = request.query_params
        chosen = state.scorer(query.get("scorer"))
        request.state.scorer = chosen.name
        options = ScoreOptions.from_query(query.get("threshold"))
        length = request.headers.get("content-length")
        async with state.admission.admit():
            try:
                upload = await spool_body(request.stream(), request.headers.get("content-type"),
                                          int(length) if length and length.isdigit() else None,
                                          settings.upload_dir, settings.max_upload_bytes)
            except ClientDisconnect:
                request.state.client_closed = True
                await send({"type": "http.response.start", "status": CLIENT_CLOSED, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            try:
                body, seconds = await state.admission.run(_score_upload, chosen, upload, options,
                                                          settings.max_duration_s)
                request.state.score_ms = round(1000 * seconds, 2)
            finally:
                upload.remove()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _describe(name: str, scorer: Scorer, default: bool) -> dict[str, Any]:
    """What ``GET /v1/scorers`` says about a served scorer: its threshold and what it means, how it reads a file,
    and the summary of its model card (None for a plug-in, which brings its own documentation)."""
    from lfcc_gmm.cards import model_card

    threshold = scorer.threshold()
    try:
        card = model_card(name)
        summary: dict[str, Any] | None = {"title": card.title, "summary": card.summary, "facts": dict(card.facts)}
    except KeyError:
        summary = None
    return {"name": name, "default": default, "description": scorer.description,
            "threshold": None if threshold is None else threshold.value,
            "threshold_meaning": None if threshold is None else threshold.meaning,
            "mode": scorer.mode, "window_s": scorer.window_s, "live_segments": scores_windows(scorer),
            "card": summary}


def _score_stream(scorer: Scorer, signal: np.ndarray, subtype: str, directory: str,
                  options: ScoreOptions) -> dict[str, Any]:
    """The result of a finished stream: its samples as a WAV file, scored as an upload of it is."""
    return score_upload(scorer, spool_signal(signal, subtype, directory, STREAM_NAME), options)


#: The query parameters of POST /v1/score, for the OpenAPI schema.
SCORE_PARAMETERS = [
    {"name": "scorer", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "A served scorer (GET /v1/scorers); default: the first."},
    {"name": "threshold", "in": "query", "required": False, "schema": {"type": "number"},
     "description": "Verdict threshold instead of the scorer's own."},
]
#: The request body of POST /v1/score, for the OpenAPI schema (read as it streams in).
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "audio/*": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"example": error_body(code, text)}}}
    for status, code, text in (
        (400, "undecodable-audio", "Empty, undecodable or truncated upload"),
        (401, "unauthorized", "Missing or wrong API key"),
        (413, "too-large", "Upload over --max-upload-mb or recording over --max-duration-s"),
        (415, "unsupported-type", "Content type that cannot hold audio"),
        (422, "bad-parameter", "Bad query parameter or a scorer not served here"),
        (503, "overloaded", "Slots busy and queue full (see Retry-After), or scorers not ready"),
    )
}


#: The OpenAPI operation of POST /v1/score (served by :class:`ScoreRoute`, which FastAPI does not describe).
SCORE_OPERATION = {
    "summary": "Score one recording: the object of `antispoof score --format json`",
    "description": "Upload the audio as the multipart field ``file`` or as the raw body (``audio/*`` or "
                   "``application/octet-stream``); any format libsndfile reads, converted to 16 kHz mono as the "
                   "CLI does.",
    "operationId": "score_v1_score_post",
    "parameters": SCORE_PARAMETERS,
    "requestBody": UPLOAD_BODY,
    "responses": {"200": {"description": "The result object (schema: README, *Scoring real recordings*)",
                          "content": {"application/json": {"schema": {"type": "object"}}}},
                  **{str(status): answer for status, answer in ERROR_RESPONSES.items()}},
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema of the application, with :data:`SCORE_OPERATION` added (made once)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema["paths"] = {"/v1/score": {"post": SCORE_OPERATION}, **schema["paths"]}
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: ServiceSettings, scorers: dict[str, Scorer] | None = None) -> FastAPI:
    """The service application.

    Parameters
    ----------
    settings : scorers, limits, key, temporary folder.
    scorers : already loaded scorers by name (``antispoof serve`` loads them before binding the port, so that a bad
        model file fails the command); those missing (a worker of ``--workers N``) are loaded at start-up, before
        the application accepts a connection, and warmed up.
    """
    state = ServiceState(settings, scorers)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before the first connection is accepted: a worker of --workers N takes requests only once it can answer
        # them, while the others serve.
        await asyncio.to_thread(state.prepare)
        try:
            yield
        finally:
            state.admission.close()

    app = FastAPI(title="antispoof", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Speech anti-spoofing scores over HTTP: the JSON result of `antispoof score "
                              "--format json` for an uploaded file, segment results of a live stream, and a page.")
    app.state.service = state
    app.add_middleware(ScoreRoute, state=state)
    app.add_middleware(RequestLog, state=state)  # added last: the outer one, so that it sees /v1/score too

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error_response(bad_parameter(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _error_response(ServiceError(exc.status_code, code, f"{request.method} {request.url.path}: "
                                                                   f"{exc.detail}"))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return _error_response(ServiceError(500, "internal-error", f"{type(exc).__name__}: {exc}"))

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/v1/scorers", summary="The served scorers, their thresholds and what they are")
    async def list_scorers(request: Request) -> list[dict[str, Any]]:
        state.authorize(request.headers.get("authorization"))
        return [_describe(name, scorer, name == state.default) for name, scorer in state.scorers.items()]

    @app.get("/healthz", summary="Alive (the process answers)")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="Every scorer loaded and warm", responses={503: {"description": "Not yet"}})
    async def readyz() -> Response:
        if state.ready:
            return JSONResponse({"status": "ready", "scorers": state.served()})
        error = ServiceError(503, "not-ready", "the scorers are still loading", {"Retry-After": "2"})
        return _error_response(error)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text exposition")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    static = files("antispoof_service") / "static"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket, scorer: str | None = None) -> None:
        await _stream(websocket, state, scorer)

    return app


async def _stream(websocket: WebSocket, state: ServiceState, name: str | None) -> None:
    """The streaming protocol (README, *Service*): a JSON first message ``{"encoding", "sample_rate", "token"?}``,
    then binary PCM chunks, then ``{"type": "end"}``; answers ``ready``, one ``segment`` per complete window and
    a final ``result``, or one ``error`` and a close."""
    await websocket.accept()
    started = time.perf_counter()
    status = 101
    try:
        first = json.loads(await websocket.receive_text())
        if not isinstance(first, dict):
            raise bad_parameter("the first message must be a JSON object")
        token = first.get("token")
        state.authorize(websocket.headers.get("authorization") or (f"Bearer {token}" if token else None))
        scorer = state.scorer(name)
        try:
            fmt = StreamFormat(str(first.get("encoding")), first.get("sample_rate", SAMPLE_RATE))
            threshold = first.get("threshold")
            options = ScoreOptions(threshold=None if threshold is None else float(threshold))
        except (StreamError, TypeError, ValueError) as exc:
            raise bad_parameter(str(exc)) from exc
        length, hop = stream_grid(scorer)
        live = scores_windows(scorer)
        buffer = StreamBuffer(fmt.encoding, length, hop, int(state.settings.max_duration_s * SAMPLE_RATE))
        await websocket.send_json({"type": "ready", "scorer": scorer.name, "sample_rate": SAMPLE_RATE,
                                   "encoding": fmt.encoding, "segment_s": length / SAMPLE_RATE,
                                   "hop_s": hop / SAMPLE_RATE, "live_segments": live})
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                status = CLIENT_CLOSED
                return
            if message.get("bytes") is not None:
                arrived = time.perf_counter()
                try:
                    spans = buffer.feed(message["bytes"])
                except StreamError as exc:
                    raise ServiceError(413, "too-long", str(exc)) from exc
                for start, stop in spans if live else ():
                    async with state.admission.admit():
                        value = await state.admission.run(score_window, scorer, buffer.window(start, stop))
                    latency = time.perf_counter() - arrived
                    state.metrics.observe_window(latency)
                    await websocket.send_json({"type": "segment", "start_s": start / SAMPLE_RATE,
                                               "end_s": stop / SAMPLE_RATE, "score": value,
                                               "latency_s": latency})
            elif _is_end(message.get("text")):
                try:
                    signal = buffer.signal()
                except StreamError as exc:
                    raise bad_parameter(str(exc)) from exc
                if signal.shape[0] == 0:
                    raise ServiceError(400, "empty-audio", "the stream ended before any sample arrived")
                async with state.admission.admit():
                    result = await state.admission.run(_score_stream, scorer, signal, WAV_SUBTYPES[fmt.encoding],
                                                       state.settings.upload_dir, options)
                await websocket.send_json({"type": "result", "result": result})
                await websocket.close()
                status = 200
                return
    except ServiceError as exc:
        status = exc.status
        await _close_with_error(websocket, exc)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError) as exc:
        status = 422
        await _close_with_error(websocket, bad_parameter(f"malformed message: {exc}"))
    except WebSocketDisconnect:
        status = CLIENT_CLOSED
    finally:
        seconds = time.perf_counter() - started
        state.metrics.observe_request("/v1/stream", status, seconds)
        log.info(json.dumps({"event": "stream", "route": "/v1/stream", "scorer": name or state.default,
                             "status": status, "duration_ms": round(1000 * seconds, 2)}))


def _is_end(text: str | None) -> bool:
    """Whether a text message is the client's ``{"type": "end"}`` (other text is ignored, as pings would be)."""
    message = json.loads(text or "{}")
    return isinstance(message, dict) and message.get("type") == "end"


async def _close_with_error(websocket: WebSocket, error: ServiceError) -> None:
    # 1008 policy violation for a refused key, 1013 try again later when overloaded, 1003 for the rest.
    code = {401: 1008, 503: 1013}.get(error.status, 1003)
    with contextlib.suppress(Exception):
        await websocket.send_json({"type": "error", "status": error.status, **error.body()})
        await websocket.close(code)
    await asyncio.sleep(0)
