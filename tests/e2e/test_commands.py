"""Commands end to end: paho-mqtt device, HTTP API sender, real SQLite node."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import httpx
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from e2e.paho_device import PahoDevice


def answer_commands(device: PahoDevice, status: int = 200, body: bytes = b"done") -> threading.Thread:
    """Answer the next command the device receives, from a thread, like firmware would."""

    def run() -> None:
        msg = device.expect()
        cid = msg.topic.rsplit("/", 1)[1]
        if device.version == 5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("status", str(status))]
            device.publish(f"devices/{device.client._client_id.decode()}/responses/{cid}", body,
                           properties=props)
        else:
            device.publish(f"devices/{device.client._client_id.decode()}/responses/{cid}/{status}", body)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_command_with_wait_gets_the_device_response(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("truck-7")
    dev = devices("truck-7", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/truck-7/commands/#") == [1]
    answer_commands(dev, 201, b"unlocked")
    r = api.post("/v1/devices/truck-7/commands/unlock?ttl=30&wait=10", content=b'{"door":1}')
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 201
    assert base64.b64decode(body["payload"]) == b"unlocked"


def test_offline_command_expires_or_waits_by_ttl(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("lamp-1")
    short = api.post("/v1/devices/lamp-1/commands/blink?ttl=1", content=b"short")
    long = api.post("/v1/devices/lamp-1/commands/dim?ttl=60", content=b"long")
    assert short.status_code == 202 and long.status_code == 202
    time.sleep(1.5)
    dev = devices("lamp-1", key)
    assert dev.connect() == 0
    dev.subscribe("devices/lamp-1/commands/#")
    msg = dev.expect()
    assert msg.topic == f"devices/lamp-1/commands/dim/{long.json()['id']}"
    assert msg.payload == b"long"
    dev.expect_none(1.0)
    outcomes = {}
    deadline = time.time() + 15
    while time.time() < deadline and len(outcomes) < 2:
        for o in api.get("/v1/feedback").json()["outcomes"]:
            outcomes[o["id"]] = o["outcome"]
        time.sleep(0.3)
    assert outcomes[short.json()["id"]] == "expired"
    assert outcomes[long.json()["id"]] == "delivered"
