"""Prometheus metrics of one node, served at ``GET /metrics``.

The registry is ``roost.metrics.REGISTRY``, shared with the device side, so
one scrape shows the whole node; this module adds the HTTP metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
