"""Prometheus metrics of one node, served at ``GET /metrics``.

The registry is ``roost.metrics.REGISTRY``, shared with the device side, so
one scrape shows the whole node; this module adds the HTTP metrics.
"""

from __future__ import annotations

import re
import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from roost.metrics import REGISTRY

HTTP_REQUESTS = Counter(
    "roost_http_requests",
    "HTTP API requests, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "roost_http_request_duration_seconds",
    "Time to answer an HTTP API request (long polls included), by route template.",
    ["route"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0),
    registry=REGISTRY,
)
LONG_POLLS = Gauge(
    "roost_http_long_polls",
    "Long polls (telemetry, inquiries, feedback) waiting right now.",
    registry=REGISTRY,
)
MESSAGES_SENT = Counter(
    "roost_messages_sent",
    "Service-to-device messages accepted through the API, by kind.",
    ["kind"],
    registry=REGISTRY,
)
def route_label(route: BaseRoute | None) -> str:
    """The route template (``/v1/devices/{id}``), so that labels stay few.

    Convertors are left out: ``{topic:topic}`` shows as ``{topic}``.
    """
    if isinstance(route, Route):
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
    return "unmatched"


class MetricsMiddleware:
    """Count every HTTP request by method, route template and status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        finally:
            # The router stores the matched route in the scope it was handed.
            route = route_label(scope.get("route"))
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_DURATION.labels(route).observe(time.perf_counter() - start)
