"""Tokens, bearer authentication and scopes."""

from __future__ import annotations

import httpx
import pytest
from service_helpers import make_client, register
from starlette.applications import Starlette

from roost.hub.hub import Hub
from roost.service.app import ENDPOINTS


def concrete(path: str) -> str:
    return (
        path.replace("{id}", "d1")
        .replace("{name}", "c")
        .replace("{topic:topic}", "t")
        .replace("{group}", "g")
        .replace("{iid}", "i1")
    )


async def test_every_v1_route_needs_a_token(anon: httpx.AsyncClient) -> None:
    for e in ENDPOINTS:
        if not e.path.startswith("/v1"):
            continue
        r = await anon.request(e.method, concrete(e.path))
        assert r.status_code == 401, (e.method, e.path)
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


async def test_bad_tokens_are_401(app: Starlette) -> None:
    for header in ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ", "roost_abc"]:
        async with make_client(app) as c:
            r = await c.get("/v1/devices", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["error"] == "unauthorized" and r.json()["message"]


async def test_open_routes(anon: httpx.AsyncClient) -> None:
    for path in ["/healthz", "/metrics", "/openapi.json"]:
        assert (await anon.get(path)).status_code == 200, path


async def test_token_lifecycle(client: httpx.AsyncClient, app: Starlette) -> None:
    r = await client.post("/v1/tokens", json={"scopes": ["telemetry"], "description": "dash"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"id", "token", "scopes"} and created["scopes"] == ["telemetry"]
    listed = (await client.get("/v1/tokens")).json()["tokens"]
    mine = [t for t in listed if t["id"] == created["id"]]
    assert mine and set(mine[0]) == {"id", "scopes", "description", "created_at"}
    assert mine[0]["description"] == "dash" and "token" not in mine[0]
    async with make_client(app, created["token"]) as narrow:
        assert (await narrow.get("/v1/telemetry", params={"group": "g"})).status_code == 200
    assert (await client.delete(f"/v1/tokens/{created['id']}")).status_code == 204
    async with make_client(app, created["token"]) as revoked:
        assert (await revoked.get("/v1/telemetry", params={"group": "g"})).status_code == 401
    assert (await client.delete(f"/v1/tokens/{created['id']}")).status_code == 404


async def test_token_checks(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/tokens", json={"scopes": ["root"]})
    assert r.status_code == 422 and "scopes" in r.json()["message"]
    r = await client.post("/v1/tokens", json={"scopes": []})
    assert r.status_code == 422
    r = await client.post("/v1/tokens", json={"description": "no scopes"})
    assert r.status_code == 422 and "'scopes' is required" in r.json()["message"]


@pytest.mark.parametrize(
    ("scope", "allowed", "denied"),
    [
        ("devices", ("GET", "/v1/devices"), ("GET", "/v1/devices/d1/mailbox")),
        ("messages", ("GET", "/v1/devices/d1/mailbox"), ("GET", "/v1/devices/d1")),
        ("telemetry", ("GET", "/v1/telemetry?group=g"), ("GET", "/v1/feedback")),
        ("inquiries", ("GET", "/v1/inquiries"), ("GET", "/v1/telemetry?group=g")),
        ("feedback", ("GET", "/v1/feedback"), ("GET", "/v1/tokens")),
    ],
)
async def test_narrow_scopes(
    client: httpx.AsyncClient,
    hub: Hub,
    app: Starlette,
    scope: str,
    allowed: tuple[str, str],
    denied: tuple[str, str],
) -> None:
    await register(client, "d1")
    _, secret = await hub.tokens.create((scope,))
    async with make_client(app, secret) as narrow:
        assert (await narrow.request(*allowed)).status_code == 200
        r = await narrow.request(*denied)
        assert r.status_code == 403
        assert r.json()["error"] == "forbidden"
        # only admin may manage tokens
        assert (await narrow.post("/v1/tokens", json={"scopes": ["admin"]})).status_code == 403
