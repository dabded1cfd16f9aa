"""``/v1/tokens``: API tokens (admin scope only). A new token's secret is shown once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.service import schemas
from roost.service.context import hub_of
from roost.service.devices import JSON_LIMIT
from roost.service.params import read_json


async def create(request: Request) -> Response:
    body = schemas.Fields(await read_json(request, JSON_LIMIT), ("scopes", "description"))
    scopes = tuple(body.strings("scopes", required=True) or ())
    token, secret = await hub_of(request).tokens.create(scopes, body.string("description") or "")
    return JSONResponse({"id": token.id, "token": secret, "scopes": list(token.scopes)}, 201)


async def list_tokens(request: Request) -> Response:
    tokens = await hub_of(request).tokens.list()
    return JSONResponse({"tokens": [schemas.token(t) for t in tokens]})


async def revoke(request: Request) -> Response:
    await hub_of(request).tokens.revoke(request.path_params["id"])
    return Response(status_code=204)
