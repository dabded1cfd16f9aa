"""03 publish: PUBLISH from and to the device (MQTT 3.1.1 §3.3-3.4, 5.0 §3.3-3.4)."""

from __future__ import annotations

import base64

import httpx
import pytest

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient

TELEMETRY = "devices/dev/telemetry"


def stored(api: httpx.Client, group: str = "g") -> list[bytes]:
    records = api.get("/v1/telemetry", params={"group": group, "max": 1000}).json()["records"]
    return [base64.b64decode(r["payload"]) for r in records]


def test_qos1_publish_gets_puback_with_its_packet_id_MQTT_3_3_4_1(
    api: httpx.Client, client: RawClient
) -> None:
    """[MQTT-3.3.4-1] QoS 1: PUBACK with the PUBLISH's packet identifier (§3.4)."""
    client.publish(TELEMETRY, b"t1", qos=1, packet_id=0xBEEF)
    ack = client.read()
    assert ack.type == raw.PUBACK and ack.flags == 0
    assert ack.body[:2] == b"\xbe\xef"
    assert ack.body[2:] in (b"", b"\x00")  # 5.0: reason Success may be left out
    assert stored(api) == [b"t1"]


def test_qos0_publish_is_stored_without_an_answer(api: httpx.Client, client: RawClient) -> None:
    client.publish(TELEMETRY, b"t0")
    assert client.ping().type == raw.PINGRESP  # nothing else came before the PINGRESP
    assert stored(api) == [b"t0"]


def test_publish_with_a_wildcard_topic_closes_MQTT_3_3_2_2(
    api: httpx.Client, client: RawClient
) -> None:
    """[MQTT-3.3.2-2] the topic name in PUBLISH MUST NOT contain wildcards."""
    client.publish("devices/dev/telemetry/+", b"x", qos=1)
    client.expect_disconnect((0x90, 0x81, 0x82, 0x87), required=True)
    assert stored(api) == []


def test_publish_with_an_empty_topic_closes_MQTT_4_7_3_1(client: RawClient) -> None:
    """[MQTT-4.7.3-1] a topic name is at least one character (no alias here)."""
    client.publish("", b"x", qos=1)
    client.expect_disconnect((0x90, 0x81, 0x82, 0x87, 0x94), required=True)


def test_publish_qos_3_closes_MQTT_3_3_1_4(client: RawClient) -> None:
    """[MQTT-3.3.1-4] a PUBLISH MUST NOT have both QoS bits set."""
    client.publish(TELEMETRY, b"x", qos=3)
    client.expect_disconnect((0x81,), required=True)


def test_qos0_with_dup_closes_MQTT_3_3_1_2(client: RawClient) -> None:
    """[MQTT-3.3.1-2] DUP MUST be 0 for QoS 0 messages."""
    client.publish(TELEMETRY, b"x", qos=0, dup=True)
    client.expect_disconnect((0x81,), required=True)


def test_qos1_with_packet_id_0_closes_MQTT_2_3_1_1(client: RawClient) -> None:
    """[MQTT-2.3.1-1] QoS > 0 PUBLISH needs a non-zero packet identifier."""
    client.publish(TELEMETRY, b"x", qos=1, packet_id=0)
    client.expect_disconnect((0x81, 0x82), required=True)


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_retain_closes_with_0x9A_MQTT_3_3_1_3(api: httpx.Client, client: RawClient) -> None:
    """MQTT 5.0 §3.2.2.3.5: Retain Available = 0, so a PUBLISH with RETAIN=1 is a
    protocol error: DISCONNECT 0x9A Retain not supported."""
    client.publish(TELEMETRY, b"keep me", qos=1, retain=True)
    assert client.expect_disconnect((0x9A,), required=True) == 0x9A
    assert stored(api) == []


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_qos2_closes_with_0x9B_MQTT_3_2_2_11(client: RawClient) -> None:
    """MQTT 5.0 §3.2.2.3.4: Maximum QoS 1, so a QoS 2 PUBLISH: DISCONNECT 0x9B."""
    client.publish(TELEMETRY, b"x", qos=2)
    client.expect_disconnect((0x9B,), required=True)


@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_topic_alias_over_maximum_closes_MQTT_3_3_2_8(client: RawClient) -> None:
    """[MQTT-3.3.2-8] Topic Alias Maximum was 0: any alias is a protocol error (0x94)."""
    client.publish(TELEMETRY, b"x", qos=1, props=raw.properties(topic_alias=1))
    client.expect_disconnect((0x94,), required=True)


