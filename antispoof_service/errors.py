"""The errors the service answers with: an HTTP status and a JSON body ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the service refuses, with the HTTP status, a stable machine-readable code and a message that
    names the problem (and the file, for an upload).

    Attributes
    ----------
    status : int
        400 bad audio, 401 key, 404 no such route, 413 too large or too long, 415 unsupported content type,
        422 bad parameters or unknown scorer, 503 overloaded or not ready.
    code : str
        e.g. ``"undecodable-audio"``; clients branch on it, people read ``message``.
    headers : dict
        Extra response headers (``Retry-After`` on 503, ``WWW-Authenticate`` on 401).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"error": {"code": code, "message": message}}


def bad_audio(name: str, reason: str, *, empty: bool = False) -> ServiceError:
    """400: an upload that is empty (``empty-audio``) or cannot be decoded as audio (``undecodable-audio``)."""
    return ServiceError(400, "empty-audio" if empty else "undecodable-audio", f"{name}: {reason}")


def bad_parameter(message: str) -> ServiceError:
    """422: a query parameter or message field that is missing, malformed or names no loaded scorer."""
    return ServiceError(422, "bad-parameter", message)


def overloaded(retry_after_s: int, message: str) -> ServiceError:
    """503 with ``Retry-After``: every inference slot is busy and the waiting queue is full."""
    return ServiceError(503, "overloaded", message, {"Retry-After": str(retry_after_s)})
