"""The mailbox end to end (DESIGN.md, device-facing contract).

Messages wait for the device (whether or not it ever connected, whatever its
MQTT session), are delivered in order on QoS 1 subscriptions, removed on
PUBACK (outcome ``delivered``), redelivered with DUP when not acknowledged, and
purged by an operator (outcome ``purged``). QoS 0 subscriptions deliver at
most once and remove at once.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from conformance.rawmqtt import RawClient
from e2e.helpers import device_info, mailbox, outcomes_for, wait_for
from e2e.paho_device import PahoDevice
from roost.testing.thread import NodeThread


def notify(api: httpx.Client, device: str, topic: str, payload: bytes, ttl: int = 600) -> str:
    r = api.post(f"/v1/devices/{device}/notifications/{topic}?ttl={ttl}", content=payload)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_fifty_queued_messages_arrive_in_order(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("meter-1")
    ids = [notify(api, "meter-1", "reading", f"{i}".encode()) for i in range(50)]
    dev = devices("meter-1", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-1/notifications/#") == [1]
    got = [dev.expect().payload for _ in range(50)]
    assert got == [f"{i}".encode() for i in range(50)]
    dev.expect_none(0.5)
    outcomes = outcomes_for(api, ids)
    assert {o["outcome"] for o in outcomes.values()} == {"delivered"}
    wait_for(lambda: device_info(api, "meter-1")["mailbox_depth"] == 0, what="an empty mailbox")


def test_unacknowledged_message_is_redelivered_with_dup(
    node: NodeThread, api: httpx.Client, register: Callable[..., str], version: int
) -> None:
    """A QoS 1 message the device never PUBACKed comes again, DUP=1, same payload."""
    key = register("meter-2")
    mid = notify(api, "meter-2", "alarm", b"fire")
    with RawClient(node.mqtt_port, version) as first:
        assert first.handshake("meter-2", key).code == 0
        assert first.subscribe([("devices/meter-2/notifications/#", 1)]) == [1]
        msg = first.expect_publish()
        assert (msg.topic, msg.payload, msg.qos, msg.dup) == (
            "devices/meter-2/notifications/alarm", b"fire", 1, False)
    # closed without PUBACK; the node notes the attempt before the next connection
    wait_for(lambda: mailbox(api, "meter-2")[0]["attempts"] >= 1, what="the attempt to be noted")
    with RawClient(node.mqtt_port, version) as second:
        assert second.handshake("meter-2", key).code == 0
        assert second.subscribe([("devices/meter-2/notifications/#", 1)]) == [1]
        again = second.expect_publish()
        assert (again.topic, again.payload, again.qos, again.dup) == (
            "devices/meter-2/notifications/alarm", b"fire", 1, True)
        assert again.packet_id is not None
        second.puback(again.packet_id)
        assert outcomes_for(api, [mid])[mid]["outcome"] == "delivered"
        assert device_info(api, "meter-2")["mailbox_depth"] == 0


def test_acknowledged_message_is_gone(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("meter-3")
    mid = notify(api, "meter-3", "tariff", b"night")
    assert device_info(api, "meter-3")["mailbox_depth"] == 1
    dev = devices("meter-3", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-3/notifications/#") == [1]
    assert dev.expect().payload == b"night"
    assert outcomes_for(api, [mid])[mid]["outcome"] == "delivered"
    assert device_info(api, "meter-3")["mailbox_depth"] == 0
    assert mailbox(api, "meter-3") == []
    dev.close()
    again = PahoDevice(dev.port, "meter-3", key, dev.version)
    try:
        assert again.connect() == 0
        assert again.subscribe("devices/meter-3/notifications/#") == [1]
        again.expect_none(1.0)
    finally:
        again.close()


def test_message_for_a_device_that_never_connected_waits(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("meter-4")
    nid = notify(api, "meter-4", "hello", b"first")
    c = api.post("/v1/devices/meter-4/commands/calibrate?ttl=600", content=b"now")
    assert c.status_code == 202
    cid = c.json()["id"]
    assert {m["id"] for m in mailbox(api, "meter-4")} == {nid, cid}
    dev = devices("meter-4", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-4/#") == [1]
    got = {dev.expect().topic, dev.expect().topic}
    assert got == {"devices/meter-4/notifications/hello",
                   f"devices/meter-4/commands/calibrate/{cid}"}


def test_purge_empties_the_mailbox_with_purged_outcomes(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("meter-5")
    ids = [notify(api, "meter-5", "n", f"{i}".encode()) for i in range(3)]
    r = api.delete("/v1/devices/meter-5/mailbox")
    assert r.status_code == 200, r.text
    assert r.json()["purged"] == 3
    outcomes = outcomes_for(api, ids)
    assert [outcomes[i]["outcome"] for i in ids] == ["purged"] * 3
    assert mailbox(api, "meter-5") == []
    dev = devices("meter-5", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-5/notifications/#") == [1]
    dev.expect_none(1.0)


def test_qos0_subscription_delivers_and_removes(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    key = register("meter-6")
    mid = notify(api, "meter-6", "n", b"once")
    dev = devices("meter-6", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-6/notifications/#", qos=0) == [0]
    msg = dev.expect()
    assert (msg.payload, msg.qos) == (b"once", 0)
    assert outcomes_for(api, [mid])[mid]["outcome"] == "delivered"
    assert device_info(api, "meter-6")["mailbox_depth"] == 0


def test_message_waits_for_a_later_subscription_on_the_same_connection(
    api: httpx.Client, register: Callable[..., str], devices: Callable[..., PahoDevice]
) -> None:
    """Firmware often subscribes one filter at a time; nothing queued may be skipped."""
    key = register("meter-7")
    notify(api, "meter-7", "hello", b"n")
    c = api.post("/v1/devices/meter-7/commands/reboot?ttl=600", content=b"c")
    assert c.status_code == 202
    dev = devices("meter-7", key)
    assert dev.connect() == 0
    assert dev.subscribe("devices/meter-7/notifications/#") == [1]
    assert dev.expect().payload == b"n"
    assert dev.subscribe("devices/meter-7/commands/#") == [1]
    msg = dev.expect(3.0)
    assert msg.topic == f"devices/meter-7/commands/reboot/{c.json()['id']}"