@pytest.mark.parametrize("version", [4], ids=["mqtt311"])
def test_mqtt311_qos2_is_completed_once_MQTT_4_3_3(api: httpx.Client, client: RawClient) -> None:
    """3.1.1 §4.3.3: a 3.1.1 client cannot be told Maximum QoS, so QoS 2 is completed:
    PUBREC, then PUBCOMP for the PUBREL [MQTT-4.3.3-2]; a resend before PUBREL is the same
    message, stored once."""
    client.publish(TELEMETRY, b"exactly once", qos=2, packet_id=21)
    rec = client.read()
    assert (rec.type, rec.body) == (raw.PUBREC, b"\x00\x15")
    client.publish(TELEMETRY, b"exactly once", qos=2, packet_id=21, dup=True)
    again = client.read()
    assert (again.type, again.body) == (raw.PUBREC, b"\x00\x15")
    client.send(raw.packet(0x62, raw.u16(21)))  # PUBREL, flags 0010
    comp = client.read()
    assert (comp.type, comp.body) == (raw.PUBCOMP, b"\x00\x15")
    assert stored(api) == [b"exactly once"]


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_publish_over_the_maximum_packet_size_closes(api: httpx.Client, client: RawClient) -> None:
    """DESIGN.md: max packet 256 KiB; MQTT 5.0 [MQTT-3.2.2-15]: DISCONNECT 0x95."""
    client.send(raw.publish(TELEMETRY, b"x" * (256 * 1024), qos=1, version=client.version))
    client.expect_disconnect((0x95,), required=True)
    assert stored(api) == []


def test_publish_byte_at_a_time(api: httpx.Client, client: RawClient) -> None:
    data = raw.publish(TELEMETRY + "/slow", b"drip", qos=1, packet_id=3, version=client.version)
    client.send_bytewise(data)
    ack = client.read()
    assert ack.type == raw.PUBACK and ack.body[:2] == b"\x00\x03"
    assert stored(api) == [b"drip"]


def test_server_publish_is_well_formed_MQTT_2_3_1_1(api: httpx.Client, client: RawClient) -> None:
    """What Roost sends: QoS 1 with a non-zero packet identifier [MQTT-2.3.1-1], RETAIN 0
    for a live delivery [MQTT-3.3.1-9], DUP 0 on a first delivery [MQTT-3.3.1-1]."""
    assert client.subscribe([("devices/dev/notifications/#", 1)]) == [1]
    assert api.post("/v1/devices/dev/notifications/a/b", content=b"n").status_code == 202
    msg = client.expect_publish()
    assert (msg.topic, msg.payload, msg.qos, msg.retain, msg.dup) == (
        "devices/dev/notifications/a/b", b"n", 1, False, False)
    assert msg.packet_id
    client.puback(msg.packet_id)


def test_refused_response_is_acknowledged_with_a_reason_MQTT_3_4_2_1(
    api: httpx.Client, client: RawClient
) -> None:
    """A response with a status that is not an integer is refused but the connection
    goes on: 5.0 PUBACK with a failure reason (§3.4.2.1), 3.1.1 a plain PUBACK."""
    client.publish("devices/dev/responses/abc/not-a-number", b"x", qos=1, packet_id=4)
    ack = client.read()
    assert ack.type == raw.PUBACK and ack.body[:2] == b"\x00\x04"
    if client.version == 5:
        assert ack.body[2] >= 0x80
    assert client.ping().type == raw.PINGRESP


def test_publish_of_exactly_the_maximum_packet_size_is_accepted(
    api: httpx.Client, client: RawClient
) -> None:
    """The limit is inclusive: a 256 KiB packet (fixed header included, as Maximum Packet
    Size counts it, MQTT 5.0 §3.1.2.11.4) is stored and acknowledged."""
    limit = 256 * 1024
    empty = raw.publish(TELEMETRY, b"", qos=1, packet_id=2, version=client.version)
    # the payload adds to the remaining length, whose encoding grows from 1 to 3 bytes
    payload = b"m" * (limit - len(empty) - 2)
    data = raw.publish(TELEMETRY, payload, qos=1, packet_id=2, version=client.version)
    assert len(data) == limit
    client.send(data)
    ack = client.read()
    assert ack.type == raw.PUBACK and ack.body[:2] == b"\x00\x02"
    assert stored(api) == [payload]
