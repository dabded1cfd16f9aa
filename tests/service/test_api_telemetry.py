"""/v1/telemetry: consumer-group fetch, ack, redelivery, long polls."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
from starlette.applications import Starlette

from roost.hub.hub import Hub
from roost.model import TelemetryRecord
from roost.service.app import close_long_polls


def record(device: str, payload: bytes, path: str = "") -> TelemetryRecord:
    return TelemetryRecord(device, path, payload, time.time(), "text/plain")


async def test_fetch_and_ack(client: httpx.AsyncClient, hub: Hub) -> None:
    await hub.telemetry.ingest([record("d1", b"20.5", "temp"), record("d2", b"x")])
    r = await client.get("/v1/telemetry", params={"group": "analytics"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"records", "ack"} and body["ack"]
    first, second = body["records"]
    assert set(first) == {"seq", "device", "path", "payload", "content_type", "received_at"}
    assert first["device"] == "d1" and first["path"] == "temp"
    assert base64.b64decode(first["payload"]) == b"20.5"
    assert first["content_type"] == "text/plain" and second["seq"] > first["seq"]
    r = await client.post("/v1/telemetry/ack", json={"group": "analytics", "ack": body["ack"]})
    assert r.status_code == 200 and r.json() == {"acked": 2}
    # acked records are not handed out again, even after the ack timeout
    await asyncio.sleep(hub.settings.telemetry_ack_timeout)
    r = await client.get("/v1/telemetry", params={"group": "analytics"})
    assert r.json() == {"records": [], "ack": None}


async def test_each_group_reads_everything(client: httpx.AsyncClient, hub: Hub) -> None:
    await hub.telemetry.ingest([record("d1", b"1")])
    for group in ("g1", "g2"):
        r = await client.get("/v1/telemetry", params={"group": group})
        assert len(r.json()["records"]) == 1


async def test_max_limits_a_batch(client: httpx.AsyncClient, hub: Hub) -> None:
    await hub.telemetry.ingest([record("d1", bytes([i])) for i in range(5)])
    r = await client.get("/v1/telemetry", params={"group": "g", "max": 2})
    assert len(r.json()["records"]) == 2
    r = await client.get("/v1/telemetry", params={"group": "g", "max": 10})
    assert len(r.json()["records"]) == 3


async def test_unacked_records_come_back(client: httpx.AsyncClient, hub: Hub) -> None:
    await hub.telemetry.ingest([record("d1", b"a"), record("d1", b"b")])
    first = (await client.get("/v1/telemetry", params={"group": "g"})).json()
    assert len(first["records"]) == 2
    # leased: a second fetch right away does not see them
    r = await client.get("/v1/telemetry", params={"group": "g"})
    assert r.json()["records"] == []
    # after the ack timeout they are handed out again, with a new token
    r = await client.get("/v1/telemetry", params={"group": "g", "wait": 30})
    again = r.json()
    assert [x["seq"] for x in again["records"]] == [x["seq"] for x in first["records"]]
    assert again["ack"] != first["ack"]
    stale = await client.post("/v1/telemetry/ack", json={"group": "g", "ack": first["ack"]})
    assert stale.json() == {"acked": 0}
    fresh = await client.post("/v1/telemetry/ack", json={"group": "g", "ack": again["ack"]})
    assert fresh.json() == {"acked": 2}


async def test_from_latest(client: httpx.AsyncClient, hub: Hub) -> None:
    await hub.telemetry.ingest([record("d1", b"old")])
    r = await client.get("/v1/telemetry", params={"group": "late", "from": "latest"})
    assert r.json()["records"] == []
    await hub.telemetry.ingest([record("d1", b"new")])
    r = await client.get("/v1/telemetry", params={"group": "late"})
    assert [base64.b64decode(x["payload"]) for x in r.json()["records"]] == [b"new"]


async def test_long_poll_wakes_on_new_records(client: httpx.AsyncClient, hub: Hub) -> None:
    poll = asyncio.create_task(client.get("/v1/telemetry", params={"group": "g", "wait": 30}))
    await asyncio.sleep(0.05)
    await hub.telemetry.ingest([record("d1", b"late")])
    r = await poll
    assert [base64.b64decode(x["payload"]) for x in r.json()["records"]] == [b"late"]


async def test_long_poll_ends_when_the_server_closes(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    poll = asyncio.create_task(client.get("/v1/telemetry", params={"group": "g", "wait": 60}))
    await asyncio.sleep(0.05)
    close_long_polls(app)
    r = await asyncio.wait_for(poll, 30)
    assert r.status_code == 200 and r.json() == {"records": [], "ack": None}


async def test_parameter_checks(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/telemetry")
    assert r.status_code == 422 and "'group'" in r.json()["message"]
    for params in [{"max": "0"}, {"max": "1001"}, {"wait": "x"}, {"from": "middle"}]:
        r = await client.get("/v1/telemetry", params={"group": "g", **params})
        assert r.status_code == 422, params
        assert f"'{next(iter(params))}'" in r.json()["message"]
    r = await client.get("/v1/telemetry", params={"group": "bad/group"})
    assert r.status_code == 422
    r = await client.post("/v1/telemetry/ack", json={"group": "g"})
    assert r.status_code == 422 and "'ack'" in r.json()["message"]
