"""Commands end to end: paho-mqtt device, HTTP API sender, real SQLite node.

DESIGN.md: a command is queued in the mailbox if the device is offline, never
delivered after its TTL, answered with a status and a body; with ``wait`` the
sender gets the answer (200) or 504 with the command's id, and the command stays
queued until its TTL.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from e2e.helpers import mailbox, outcomes_for, publish_props, wait_for
from e2e.paho_device import PahoDevice
from roost.testing.thread import NodeThread


def answer_commands(
    device: PahoDevice,
    status: int | None = 200,
    body: bytes = b"done",
    seen: queue.Queue[mqtt.MQTTMessage] | None = None,
) -> threading.Thread:
    """Answer the next command the device receives, from a thread, like firmware would.

    MQTT 5 sends the status as user property ``status`` to the Response Topic;
    3.1.1 puts it as the last topic level. ``status=None`` sends none (default 200).
    """

    def run() -> None:
        msg = device.expect()
        if seen is not None:
            seen.put(msg)
        cid = msg.topic.rsplit("/", 1)[1]
        topic = f"devices/{device.device_id}/responses/{cid}"
        if device.version == 5:
            props = publish_props(UserProperty=[("status", str(status))]) if status else None
            device.publish(topic, body, properties=props)
        else:
            device.publish(f"{topic}/{status}" if status else topic, body)

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


def test_response_without_status_means_200(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("truck-8")
    dev = devices("truck-8", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/truck-8/commands/#") == [1]
    answer_commands(dev, None, b"ok")
    r = api.post("/v1/devices/truck-8/commands/honk?wait=10", content=b"")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 200
    assert base64.b64decode(r.json()["payload"]) == b"ok"


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
    outcomes = outcomes_for(api, [short.json()["id"], long.json()["id"]])
    assert outcomes[short.json()["id"]]["outcome"] == "expired"
    assert outcomes[long.json()["id"]]["outcome"] == "delivered"


def test_wait_timeout_is_504_with_id_and_the_command_stays_queued(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("pump-3")
    r = api.post("/v1/devices/pump-3/commands/start?ttl=60&wait=1", content=b"go")
    assert r.status_code == 504, r.text
    body = r.json()
    assert body["error"] == "timeout"
    cid = body["id"]
    assert [(m["kind"], m["name"], m["ref"]) for m in mailbox(api, "pump-3")] == [
        ("command", "start", cid)
    ]
    dev = devices("pump-3", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/pump-3/commands/#") == [1]
    msg = dev.expect()
    assert msg.topic == f"devices/pump-3/commands/start/{cid}"
    assert msg.payload == b"go"
    assert outcomes_for(api, [cid])[cid]["outcome"] == "delivered"


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_command_properties_and_status_user_property(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("valve-5")
    dev = devices("valve-5", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/valve-5/commands/#") == [1]
    seen: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    answer_commands(dev, 207, b"half-open", seen)
    r = api.post(
        "/v1/devices/valve-5/commands/open?ttl=30&wait=10",
        content=b'{"pct":50}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 207
    assert base64.b64decode(r.json()["payload"]) == b"half-open"
    cid = r.json()["id"]
    msg = seen.get(timeout=1)
    assert msg.topic == f"devices/valve-5/commands/open/{cid}"
    props = msg.properties
    assert props.ResponseTopic == f"devices/valve-5/responses/{cid}"
    assert props.CorrelationData == cid.encode()
    assert 1 <= props.MessageExpiryInterval <= 30
    assert props.ContentType == "application/json"


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_response_to_the_response_topic_reaches_feedback(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """A device answering on the Response Topic it was given (not building the topic)."""
    key = register("valve-6")
    dev = devices("valve-6", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/valve-6/commands/#") == [1]
    r = api.post("/v1/devices/valve-6/commands/close", content=b"")
    assert r.status_code == 202
    cid = r.json()["id"]
    msg = dev.expect()
    dev.publish(msg.properties.ResponseTopic, b"closed",
                properties=publish_props(UserProperty=[("status", "409")],
                                         ContentType="text/plain"))

    def response() -> dict[str, object] | None:
        for o in api.get("/v1/feedback", params={"limit": 1000}).json()["outcomes"]:
            if o["id"] == cid and o["kind"] == "response":
                return dict(o)
        return None

    answer = wait_for(response, what="the command response in feedback")
    assert answer["status"] == 409
    assert base64.b64decode(str(answer["payload"])) == b"closed"
    assert answer["content_type"] == "text/plain"


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_response_content_type_reaches_the_waiting_sender(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("valve-7")
    dev = devices("valve-7", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/valve-7/commands/#") == [1]

    def run() -> None:
        msg = dev.expect()
        dev.publish(msg.properties.ResponseTopic, b'{"open":false}',
                    properties=publish_props(ContentType="application/json"))

    threading.Thread(target=run, daemon=True).start()
    r = api.post("/v1/devices/valve-7/commands/state?wait=10", content=b"")
    assert r.status_code == 200, r.text
    assert r.json()["content_type"] == "application/json"
    assert base64.b64decode(r.json()["payload"]) == b'{"open":false}'


@pytest.mark.node(mailbox_depth=3)
def test_full_mailbox_rejects_with_409_and_a_rejected_outcome(
    api: httpx.Client, register: Callable[..., str]
) -> None:
    register("gate-1")
    for i in range(3):
        r = api.post(f"/v1/devices/gate-1/commands/c{i}", content=b"x")
        assert r.status_code == 202, r.text
    r = api.post("/v1/devices/gate-1/commands/c3", content=b"x")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "mailbox_full"
    n = api.post("/v1/devices/gate-1/notifications/info", content=b"x")
    assert n.status_code == 409 and n.json()["error"] == "mailbox_full"

    def rejected() -> list[dict[str, object]]:
        return [o for o in api.get("/v1/feedback").json()["outcomes"]
                if o["outcome"] == "rejected" and o["device"] == "gate-1"]

    found = wait_for(lambda: len(rejected()) >= 2 and rejected(), what="rejected outcomes")
    assert sorted((o["kind"], o["name"], o["reason"]) for o in found) == [
        ("command", "c3", "mailbox_full"),
        ("notification", "info", "mailbox_full"),
    ]
    # the refusal names the message, so the sender can match it with its outcome
    assert {r.json()["id"], n.json()["id"]} == {o["id"] for o in found}
    assert len(mailbox(api, "gate-1")) == 3


def test_unknown_device_is_404_and_a_rejected_outcome(api: httpx.Client) -> None:
    r = api.post("/v1/devices/ghost-9/commands/boo", content=b"x")
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "unknown_device"

    def rejected() -> list[dict[str, object]]:
        return [o for o in api.get("/v1/feedback").json()["outcomes"]
                if o["outcome"] == "rejected" and o["device"] == "ghost-9"]

    found = wait_for(rejected, what="a rejected outcome")
    assert [(o["id"], o["kind"], o["name"], o["reason"]) for o in found] == [
        (r.json()["id"], "command", "boo", "unknown_device")
    ]


def test_a_caught_up_device_gets_new_commands_without_a_mailbox_read(
    node: NodeThread, api: httpx.Client, register: Callable[..., str],
    devices: Callable[..., PahoDevice], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a connected device's link has read all its mailbox holds, a command stored
    next is handed over as it was stored (the store's announcement carries it): no read
    of the mailbox, in the mailbox's order."""
    key = register("pump-1")
    dev = devices("pump-1", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/pump-1/commands/#") == [1]
    assert api.post("/v1/devices/pump-1/commands/first", content=b"0").status_code == 202
    assert dev.expect().payload == b"0"  # the subscription's read has run
    backplane = node.node.hub.backplane
    reads: list[tuple[Any, ...]] = []
    read = backplane.mailbox_read

    async def counting_read(*args: Any) -> Any:
        reads.append(args)
        return await read(*args)

    monkeypatch.setattr(backplane, "mailbox_read", counting_read)
    for i in range(1, 6):
        assert api.post("/v1/devices/pump-1/commands/next", content=f"{i}".encode()
                        ).status_code == 202
    assert [dev.expect().payload for _ in range(5)] == [b"1", b"2", b"3", b"4", b"5"]
    assert reads == []
