"""Every error leaves the API in one shape: ``{"error": code, "message": text, **detail}``.

:func:`error_response` is the one place that turns a :class:`RoostError` into
an HTTP response; Starlette's own 404/405/413 are first translated into the
matching Roost error, and anything unexpected becomes a logged 500 ``internal``
with no traceback sent to the client (STYLE.md, principle 3).
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roost.errors import AuthError, NotFound, PayloadTooLarge, RoostError

log = logging.getLogger("roost.service")


class MethodNotAllowed(RoostError):
    """This resource does not support that method."""

    code = "method_not_allowed"
    http_status = 405


def error_response(exc: RoostError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The response for ``exc``: its HTTP status, its code, its message and its detail."""
    body: dict[str, object] = {**exc.detail, "error": exc.code, "message": exc.message}
    headers = dict(headers or {})
    if isinstance(exc, AuthError):
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


def _from_http(exc: HTTPException, request: Request) -> RoostError:
    if exc.status_code == 404:
        return NotFound(f"no route {request.url.path}")
    if exc.status_code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    if exc.status_code == 413:
        return PayloadTooLarge("request body too large")
    error = RoostError(str(exc.detail))
    error.http_status = exc.status_code
    error.code = f"http_{exc.status_code}"
    return error


async def on_roost_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RoostError)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(_from_http(exc, request), dict(exc.headers or {}))


class CatchAllMiddleware:
    """Turn an unexpected exception into a logged 500 ``internal`` answer.

    Starlette's own server-error handler answers too, but then re-raises, which
    the ASGI server logs a second time; this one ends the request here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            error = RoostError("internal error; see the server log")
            await error_response(error)(scope, receive, send)
