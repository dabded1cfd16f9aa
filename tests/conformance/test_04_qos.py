"""04 qos: acknowledgement, ordering, redelivery and flow control (MQTT 3.1.1 §4.3-4.6,
5.0 §4.3-4.9)."""

from __future__ import annotations

import time

import httpx

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient
from roost.testing.thread import NodeThread

NOTIFICATIONS = "devices/dev/notifications/#"


def notify(api: httpx.Client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = api.post(f"/v1/devices/dev/notifications/n{i}", content=f"{i}".encode())
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    return ids


def test_pubacks_come_in_publish_order_MQTT_4_6_0_2(client: RawClient) -> None:
    """[MQTT-4.6.0-2] PUBACKs in the order the PUBLISHes were received; 30 in one write."""
    ids = list(range(100, 130))
    client.send(b"".join(raw.publish("devices/dev/telemetry", b"%d" % i, qos=1, packet_id=i,
                                     version=client.version) for i in ids))
    acks = [client.read() for _ in ids]
    assert [a.type for a in acks] == [raw.PUBACK] * len(ids)
    assert [int.from_bytes(a.body[:2], "big") for a in acks] == ids


def test_delivery_order_and_puback_removal_MQTT_4_6_0_6(
    api: httpx.Client, client: RawClient
) -> None:
    """[MQTT-4.6.0-6] messages to a subscriber in the order they were published; each
    PUBACKed message leaves the mailbox."""
    notify(api, 10)
    assert client.subscribe([(NOTIFICATIONS, 1)]) == [1]
    got = []
    for _ in range(10):
        msg = client.expect_publish()
        got.append(msg.payload)
        assert msg.packet_id
        client.puback(msg.packet_id)
    assert got == [b"%d" % i for i in range(10)]
    deadline = time.monotonic() + 10
    while api.get("/v1/devices/dev").json()["mailbox_depth"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.get("/v1/devices/dev").json()["mailbox_depth"] == 0


def test_unacked_messages_come_again_with_dup_MQTT_4_4_0_1(
    node: NodeThread, api: httpx.Client, key: str, version: int
) -> None:
    """[MQTT-4.4.0-1] unacknowledged QoS 1 PUBLISHes are resent with DUP=1
    [MQTT-3.3.1-1] on reconnection, in their original order; PUBACKed ones are not."""
    notify(api, 3)
    with RawClient(node.mqtt_port, version) as first:
        assert first.handshake("dev", key).code == 0
        assert first.subscribe([(NOTIFICATIONS, 1)]) == [1]
        msgs = [first.expect_publish() for _ in range(3)]
        assert [m.dup for m in msgs] == [False] * 3
        first.puback(msgs[0].packet_id or 0)
        first.ping()  # the PUBACK was read before we leave
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pending = api.get("/v1/devices/dev/mailbox").json()["messages"]
        if len(pending) == 2 and all(m["attempts"] >= 1 for m in pending):
            break
        time.sleep(0.1)
    with RawClient(node.mqtt_port, version) as second:
        assert second.handshake("dev", key).code == 0
        assert second.subscribe([(NOTIFICATIONS, 1)]) == [1]
        again = [second.expect_publish() for _ in range(2)]
        assert [(m.payload, m.dup) for m in again] == [(b"1", True), (b"2", True)]
        for m in again:
            second.puback(m.packet_id or 0)
        assert second.is_open_after(0.5)


def test_subscription_qos_0_downgrades_delivery_MQTT_3_8_4_6(
    api: httpx.Client, client: RawClient
) -> None:
    """Delivered at the minimum of the message QoS and the granted QoS (§3.8.4)."""
    assert client.subscribe([(NOTIFICATIONS, 0)]) == [0]
    notify(api, 1)
    msg = client.expect_publish()
    assert (msg.qos, msg.packet_id, msg.payload) == (0, None, b"0")


def test_puback_for_an_unknown_packet_id_is_ignored(client: RawClient) -> None:
    """3.1.1 §4.3.2 / 5.0 §4.3.2: nothing to complete; not a reason to close."""
    client.puback(4242)
    assert client.ping().type == raw.PINGRESP


def test_mqtt5_client_receive_maximum_bounds_the_window_MQTT_3_3_4_9(
    node: NodeThread, api: httpx.Client, key: str
) -> None:
    """[MQTT-3.3.4-9] the server MUST NOT send more unacknowledged QoS 1 PUBLISHes than
    the client's Receive Maximum; each PUBACK lets one more through."""
    notify(api, 5)
    with RawClient(node.mqtt_port, 5) as c:
        c.send(raw.connect("dev", "dev", key, version=5, props=raw.properties(receive_maximum=2)))
        assert raw.parse_connack(c.read(), 5).code == 0
        assert c.subscribe([(NOTIFICATIONS, 1)]) == [1]
        first = [c.expect_publish() for _ in range(2)]
        assert c.is_open_after(1.0), "a third message came before any PUBACK"
        got = [m.payload for m in first]
        c.puback(first[0].packet_id or 0)
        nxt = c.expect_publish()
        got.append(nxt.payload)
        assert c.is_open_after(0.5)
        for m in (first[1], nxt):
            c.puback(m.packet_id or 0)
        rest = [c.expect_publish() for _ in range(2)]
        got += [m.payload for m in rest]
        assert got == [b"0", b"1", b"2", b"3", b"4"]


def test_overlapping_subscriptions_deliver_once_at_the_highest_qos_MQTT_3_3_4_2(
    api: httpx.Client, client: RawClient
) -> None:
    """3.1.1 [MQTT-3.3.5-1]: overlapping subscriptions: the message goes out at the
    maximum QoS of the matches (Roost sends one copy, which 5.0 §3.3.4 also allows)."""
    assert client.subscribe([("devices/dev/#", 0), ("devices/dev/notifications/+", 1)]) == [0, 1]
    notify(api, 1)
    msg = client.expect_publish()
    assert (msg.payload, msg.qos) == (b"0", 1)
    client.puback(msg.packet_id or 0)
    assert client.is_open_after(0.5)  # no second copy


def test_group_message_redelivered_with_dup_MQTT_4_4_0_1(
    node: NodeThread, api: httpx.Client, version: int
) -> None:
    """DESIGN.md: unacknowledged mailbox messages are redelivered with DUP set on the next
    connection, group and broadcast notifications included."""
    headers = {"Authorization": f"Bearer {node.token}"}
    key = httpx.post(f"{node.url}/v1/devices", json={"id": "member", "groups": ["crew"]},
                     headers=headers).json()["key"]
    assert api.post("/v1/groups/crew/notifications/t", content=b"all hands").status_code == 202
    with RawClient(node.mqtt_port, version) as first:
        assert first.handshake("member", key).code == 0
        assert first.subscribe([("devices/member/notifications/#", 1)]) == [1]
        assert first.expect_publish().dup is False
    time.sleep(0.3)
    with RawClient(node.mqtt_port, version) as second:
        assert second.handshake("member", key).code == 0
        assert second.subscribe([("devices/member/notifications/#", 1)]) == [1]
        again = second.expect_publish()
        assert again.payload == b"all hands"
        second.puback(again.packet_id or 0)
        assert again.dup is True


def test_mqtt5_message_over_the_client_maximum_packet_size_is_skipped_MQTT_3_1_2_25(
    node: NodeThread, api: httpx.Client, key: str
) -> None:
    """[MQTT-3.1.2-24] never send a packet over the client's Maximum Packet Size;
    [MQTT-3.1.2-25] discard it as if sent, and go on with the next message."""
    with RawClient(node.mqtt_port, 5) as c:
        c.send(raw.connect("dev", "dev", key, version=5,
                           props=raw.properties(maximum_packet_size=200)))
        assert raw.parse_connack(c.read(), 5).code == 0
        assert c.subscribe([(NOTIFICATIONS, 1)]) == [1]
        assert api.post("/v1/devices/dev/notifications/big", content=b"x" * 500).status_code == 202
        assert api.post("/v1/devices/dev/notifications/small", content=b"y").status_code == 202
        msg = c.expect_publish()
        assert (msg.topic, msg.payload) == ("devices/dev/notifications/small", b"y")
        c.puback(msg.packet_id or 0)
        assert c.is_open_after(0.5)
