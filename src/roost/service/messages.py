"""Service-to-device messages: commands, notifications (device, group, all), mailboxes.

The request body is the payload, as raw bytes, and its Content-Type becomes the
message's content type. ``?ttl=`` is in seconds (default and maximum from the
settings); a command's ``?wait=`` holds the request open for the answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.errors import InvalidInput
from roost.service import schemas
from roost.service.context import hub_of, settings_of
from roost.service.metrics import MESSAGES_SENT
from roost.service.params import content_type, query_float, read_body


def ttl_param(request: Request) -> float | None:
    ttl_max = settings_of(request).ttl_max
    ttl = query_float(request, "ttl", maximum=ttl_max)
    if ttl is not None and ttl <= 0:
        raise InvalidInput(f"query parameter 'ttl' must be between 0 and {ttl_max:g} (exclusive)")
    return ttl


async def _payload(request: Request) -> bytes:
    return await read_body(request, settings_of(request).max_packet_size)


async def command(request: Request) -> Response:
    """Queue a command; with ``?wait=``, answer with the device's response (or 504)."""
    ttl = ttl_param(request)
    # Checked here, before the command is queued: the hub would check it only after.
    wait = query_float(request, "wait", maximum=settings_of(request).max_wait)
    payload = await _payload(request)
    result = await hub_of(request).messages.command(
        request.path_params["id"],
        request.path_params["name"],
        payload,
        ttl=ttl,
        content_type=content_type(request),
        wait=wait,
    )
    MESSAGES_SENT.labels("command").inc()
    if wait is None:
        return JSONResponse({"id": result.id}, 202)
    body: schemas.JSON = {"id": result.id, "status": result.status,
                          "payload": schemas.b64(result.payload)}
    if result.content_type is not None:  # only when the device gave one (MQTT 5)
        body["content_type"] = result.content_type
    return JSONResponse(body)


async def notify_device(request: Request) -> Response:
    ttl = ttl_param(request)
    msg = await hub_of(request).messages.notify(
        request.path_params["id"],
        request.path_params["topic"],
        await _payload(request),
        ttl=ttl,
        content_type=content_type(request),
    )
    MESSAGES_SENT.labels("notification").inc()
    return JSONResponse({"id": msg.id}, 202)


async def notify_group(request: Request) -> Response:
    ttl = ttl_param(request)
    msg = await hub_of(request).messages.notify_group(
        request.path_params["group"],
        request.path_params["topic"],
        await _payload(request),
        ttl=ttl,
        content_type=content_type(request),
    )
    MESSAGES_SENT.labels("group_notification").inc()
    return JSONResponse({"id": msg.id}, 202)


async def broadcast(request: Request) -> Response:
    ttl = ttl_param(request)
    msg = await hub_of(request).messages.broadcast(
        request.path_params["topic"],
        await _payload(request),
        ttl=ttl,
        content_type=content_type(request),
    )
    MESSAGES_SENT.labels("broadcast").inc()
    return JSONResponse({"id": msg.id}, 202)


async def mailbox(request: Request) -> Response:
    messages = await hub_of(request).messages.pending(request.path_params["id"])
    return JSONResponse({"messages": [schemas.mailbox_message(m) for m in messages]})


async def purge(request: Request) -> Response:
    purged = await hub_of(request).messages.purge(request.path_params["id"])
    return JSONResponse({"purged": purged})
