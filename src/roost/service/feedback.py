"""``/v1/feedback``: the outcomes of service-to-device messages, paged by cursor.

``next`` is the cursor to pass as ``?after=`` to read on: the ``seq`` of the
last outcome returned, or the ``after`` given when there was none.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.hub.feedback import MAX_READ
from roost.model import Outcome
from roost.service import schemas
from roost.service.context import hub_of, long_polls_of, settings_of
from roost.service.params import query_float, query_int

MAX_CURSOR = 2**63 - 1


async def read(request: Request) -> Response:
    after = query_int(request, "after", default=0, minimum=0, maximum=MAX_CURSOR)
    limit = query_int(request, "limit", default=100, minimum=1, maximum=MAX_READ)
    wait = query_float(request, "wait", default=0.0, maximum=settings_of(request).max_wait) or 0.0
    empty: list[Outcome] = []
    call = hub_of(request).feedback.read(after, limit, wait)
    outcomes = await long_polls_of(request).run(call, empty)
    following = outcomes[-1].seq if outcomes else after
    return JSONResponse({"outcomes": [schemas.outcome(o) for o in outcomes], "next": following})
