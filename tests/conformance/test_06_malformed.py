"""06 malformed: bytes that are not MQTT (MQTT 3.1.1 §1.5, §2; 5.0 §1.5, §2, §4.13).

Every case ends with the connection closed (5.0: after a DISCONNECT 0x81 Malformed
Packet or 0x82 Protocol Error) and, checked by the ``node`` fixture after each
test, a node that still serves well-behaved clients (STYLE.md: bad input gets a
clear error, never a crash).
"""

from __future__ import annotations

import random
import socket

import pytest

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient
from roost.testing.thread import NodeThread

BAD = (0x81, 0x82)


def test_reserved_packet_type_0_closes_MQTT_2_1_2(client: RawClient) -> None:
    """§2.1.2: packet type 0 is reserved (forbidden)."""
    client.send(b"\x00\x00")
    client.expect_disconnect(BAD, required=True)


@pytest.mark.parametrize("version", [4], ids=["mqtt311"])
def test_mqtt311_packet_type_15_closes(client: RawClient) -> None:
    """3.1.1 §2.2.1: packet type 15 is reserved (AUTH exists only in 5.0)."""
    client.send(b"\xf0\x00")
    client.expect_disconnect(BAD)


@pytest.mark.parametrize("first", [b"\x20\x02\x00\x00", b"\x90\x03\x00\x01\x00",
                                   b"\xd0\x00", b"\xb0\x02\x00\x01"],
                         ids=["CONNACK", "SUBACK", "PINGRESP", "UNSUBACK"])
def test_server_to_client_packets_from_a_client_close(client: RawClient, first: bytes) -> None:
    """§2.1.2: these packets flow server to client only; from a client: protocol error."""
    client.send(first)
    client.expect_disconnect(BAD, required=True)


@pytest.mark.parametrize("topic", [b"devices/dev/telemetry/\xff\xfe",
                                   b"devices/dev/tele\xed\xa0\x80",
                                   b"devices/dev/telemetry/\x00"],
                         ids=["not-utf8", "surrogate", "nul"])
def test_bad_utf8_in_a_topic_closes_MQTT_1_5_4_1(client: RawClient, topic: bytes) -> None:
    """[MQTT-1.5.4-1] ill-formed UTF-8 and surrogates; [MQTT-1.5.4-2] U+0000: close."""
    body = raw.utf8(topic) + raw.u16(1) + (b"\x00" if client.version == 5 else b"") + b"x"
    client.send(raw.packet(0x32, body))  # QoS 1 PUBLISH with the raw topic bytes
    client.expect_disconnect((*BAD, 0x90), required=True)


def test_string_longer_than_its_packet_closes(client: RawClient) -> None:
    """§1.5.4: the string length runs past the Remaining Length: malformed."""
    client.send(b"\x30\x05\x00\x40abc")
    client.expect_disconnect(BAD, required=True)


def test_pingreq_with_a_body_closes(client: RawClient) -> None:
    """§3.12: PINGREQ has no variable header or payload; remaining length must be 0."""
    client.send(b"\xc0\x01\x00")
    client.expect_disconnect(BAD, required=True)


def test_puback_with_wrong_flags_closes_MQTT_2_2_2_2(client: RawClient) -> None:
    """[MQTT-2.2.2-2] reserved flags of PUBACK are 0000."""
    client.send(b"\x42\x02\x00\x01")
    client.expect_disconnect(BAD, required=True)


TWO_CONTENT_TYPES = raw.varint(8) + (b"\x03" + raw.utf8("a")) * 2


@pytest.mark.parametrize("props", [
    raw.properties(session_expiry_interval=5),  # a CONNECT property, not a PUBLISH one
    TWO_CONTENT_TYPES,  # "a Protocol Error to include the Content Type more than once"
    b"\x02\x7f\x00",  # identifier 0x7F does not exist
    b"\x06\x03\x00\x01a\x03",  # the last property runs past the property length
], ids=["wrong-packet", "twice", "unknown-id", "truncated"])
@pytest.mark.parametrize("version", [5], ids=["mqtt5"])
def test_mqtt5_bad_publish_properties_close_MQTT_2_2_2_2(client: RawClient, props: bytes) -> None:
    """5.0 §2.2.2.2: properties not defined for the packet, repeated, unknown, or not
    fitting their length: malformed / protocol error."""
    client.send(raw.publish("devices/dev/telemetry", b"x", qos=1, version=5, props=props))
    client.expect_disconnect(BAD, required=True)


def test_truncated_packet_then_close_leaves_the_node_serving(node: NodeThread, key: str) -> None:
    """A client that vanishes mid-packet (after or before CONNECT) costs nothing lasting."""
    for version in (4, 5):
        with RawClient(node.mqtt_port, version) as c:
            assert c.handshake("dev", key).code == 0
            c.send(raw.publish("devices/dev/telemetry", b"x" * 1000, qos=1, version=version)[:500])
        with RawClient(node.mqtt_port, version) as c:
            c.send(raw.connect("dev", "dev", key, version=version)[:10])


def test_garbage_flood_never_crashes_the_node(node: NodeThread, key: str) -> None:
    """Many connections, each sending random bytes (some after a valid CONNECT), closed
    at once or left to the server: afterwards the node serves normally."""
    rng = random.Random(20240501)
    socks: list[socket.socket] = []
    try:
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", node.mqtt_port), timeout=5)
            socks.append(s)
            prefix = b""
            if i % 3 == 0:
                prefix = raw.connect("dev", "dev", key, version=4 + (i % 2))
            elif i % 3 == 1:
                prefix = bytes((rng.choice([0x10, 0x30, 0x82, 0xC0, 0xE0]),))
            junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
            try:
                s.sendall(prefix + junk)
            except OSError:
                pass  # the server may already have closed it
            if i % 2:
                s.close()
    finally:
        for s in socks:
            s.close()
