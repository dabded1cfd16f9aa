"""Commands, notifications (device, group, broadcast) and mailboxes."""

from __future__ import annotations

import asyncio
import base64

import httpx
from service_helpers import register, wait_for_command

from roost.hub.hub import Hub
from roost.model import BROADCAST, OutcomeKind


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_command_without_wait_is_queued(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    r = await client.post(
        "/v1/devices/d1/commands/unlock",
        content=b"\x00\x01door",
        headers={"content-type": "application/x-door"},
        params={"ttl": "30"},
    )
    assert r.status_code == 202
    assert set(r.json()) == {"id"}
    [msg] = await hub.messages.pending("d1")
    assert msg.id == r.json()["id"] and msg.ref == msg.id
    assert msg.name == "unlock" and msg.payload == b"\x00\x01door"
    assert msg.content_type == "application/x-door"
    assert 29 < msg.expires_at - msg.created_at <= 30


async def test_command_wait_answered(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")

    async def device_answers() -> None:
        msg = await wait_for_command(hub, "d1")
        await hub.messages.respond("d1", msg.id, 201, b"opened")

    answering = asyncio.create_task(device_answers())
    r = await client.post("/v1/devices/d1/commands/unlock", content=b"x", params={"wait": 30})
    await answering
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "status", "payload"}
    assert body["status"] == 201 and base64.b64decode(body["payload"]) == b"opened"


async def test_command_wait_unanswered_is_504_with_id(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    r = await client.post("/v1/devices/d1/commands/reboot", params={"wait": "0.05"})
    assert r.status_code == 504
    body = r.json()
    assert body["error"] == "timeout" and body["message"]
    # the command stays queued until its TTL
    [msg] = await hub.messages.pending("d1")
    assert body["id"] == msg.id


async def test_command_to_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/devices/ghost/commands/x")
    assert r.status_code == 404 and r.json()["error"] == "unknown_device"


async def test_mailbox_full_is_409_and_rejected(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")  # the settings allow 3 messages per mailbox
    for _ in range(3):
        assert (await client.post("/v1/devices/d1/commands/c")).status_code == 202
    r = await client.post("/v1/devices/d1/notifications/alerts")
    assert r.status_code == 409 and r.json()["error"] == "mailbox_full"
    outcomes = await hub.feedback.read(0, 100)
    assert [(o.outcome, o.reason) for o in outcomes] == [(OutcomeKind.REJECTED, "mailbox_full")]


async def test_query_parameter_checks(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    cases = [("ttl", "soon"), ("ttl", "0"), ("ttl", "-1"), ("ttl", "1e9"), ("wait", "nan")]
    cases += [("wait", "61"), ("wait", "-1")]
    for name, value in cases:
        r = await client.post("/v1/devices/d1/commands/c", params={name: value})
        assert r.status_code == 422, (name, value)
        assert f"'{name}'" in r.json()["message"]
    assert await hub.messages.pending("d1") == []  # nothing queued by a refused request


async def test_bad_command_name_is_422(client: httpx.AsyncClient) -> None:
    await register(client, "d1")
    r = await client.post("/v1/devices/d1/commands/a+b")
    assert r.status_code == 422


async def test_payload_too_large_is_413(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    big = b"x" * (hub.settings.max_packet_size + 1)
    r = await client.post("/v1/devices/d1/commands/c", content=big)
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    r = await client.post("/v1/broadcast/notifications/t", content=big)
    assert r.status_code == 413
    assert await hub.messages.pending("d1") == []


async def test_notify_device(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    r = await client.post(
        "/v1/devices/d1/notifications/alerts/fire",
        content=b'{"level": 3}',
        headers={"content-type": "application/json"},
        params={"ttl": 60},
    )
    assert r.status_code == 202 and set(r.json()) == {"id"}
    [msg] = await hub.messages.pending("d1")
    assert msg.id == r.json()["id"] and msg.name == "alerts/fire"
    assert msg.content_type == "application/json"


async def test_notify_unknown_device_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/devices/ghost/notifications/t")
    assert r.status_code == 404


async def test_notify_group_and_broadcast(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "a1", "fleet")
    await register(client, "b1")
    r = await client.post("/v1/groups/fleet/notifications/road/closed", content=b"A7")
    assert r.status_code == 202
    group_id = r.json()["id"]
    r = await client.post("/v1/broadcast/notifications/maintenance", content=b"tonight")
    assert r.status_code == 202
    all_id = r.json()["id"]
    a1 = {m.id: m for m in await hub.messages.pending("a1")}
    b1 = {m.id: m for m in await hub.messages.pending("b1")}
    assert set(a1) == {group_id, all_id} and set(b1) == {all_id}
    assert a1[group_id].group == "fleet" and a1[group_id].name == "road/closed"
    assert b1[all_id].group == BROADCAST


async def test_notify_bad_group_or_topic_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/groups/bad group/notifications/t")
    assert r.status_code == 422 and r.json()["error"] == "invalid_id"
    for topic in ["a%0Ab", "a/+/b", "a//b", "$SYS", ""]:
        r = await client.post(f"/v1/broadcast/notifications/{topic}")
        assert r.status_code == 422, topic


async def test_mailbox_list(client: httpx.AsyncClient) -> None:
    await register(client, "d1", "fleet")
    r = await client.post(
        "/v1/devices/d1/commands/unlock", content=b"c", headers={"content-type": "text/plain"}
    )
    cid = r.json()["id"]
    await client.post("/v1/groups/fleet/notifications/news", content=b"n")
    r = await client.get("/v1/devices/d1/mailbox")
    assert r.status_code == 200
    [command, news] = r.json()["messages"]
    assert set(command) == {
        "id",
        "kind",
        "name",
        "ref",
        "payload",
        "content_type",
        "created_at",
        "expires_at",
        "group",
        "attempts",
    }
    assert command["id"] == cid and command["kind"] == "command" and command["ref"] == cid
    assert command["payload"] == b64(b"c") and command["content_type"] == "text/plain"
    assert command["group"] is None and command["attempts"] == 0
    assert news["kind"] == "notification" and news["group"] == "fleet"
    assert news["payload"] == b64(b"n") and news["content_type"] is None
    assert (await client.get("/v1/devices/ghost/mailbox")).status_code == 404


async def test_mailbox_purge(client: httpx.AsyncClient, hub: Hub) -> None:
    await register(client, "d1")
    ids = [(await client.post("/v1/devices/d1/commands/c")).json()["id"] for _ in range(2)]
    r = await client.delete("/v1/devices/d1/mailbox")
    assert r.status_code == 200 and r.json() == {"purged": 2}
    assert (await client.get("/v1/devices/d1/mailbox")).json() == {"messages": []}
    outcomes = (await client.get("/v1/feedback")).json()["outcomes"]
    assert {(o["id"], o["outcome"]) for o in outcomes} == {(i, "purged") for i in ids}
    assert (await client.delete("/v1/devices/ghost/mailbox")).status_code == 404


async def test_device_shows_mailbox_depth(client: httpx.AsyncClient) -> None:
    await register(client, "d1")
    await client.post("/v1/devices/d1/notifications/t")
    assert (await client.get("/v1/devices/d1")).json()["mailbox_depth"] == 1
