"""Bearer-token authentication and scopes for every ``/v1`` route.

A request carries ``Authorization: Bearer <token>``; no token or an unknown one
is 401. Each route needs one scope, and a token may call it if it holds that
scope or ``admin``:

    scope       routes
    admin       everything, and the only scope for /v1/tokens
    devices     /v1/devices (register, read, change, remove, keys, import)
    messages    commands, notifications (device, group, broadcast), mailboxes
    telemetry   /v1/telemetry
    inquiries   /v1/inquiries
    feedback    /v1/feedback

``/healthz``, ``/metrics`` and ``/openapi.json`` need no token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from roost.errors import AuthError, Forbidden
from roost.model import ApiToken
from roost.service.context import hub_of

ADMIN = "admin"
DEVICES = "devices"
MESSAGES = "messages"
TELEMETRY = "telemetry"
INQUIRIES = "inquiries"
FEEDBACK = "feedback"

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    return secret.strip()


def check_scope(token: ApiToken, scope: str) -> None:
    if ADMIN not in token.scopes and scope not in token.scopes:
        raise Forbidden(f"this token lacks the {scope!r} scope", scope=scope)


async def authenticate(request: Request, scope: str) -> ApiToken:
    """The caller's token, if it may use a route of ``scope``; else 401 or 403."""
    token = await hub_of(request).tokens.authenticate(bearer(request))
    check_scope(token, scope)
    request.state.token = token
    return token


def requires(scope: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, answering only requests whose token may use ``scope``."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        await authenticate(request, scope)
        return await endpoint(request)

    return guarded
