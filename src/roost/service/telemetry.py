"""``/v1/telemetry``: read the telemetry log in consumer groups, and ack what was read.

Each fetch leases its records to the caller; ``POST /v1/telemetry/ack`` with the
fetch's token settles them, and unacked records come back to the group after
``telemetry_ack_timeout`` (at-least-once).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.hub.telemetry import MAX_FETCH
from roost.model import TelemetryBatch
from roost.service import schemas
from roost.service.context import hub_of, long_polls_of, settings_of
from roost.service.devices import JSON_LIMIT
from roost.service.params import query_choice, query_float, query_int, query_str, read_json


async def fetch(request: Request) -> Response:
    group = query_str(request, "group", required=True) or ""
    max_records = query_int(request, "max", default=100, minimum=1, maximum=MAX_FETCH)
    wait = query_float(request, "wait", default=0.0, maximum=settings_of(request).max_wait) or 0.0
    start = query_choice(request, "from", ("earliest", "latest"), "earliest")
    call = hub_of(request).telemetry.fetch(group, max_records, wait, start == "latest")
    batch = await long_polls_of(request).run(call, TelemetryBatch([], None))
    records = [schemas.telemetry_record(r) for r in batch.records]
    return JSONResponse({"records": records, "ack": batch.ack})


async def ack(request: Request) -> Response:
    body = schemas.Fields(await read_json(request, JSON_LIMIT), ("group", "ack"))
    group = body.string("group", required=True) or ""
    acked = await hub_of(request).telemetry.ack(group, body.string("ack", required=True) or "")
    return JSONResponse({"acked": acked})
