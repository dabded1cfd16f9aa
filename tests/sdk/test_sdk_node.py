"""The SDK on both sides of a real node: Service over HTTP, Device over MQTT (paho)."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from roost.config import Settings
from roost.node import Node
from roost.sdk import Service
from roost.sdk.device import Command, Device, Notification, Reply
from roost.sdk.types import Inquiry

pytest.importorskip("paho.mqtt.client", reason="the Device helper needs paho-mqtt")
pytestmark = pytest.mark.slow

WAIT = 30.0  # generous: a slow machine must not fail these


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    settings = Settings(
        data_dir=tmp_path, mqtt_port=0, http_port=0, host="127.0.0.1", node="sdk-e2e"
    )
    node = Node(settings)
    await node.start()
    yield node
    await node.stop()


@pytest.fixture
async def service(node: Node) -> AsyncIterator[Service]:
    assert node.admin_token_path is not None
    token = node.admin_token_path.read_text().strip()
    async with Service(f"http://127.0.0.1:{node.http_port}", token) as s:
        yield s


async def connected_device(node: Node, service: Service, device_id: str) -> Device:
    key = (await service.register_device(device_id))["key"]
    device = Device("127.0.0.1", node.mqtt_port, device_id, key, timeout=WAIT)
    await asyncio.to_thread(device.connect)
    return device


async def test_command_round_trip(node: Node, service: Service) -> None:
    device = await connected_device(node, service, "truck-7")
    try:
        seen: queue.Queue[Command] = queue.Queue()

        def answer(cmd: Command) -> None:
            seen.put(cmd)
            device.respond(cmd.cid, 200, b"pong:" + cmd.payload)

        await asyncio.to_thread(device.on_command, answer)
        response = await service.command("truck-7", "ping", b"1", ttl=60, wait=WAIT)
        assert response.status == 200 and response.payload == b"pong:1"
        cmd = seen.get_nowait()
        assert cmd.name == "ping" and cmd.cid == response.id
        assert (await service.get_device("truck-7")).connected
    finally:
        await asyncio.to_thread(device.close)


async def test_telemetry_and_notifications(node: Node, service: Service) -> None:
    device = await connected_device(node, service, "lamp-1")
    try:
        notes: queue.Queue[Notification] = queue.Queue()
        await asyncio.to_thread(device.on_notification, notes.put)
        await asyncio.to_thread(device.telemetry, b"21.5", "temp", content_type="text/plain")
        async with aclosing(service.telemetry("ops", wait=WAIT)) as records:
            async for record in records:
                assert record.device == "lamp-1" and record.path == "temp"
                assert record.payload == b"21.5"
                break
        await service.notify("lamp-1", "dim/50", b"now")
        note = await asyncio.to_thread(notes.get, True, WAIT)
        assert note.topic == "dim/50" and note.payload == b"now"
    finally:
        await asyncio.to_thread(device.close)


async def test_inquiry_round_trip(node: Node, service: Service) -> None:
    device = await connected_device(node, service, "car-1")
    replies: queue.Queue[Reply] = queue.Queue()

    @service.inquiry_handler("traffic")
    async def traffic(inquiry: Inquiry) -> AsyncIterator[bytes]:
        yield b"jam on " + inquiry.payload
        yield b"clear"

    serving = asyncio.create_task(service.serve_inquiries(wait=1))
    try:
        await asyncio.to_thread(device.on_reply, replies.put)
        rid = await asyncio.to_thread(device.ask, "traffic", b"E6")
        got: list[Reply] = []
        while not got or not got[-1].end:
            got.append(await asyncio.to_thread(replies.get, True, WAIT))
        assert all(r.rid == rid and r.name == "traffic" for r in got)
        assert [r.payload for r in got if r.payload] == [b"jam on E6", b"clear"]
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        await asyncio.to_thread(device.close)
