"""The HTTP API application: the routes table, error handlers and middleware.

``ENDPOINTS`` is the one list of what the API answers: method, path, handler
and the token scope it needs (``None``: open). The OpenAPI document describes
exactly these, and a test holds the two together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import RoostError
from roost.hub.hub import Hub
from roost.service import (
    devices,
    feedback,
    health,
    inquiries,
    messages,
    openapi,
    telemetry,
    tokens,
)
from roost.service.auth import ADMIN, DEVICES, FEEDBACK, INQUIRIES, MESSAGES, TELEMETRY, requires
from roost.service.errors import on_http_exception, on_roost_error
from roost.service.longpoll import LongPolls
from roost.service.middleware import OuterMiddleware

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    scope: str | None  # the token scope it needs; None: no token needed


class TopicConvertor(PathConvertor):
    """Like ``path``, but matching newlines too: a bad topic is the hub's 422, not a 404."""

    regex = r"[\s\S]*"


register_url_convertor("topic", TopicConvertor())

D = "/v1/devices/{id}"
G = "/v1/groups/{group}"
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/healthz", health.healthz, None),
    Endpoint("GET", "/metrics", health.metrics, None),
    Endpoint("GET", "/openapi.json", openapi.serve, None),
    # devices
    Endpoint("POST", "/v1/devices", devices.register, DEVICES),
    Endpoint("GET", "/v1/devices", devices.list_devices, DEVICES),
    Endpoint("POST", "/v1/devices/import", devices.import_devices, DEVICES),
    Endpoint("GET", D, devices.show, DEVICES),
    Endpoint("PATCH", D, devices.update, DEVICES),
    Endpoint("DELETE", D, devices.remove, DEVICES),
    Endpoint("POST", D + "/key", devices.rotate_key, DEVICES),
    # messages
    Endpoint("POST", D + "/commands/{name}", messages.command, MESSAGES),
    Endpoint("POST", D + "/notifications/{topic:topic}", messages.notify_device, MESSAGES),
    Endpoint("POST", G + "/notifications/{topic:topic}", messages.notify_group, MESSAGES),
    Endpoint("POST", "/v1/broadcast/notifications/{topic:topic}", messages.broadcast, MESSAGES),
    Endpoint("GET", D + "/mailbox", messages.mailbox, MESSAGES),
    Endpoint("DELETE", D + "/mailbox", messages.purge, MESSAGES),
    # telemetry, inquiries, feedback
    Endpoint("GET", "/v1/telemetry", telemetry.fetch, TELEMETRY),
    Endpoint("POST", "/v1/telemetry/ack", telemetry.ack, TELEMETRY),
    Endpoint("GET", "/v1/inquiries", inquiries.take, INQUIRIES),
    Endpoint("GET", "/v1/inquiries/{iid}", inquiries.show, INQUIRIES),
    Endpoint("POST", "/v1/inquiries/{iid}/replies", inquiries.reply, INQUIRIES),
    Endpoint("GET", "/v1/feedback", feedback.read, FEEDBACK),
    # tokens
    Endpoint("POST", "/v1/tokens", tokens.create, ADMIN),
    Endpoint("GET", "/v1/tokens", tokens.list_tokens, ADMIN),
    Endpoint("DELETE", "/v1/tokens/{id}", tokens.revoke, ADMIN),
)


def _dispatch(by_method: dict[str, Handler]) -> Handler:
    """One endpoint per path, so that a wrong method gets 405 with the full Allow list."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await by_method[method](request)

    return endpoint


def build_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    by_path: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        handler = e.handler if e.scope is None else requires(e.scope, e.handler)
        by_path.setdefault(e.path, {})[e.method] = handler
    return [
        Route(path, _dispatch(handlers), methods=list(handlers), name=path)
        for path, handlers in by_path.items()
    ]


def create_app(hub: Hub) -> Starlette:
    """The API of one node, serving ``hub``."""
    app = Starlette(
        routes=build_routes(ENDPOINTS),
        middleware=[Middleware(OuterMiddleware)],
        exception_handlers={RoostError: on_roost_error, HTTPException: on_http_exception},
    )
    app.state.hub = hub
    app.state.long_polls = LongPolls()
    return app


def close_long_polls(app: Starlette) -> None:
    """Answer every waiting long poll now (call before stopping the HTTP server)."""
    polls: LongPolls = app.state.long_polls
    polls.close()
