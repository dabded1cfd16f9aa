"""/v1/inquiries: take, reply, end, state."""

from __future__ import annotations

import asyncio
import base64

import httpx
from service_helpers import register

from roost.hub.hub import Hub
from roost.model import MessageKind


async def test_take_and_answer_once(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    asked = await hub.inquiries.ask("d1", "weather", "r1", b"Oslo", content_type="text/plain")
    r = await client.get("/v1/inquiries")
    assert r.status_code == 200
    [inq] = r.json()["inquiries"]
    assert set(inq) == {
        "id",
        "device",
        "name",
        "rid",
        "payload",
        "content_type",
        "created_at",
        "expires_at",
    }
    assert inq["id"] == asked.id and inq["device"] == "d1" and inq["name"] == "weather"
    assert inq["rid"] == "r1" and base64.b64decode(inq["payload"]) == b"Oslo"
    assert inq["content_type"] == "text/plain"
    # taken: not handed out twice
    assert (await client.get("/v1/inquiries")).json() == {"inquiries": []}

    r = await client.post(
        f"/v1/inquiries/{asked.id}/replies",
        params={"end": "true"},
        content=b"rain",
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 202 and r.json()["id"]
    replies = [m for m in await hub.messages.pending("d1") if m.kind is MessageKind.REPLY]
    assert replies[0].payload == b"rain" and replies[0].ref == "r1"
    assert replies[0].content_type == "text/plain" and replies[0].id == r.json()["id"]
    assert replies[-1].props.get("end") == "1"

    state = (await client.get(f"/v1/inquiries/{asked.id}")).json()
    assert state["state"] == "ended" and state["id"] == asked.id

    r = await client.post(f"/v1/inquiries/{asked.id}/replies", content=b"more")
    assert r.status_code == 409 and r.json()["error"] == "inquiry_ended"


async def test_streaming_replies(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    asked = await hub.inquiries.ask("d1", "traffic", "r9", b"route 66")
    for alert in (b"jam", b"clear"):
        r = await client.post(f"/v1/inquiries/{asked.id}/replies", content=alert)
        assert r.status_code == 202
    state = (await client.get(f"/v1/inquiries/{asked.id}")).json()["state"]
    assert state == "answering"
    r = await client.post(f"/v1/inquiries/{asked.id}/replies", params={"end": "1"})
    assert r.status_code == 202
    assert (await client.get(f"/v1/inquiries/{asked.id}")).json()["state"] == "ended"
    payloads = [m.payload for m in await hub.messages.pending("d1")]
    assert payloads == [b"jam", b"clear", b""]


async def test_take_long_poll(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    poll = asyncio.create_task(client.get("/v1/inquiries", params={"wait": 30, "max": 5}))
    await asyncio.sleep(0.05)
    asked = await hub.inquiries.ask("d1", "weather", "r1", b"")
    r = await poll
    assert [i["id"] for i in r.json()["inquiries"]] == [asked.id]


async def test_unknown_and_bad_requests(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/inquiries/nope")).status_code == 404
    r = await client.post("/v1/inquiries/nope/replies", content=b"x")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    for params in [{"max": "0"}, {"max": "101"}, {"wait": "-2"}]:
        assert (await client.get("/v1/inquiries", params=params)).status_code == 422
    r = await client.post("/v1/inquiries/nope/replies", params={"end": "maybe"})
    assert r.status_code == 422 and "'end'" in r.json()["message"]
