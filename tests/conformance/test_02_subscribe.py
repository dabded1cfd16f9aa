"""02 subscribe: SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK (MQTT 3.1.1 §3.8-3.11, 5.0 §3.8-3.11)."""

from __future__ import annotations

import httpx
import pytest

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient

OWN = "devices/dev/notifications/#"


def refused(version: int) -> int:
    return 0x80 if version == 4 else 0x87


def notify(api: httpx.Client, payload: bytes = b"n") -> None:
    assert api.post("/v1/devices/dev/notifications/t", content=payload).status_code == 202


def test_suback_echoes_the_packet_id_and_grants_qos_MQTT_3_8_4_1(client: RawClient) -> None:
    """[MQTT-3.8.4-1] SUBACK answers SUBSCRIBE, [MQTT-3.8.4-2] with its packet identifier,
    [MQTT-3.8.4-5] one code per filter; QoS 2 is downgraded to the maximum, 1
    [MQTT-3.8.4-6]."""
    assert client.subscribe([(OWN, 0)], packet_id=0x1234) == [0]
    assert client.subscribe([("devices/dev/commands/#", 2), ("devices/dev/replies/+/+", 1)],
                            packet_id=7) == [1, 1]


def test_foreign_filters_fail_per_filter_MQTT_3_9_3(client: RawClient, version: int) -> None:
    """3.1.1 §3.9.3: failure is 0x80 for that filter; 5.0: 0x87 Not authorized."""
    codes = client.subscribe(
        [(OWN, 1), ("#", 1), ("devices/+/commands/#", 1), ("$SYS/#", 0), ("devices/x/#", 1)])
    assert codes == [1] + [refused(version)] * 4
    assert client.ping().type == raw.PINGRESP  # still connected


@pytest.mark.parametrize("topic_filter", [
    "devices/dev/commands/#/x",  # '#' not last [MQTT-4.7.1-2]
    "devices/dev/commands/a#",  # '#' not a whole level [MQTT-4.7.1-2]
    "devices/dev/commands/a+",  # '+' not a whole level [MQTT-4.7.1-3]
])
def test_malformed_filter_is_refused_MQTT_4_7_1_2(
    client: RawClient, version: int, topic_filter: str
) -> None:
    """[MQTT-4.7.1-2]/[MQTT-4.7.1-3] a bad wildcard: refused in SUBACK (3.1.1 0x80, 5.0
    0x8F Topic Filter invalid) or the connection is closed."""
    try:
        codes = client.subscribe([(topic_filter, 1)])
    except raw.Closed:
        return
    assert codes[0] >= 0x80, f"{topic_filter!r} granted QoS {codes[0]}"


def test_subscribe_without_filters_closes_MQTT_3_8_3_3(client: RawClient) -> None:
    """[MQTT-3.8.3-3] a SUBSCRIBE with no topic filter is a protocol violation."""
    client.send(raw.packet(0x82, raw.u16(1) + (b"\x00" if client.version == 5 else b"")))
    client.expect_disconnect((0x81, 0x82), required=True)


def test_subscribe_with_wrong_header_flags_closes_MQTT_3_8_1_1(client: RawClient) -> None:
    """[MQTT-3.8.1-1] SUBSCRIBE fixed header flags MUST be 0010."""
    good = raw.subscribe([(OWN, 1)], version=client.version)
    client.send(bytes((0x80,)) + good[1:])
    client.expect_disconnect((0x81,), required=True)


def test_subscription_qos_3_closes_MQTT_3_8_3_4(client: RawClient) -> None:
    """3.1.1 [MQTT-3-8.3-4] / 5.0 §3.8.3.1: requested QoS 3 is malformed."""
    client.send(raw.subscribe([(OWN, 3)], version=client.version))
    client.expect_disconnect((0x81,), required=True)


def test_unsubscribe_gets_unsuback_and_stops_delivery_MQTT_3_10_4_4(
    api: httpx.Client, client: RawClient
) -> None:
    """[MQTT-3.10.4-4] UNSUBACK with the same packet identifier; [MQTT-3.10.4-1] the
    subscription is deleted, so nothing more is delivered (it waits in the mailbox)."""
    assert client.subscribe([(OWN, 1)]) == [1]
    client.send(raw.unsubscribe([OWN], packet_id=0x0A0B, version=client.version))
    ack = client.read_until(raw.UNSUBACK)
    assert ack.body[:2] == b"\x0a\x0b"
    if client.version == 5:
        assert ack.body[2:] == b"\x00\x00"  # no properties, reason Success
    notify(api)
    assert client.is_open_after(1.0)  # and silent: no PUBLISH came
    depth = api.get("/v1/devices/dev").json()["mailbox_depth"]
    assert depth == 1


def test_unsubscribe_of_an_unknown_filter_MQTT_3_10_4_5(client: RawClient) -> None:
    """[MQTT-3.10.4-5] UNSUBACK even if nothing was deleted (5.0: 0x11 No subscription
    existed)."""
    client.send(raw.unsubscribe(["devices/dev/replies/#"], packet_id=3, version=client.version))
    ack = client.read_until(raw.UNSUBACK)
    assert ack.body[:2] == b"\x00\x03"
    if client.version == 5:
        assert ack.body[2:] == b"\x00\x11"


def test_unsubscribe_without_filters_closes_MQTT_3_10_3_2(client: RawClient) -> None:
    """[MQTT-3.10.3-2] an UNSUBSCRIBE with no topic filter is a protocol violation."""
    client.send(raw.packet(0xA2, raw.u16(1) + (b"\x00" if client.version == 5 else b"")))
    client.expect_disconnect((0x81, 0x82), required=True)


def test_subscribe_byte_at_a_time(api: httpx.Client, client: RawClient) -> None:
    client.send_bytewise(raw.subscribe([(OWN, 1)], packet_id=5, version=client.version))
    pid, codes = raw.parse_suback(client.read_until(raw.SUBACK), client.version)
    assert (pid, codes) == (5, [1])
    notify(api, b"trickled")
    assert client.expect_publish().payload == b"trickled"


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_shared_subscription_when_not_available(client: RawClient) -> None:
    """MQTT 5.0 §3.2.2.3.13: CONNACK said Shared Subscription Available = 0, so a
    ``$share/`` filter is a protocol error: DISCONNECT 0x9E."""
    client.send(raw.subscribe([("$share/g/devices/dev/commands/#", 1)], version=5))
    client.expect_disconnect((0x9E,), required=True)


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_subscription_identifier_when_not_available(client: RawClient) -> None:
    """MQTT 5.0 §3.2.2.3.12: Subscription Identifiers Available = 0, so one in
    SUBSCRIBE is a protocol error: DISCONNECT 0xA1."""
    body = raw.u16(1) + raw.properties(subscription_identifier=7) + raw.utf8(OWN) + b"\x01"
    client.send(raw.packet(0x82, body))
    client.expect_disconnect((0xA1,), required=True)
