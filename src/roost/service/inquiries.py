"""``/v1/inquiries``: take the devices' inquiries and answer them.

A reply is the raw request body (its Content-Type kept); ``?end=true`` makes it
the final one. Replies go through the asking device's mailbox.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.hub.inquiries import MAX_TAKE
from roost.model import Inquiry
from roost.service import schemas
from roost.service.context import hub_of, long_polls_of, settings_of
from roost.service.params import content_type, query_bool, query_float, query_int, read_body


async def take(request: Request) -> Response:
    max_items = query_int(request, "max", default=10, minimum=1, maximum=MAX_TAKE)
    wait = query_float(request, "wait", default=0.0, maximum=settings_of(request).max_wait) or 0.0
    empty: list[Inquiry] = []
    taken = await long_polls_of(request).run(hub_of(request).inquiries.take(max_items, wait), empty)
    return JSONResponse({"inquiries": [schemas.inquiry(i) for i in taken]})


async def show(request: Request) -> Response:
    inquiry = await hub_of(request).inquiries.get(request.path_params["iid"])
    return JSONResponse(schemas.inquiry(inquiry, with_state=True))


async def reply(request: Request) -> Response:
    end = query_bool(request, "end")
    payload = await read_body(request, settings_of(request).max_packet_size)
    message_id = await hub_of(request).inquiries.reply(
        request.path_params["iid"], payload, content_type=content_type(request), end=end
    )
    return JSONResponse({"id": message_id}, 202)
