"""/v1/feedback: outcomes by cursor, paging, long polls."""

from __future__ import annotations

import asyncio
import base64

import httpx
from service_helpers import register

from roost.hub.hub import Hub

OUTCOME_FIELDS = {
    "seq",
    "id",
    "device",
    "kind",
    "name",
    "outcome",
    "at",
    "group",
    "status",
    "payload",
    "reason",
}


async def test_outcome_shapes(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    rejected = await client.post("/v1/devices/ghost/commands/open")
    assert rejected.status_code == 404
    cid = hub.messages.new_command_id("d1")
    await hub.messages.respond("d1", cid, 500, b"jammed")
    r = await client.get("/v1/feedback")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"outcomes", "next"}
    first, second = body["outcomes"]
    assert set(first) == OUTCOME_FIELDS and set(second) == OUTCOME_FIELDS
    assert first["outcome"] == "rejected" and first["reason"] == "unknown_device"
    assert first["device"] == "ghost" and first["kind"] == "command" and first["name"] == "open"
    assert second["kind"] == "response" and second["id"] == cid
    assert second["status"] == 500 and base64.b64decode(second["payload"]) == b"jammed"
    assert body["next"] == second["seq"] > first["seq"]


async def test_expired_outcome(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    sent = (await client.post("/v1/devices/d1/notifications/t", params={"ttl": "0.01"})).json()
    await asyncio.sleep(0.05)
    await hub.sweep()
    [outcome] = (await client.get("/v1/feedback")).json()["outcomes"]
    assert outcome["id"] == sent["id"] and outcome["outcome"] == "expired"


async def test_paging(client: httpx.AsyncClient, hub: Hub) -> None:
    cids = [hub.messages.new_command_id("d1") for _ in range(5)]
    for cid in cids:
        await hub.messages.respond("d1", cid, 200, b"")
    seen: list[str] = []
    after = 0
    while True:
        r = await client.get("/v1/feedback", params={"after": after, "limit": 2})
        page = r.json()
        if not page["outcomes"]:
            assert page["next"] == after  # nothing new: the cursor stays
            break
        assert len(page["outcomes"]) <= 2
        seen += [o["id"] for o in page["outcomes"]]
        after = page["next"]
    assert seen == cids
    # outcomes are not consumed by reading
    assert len((await client.get("/v1/feedback")).json()["outcomes"]) == 5


async def test_long_poll_wakes_on_outcome(client: httpx.AsyncClient, hub: Hub) -> None:
    poll = asyncio.create_task(client.get("/v1/feedback", params={"wait": 30}))
    await asyncio.sleep(0.05)
    cid = hub.messages.new_command_id("d1")
    await hub.messages.respond("d1", cid, 200, b"")
    r = await poll
    assert [o["id"] for o in r.json()["outcomes"]] == [cid]


async def test_parameter_checks(client: httpx.AsyncClient) -> None:
    for params in [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"wait": "inf"}]:
        r = await client.get("/v1/feedback", params=params)
        assert r.status_code == 422, params
        assert f"'{next(iter(params))}'" in r.json()["message"]
