"""``/healthz`` and ``/metrics``: open to anyone who can reach the port, no token."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.errors import RoostError, Unavailable
from roost.metrics import REGISTRY
from roost.service.context import hub_of, long_polls_of

log = logging.getLogger("roost.service")


async def healthz(request: Request) -> Response:
    """200 only when the node can serve: backplane reachable, streams ready, not stopping."""
    try:
        if long_polls_of(request).closed:
            raise Unavailable("the node is shutting down")
        await hub_of(request).check()
    except Exception as exc:
        message = exc.message if isinstance(exc, RoostError) else "health check failed"
        if not isinstance(exc, RoostError):
            log.exception("health check failed")
        body = {"status": "unavailable", "error": Unavailable.code, "message": message}
        return JSONResponse(body, 503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
