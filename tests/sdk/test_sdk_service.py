"""roost.sdk.Service against the real API app and hub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx
import pytest
from starlette.applications import Starlette

from roost.errors import (
    AlreadyExists,
    AuthError,
    Forbidden,
    InquiryEnded,
    InvalidId,
    InvalidInput,
    MailboxFull,
    NotFound,
    Timeout,
    Unavailable,
    UnknownDevice,
)
from roost.hub.hub import Hub
from roost.model import MessageKind, TelemetryRecord
from roost.sdk import Service
from roost.sdk.types import Inquiry, Record

URL = "http://roost.test"


async def answer_first_command(hub: Hub, device: str, status: int, payload: bytes) -> None:
    while True:
        commands = [m for m in await hub.messages.pending(device) if m.kind is MessageKind.COMMAND]
        if commands:
            await hub.messages.respond(device, commands[0].id, status, payload)
            return
        await asyncio.sleep(0.01)


# --- devices ---------------------------------------------------------------------------


async def test_device_lifecycle(service: Service) -> None:
    created = await service.register_device("truck-7", groups=["fleet"], metadata={"vin": "1"})
    assert created["id"] == "truck-7" and len(created["key"]) >= 16
    device = await service.get_device("truck-7")
    assert device.groups == ("fleet",) and device.metadata == {"vin": "1"}
    assert device.enabled and not device.connected and device.mailbox_depth == 0
    changed = await service.update_device("truck-7", enabled=False, groups=["a", "b"])
    assert not changed.enabled and changed.groups == ("a", "b")
    new_key = await service.rotate_key("truck-7")
    assert new_key != created["key"]
    await service.remove_device("truck-7")
    with pytest.raises(UnknownDevice):
        await service.get_device("truck-7")


async def test_ids_with_odd_characters_round_trip(service: Service) -> None:
    await service.register_device("a:b@c=d~e.f")
    assert (await service.get_device("a:b@c=d~e.f")).id == "a:b@c=d~e.f"


async def test_device_errors(service: Service) -> None:
    await service.register_device("d1")
    with pytest.raises(AlreadyExists) as exists:
        await service.register_device("d1")
    assert exists.value.http_status == 409 and "d1" in exists.value.message
    with pytest.raises(InvalidId):
        await service.register_device("bad id")
    with pytest.raises(InvalidInput):
        await service.register_device("d2", key="short")
    with pytest.raises(UnknownDevice):
        await service.remove_device("ghost")


async def test_list_devices_pages_through(service: Service) -> None:
    for i in range(5):
        await service.register_device(f"d{i}", groups=["odd"] if i % 2 else [])
    ids = [d.id async for d in service.list_devices(page_size=2)]
    assert ids == [f"d{i}" for i in range(5)]
    assert [d.id async for d in service.list_devices(group="odd")] == ["d1", "d3"]
    page = await service.device_page(limit=3)
    assert [d.id for d in page.devices] == ["d0", "d1", "d2"] and page.next == "d2"


async def test_import_devices(service: Service) -> None:
    await service.register_device("old")
    result = await service.import_devices("id,groups\nold,\nn1,a;b\nn2,\n")
    assert result.created == 2 and result.skipped == 1
    assert [device_id for device_id, _ in result.keys] == ["n1", "n2"]
    result = await service.import_devices([{"id": "n3", "groups": ["x"]}])
    assert result.created == 1
    assert (await service.get_device("n1")).groups == ("a", "b")


# --- messages ----------------------------------------------------------------------------


async def test_command_answered(service: Service, hub: Hub) -> None:
    await service.register_device("d1")
    device = asyncio.create_task(answer_first_command(hub, "d1", 202, b"unlocked"))
    response = await service.command("d1", "unlock", b"now", ttl=30, wait=30)
    await device
    assert response.status == 202 and response.payload == b"unlocked" and response.id


async def test_command_timeout_carries_the_id(service: Service, hub: Hub) -> None:
    await service.register_device("d1")
    with pytest.raises(Timeout) as timeout:
        await service.command("d1", "reboot", wait=0.05)
    [queued] = await service.mailbox("d1")
    assert timeout.value.detail["id"] == queued.id and queued.name == "reboot"


async def test_command_without_wait(service: Service) -> None:
    await service.register_device("d1")
    sent = await service.command("d1", "ping", b"1", wait=None, content_type="text/plain")
    assert sent.status is None and sent.payload is None
    [queued] = await service.mailbox("d1")
    assert queued.id == sent.id and queued.content_type == "text/plain"


async def test_notifications_and_mailbox(service: Service) -> None:
    await service.register_device("d1", groups=["fleet"])
    one = await service.notify("d1", "alerts/fire", b"1", ttl=60)
    group = await service.notify_group("fleet", "news", b"2")
    everyone = await service.broadcast("maintenance", b"3", content_type="text/plain")
    pending = await service.mailbox("d1")
    assert {m.id for m in pending} == {one, group, everyone}
    by_id = {m.id: m for m in pending}
    assert by_id[one].name == "alerts/fire" and by_id[one].payload == b"1"
    assert by_id[group].group == "fleet" and by_id[everyone].content_type == "text/plain"
    assert await service.purge_mailbox("d1") == 3  # unread group messages are skipped too
    assert await service.mailbox("d1") == []


async def test_mailbox_full(service: Service, hub: Hub) -> None:
    await service.register_device("d1")
    for _ in range(hub.settings.mailbox_depth):
        await service.notify("d1", "t")
    with pytest.raises(MailboxFull):
        await service.notify("d1", "t")


# --- telemetry ----------------------------------------------------------------------------


def record(payload: bytes) -> TelemetryRecord:
    return TelemetryRecord("d1", "temp", payload, time.time())


async def test_telemetry_iterator_acks_after_each_batch(service: Service, hub: Hub) -> None:
    await hub.telemetry.ingest([record(b"1"), record(b"2"), record(b"3")])
    got: list[Record] = []
    async with aclosing(service.telemetry("g", max=2, wait=0, follow=False)) as records:
        async for rec in records:
            got.append(rec)
    assert [r.payload for r in got] == [b"1", b"2", b"3"]
    assert got[0].device == "d1" and got[0].path == "temp"
    await asyncio.sleep(hub.settings.telemetry_ack_timeout)
    batch = await service.fetch_telemetry("g")
    assert batch.records == [] and batch.ack is None  # all acked: nothing comes back


async def test_telemetry_stopped_mid_batch_comes_back(service: Service, hub: Hub) -> None:
    await hub.telemetry.ingest([record(b"1"), record(b"2")])
    async with aclosing(service.telemetry("g", wait=0)) as records:
        async for rec in records:
            assert rec.payload == b"1"
            break  # the batch was not finished, so it is not acked
    batch = await service.fetch_telemetry("g", wait=30)
    assert [r.payload for r in batch.records] == [b"1", b"2"]
    assert batch.ack is not None
    assert await service.ack_telemetry("g", batch.ack) == 2


async def test_telemetry_from_latest(service: Service, hub: Hub) -> None:
    await hub.telemetry.ingest([record(b"old")])
    assert (await service.fetch_telemetry("late", from_latest=True)).records == []


# --- feedback ------------------------------------------------------------------------------


async def test_feedback_page_and_stream(service: Service, hub: Hub) -> None:
    cids = [hub.messages.new_command_id("d1") for _ in range(3)]
    for cid in cids:
        await hub.messages.respond("d1", cid, 200, b"ok")
    page = await service.feedback(limit=2)
    assert [o.id for o in page.outcomes] == cids[:2] and page.next == page.outcomes[-1].seq
    assert page.outcomes[0].payload == b"ok" and page.outcomes[0].status == 200
    rest = await service.feedback(after=page.next)
    assert [o.id for o in rest.outcomes] == cids[2:]
    streamed = [o.id async for o in service.follow_feedback(wait=0, follow=False)]
    assert streamed == cids


# --- inquiries ------------------------------------------------------------------------------


async def wait_ended(hub: Hub, inquiry_id: str) -> None:
    while (await hub.inquiries.get(inquiry_id)).state != "ended":
        await asyncio.sleep(0.01)


async def test_inquiry_handlers(service: Service, hub: Hub) -> None:
    await service.register_device("d1")

    @service.inquiry_handler("weather")
    async def weather(inquiry: Inquiry) -> bytes:
        return b"sunny"

    @service.inquiry_handler("traffic")
    async def traffic(inquiry: Inquiry) -> AsyncIterator[bytes]:
        for alert in (b"jam", b"clear"):
            yield alert

    serving = asyncio.create_task(service.serve_inquiries(wait=1))
    try:
        once = await hub.inquiries.ask("d1", "weather", "r1", b"Oslo")
        stream = await hub.inquiries.ask("d1", "traffic", "r2", b"E6")
        await asyncio.wait_for(wait_ended(hub, once.id), 30)
        await asyncio.wait_for(wait_ended(hub, stream.id), 30)
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    replies = [(m.ref, m.payload) for m in await hub.messages.pending("d1")]
    assert [p for ref, p in replies if ref == "r1"] == [b"sunny", b""]
    assert [p for ref, p in replies if ref == "r2"] == [b"jam", b"clear", b""]
    assert (await service.inquiry(once.id)).state == "ended"


async def test_take_and_reply_by_hand(service: Service, hub: Hub) -> None:
    await service.register_device("d1")
    asked = await hub.inquiries.ask("d1", "q", "r1", b"?")
    [taken] = await service.take_inquiries(wait=0)
    assert taken.id == asked.id and taken.payload == b"?" and taken.rid == "r1"
    await service.reply(taken.id, b"part")
    await service.reply(taken.id, b"last", end=True)
    with pytest.raises(InquiryEnded):
        await service.reply(taken.id, b"late")
    with pytest.raises(NotFound):
        await service.inquiry("nope")


async def test_serve_needs_a_handler(service: Service) -> None:
    with pytest.raises(ValueError, match="inquiry_handler"):
        await service.serve_inquiries()


# --- tokens and auth ------------------------------------------------------------------------


async def test_tokens(service: Service, app: Starlette) -> None:
    new = await service.create_token(["feedback"], "dashboard")
    assert new.scopes == ("feedback",) and new.token
    assert new.id in {t.id for t in await service.list_tokens()}
    transport = httpx.ASGITransport(app=app)
    async with Service(URL, new.token, transport=transport) as narrow:
        assert (await narrow.feedback()).outcomes == []
        with pytest.raises(Forbidden):
            await narrow.register_device("x")
    await service.revoke_token(new.id)
    async with Service(URL, new.token, transport=transport) as revoked:
        with pytest.raises(AuthError):
            await revoked.feedback()


async def test_unreachable_server_is_unavailable() -> None:
    async with Service("http://127.0.0.1:1", "t", timeout=5) as s:
        assert not await s.healthy()
        with pytest.raises(Unavailable, match="cannot reach"):
            await s.get_device("d1")


async def test_healthy(service: Service) -> None:
    assert await service.healthy()
