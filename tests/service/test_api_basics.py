"""Health, metrics, the OpenAPI document and the error shape of everything else."""

from __future__ import annotations

import re
from typing import Any

import httpx
from service_helpers import register
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.hub.hub import Hub
from roost.service.app import ENDPOINTS, close_long_polls
from roost.service.middleware import OuterMiddleware

# --- health and metrics ------------------------------------------------------------


async def test_healthz_ok(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_healthz_503_when_the_backplane_is_gone(anon: httpx.AsyncClient, hub: Hub) -> None:
    await hub.backplane.close()
    r = await anon.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["error"] == "unavailable"


async def test_healthz_503_while_shutting_down(anon: httpx.AsyncClient, app: Starlette) -> None:
    close_long_polls(app)
    assert (await anon.get("/healthz")).status_code == 503


async def test_metrics_count_requests(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    await register(client, "m1")
    await client.get("/v1/devices/m1")
    r = await anon.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    line = 'roost_http_requests_total{method="GET",route="/v1/devices/{id}",status="200"}'
    assert line in text
    assert 'route="/v1/devices",status="201"' in text
    await client.post("/v1/devices/m1/notifications/alerts/heat", content=b"x")
    assert 'route="/v1/devices/{id}/notifications/{topic}",status="202"' in (
        await anon.get("/metrics")).text
    assert "roost_http_long_polls" in text and "roost_devices_connected" in text


# --- errors --------------------------------------------------------------------------


async def test_unknown_route_is_404_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "message": "no route /v2/nothing"}


async def test_wrong_method_is_405_json(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/devices/d1")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}


async def test_unexpected_errors_are_500_without_traceback() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    app = Starlette(routes=[Route("/boom", boom)], middleware=[Middleware(OuterMiddleware)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/boom")
    assert r.status_code == 500
    assert r.json()["error"] == "internal"
    assert "secret" not in r.text and "Traceback" not in r.text


# --- OpenAPI -------------------------------------------------------------------------


def openapi_path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


async def test_openapi_lists_every_route(anon: httpx.AsyncClient) -> None:
    doc = (await anon.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {(e.method, openapi_path(e.path)) for e in ENDPOINTS}
    assert documented == served


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if "$ref" in node else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


async def test_openapi_is_consistent(anon: httpx.AsyncClient) -> None:
    doc: dict[str, Any] = (await anon.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    found = refs(doc)
    assert found and all(r.startswith("#/components/schemas/") for r in found)
    assert {r.rsplit("/", 1)[1] for r in found} <= set(schemas)
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            for response in op["responses"].values():
                assert response["description"]
            scoped = path.startswith("/v1")
            assert ("401" in op["responses"]) == scoped, (method, path)
            assert (op.get("security") == []) == (not scoped), (method, path)
