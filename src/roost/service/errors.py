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


