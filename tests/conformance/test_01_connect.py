"""01 connect: CONNECT and CONNACK (MQTT 3.1.1 §3.1-3.2, MQTT 5.0 §3.1-3.2)."""

from __future__ import annotations

import time

import pytest

from conformance import rawmqtt as raw
from conformance.rawmqtt import RawClient
from roost.testing.thread import NodeThread

V311_NOT_AUTHORIZED = 5
V5_NOT_AUTHORIZED = 0x87


def test_first_packet_not_connect_closes_MQTT_3_1_0_1(node: NodeThread) -> None:
    """[MQTT-3.1.0-1] the first packet from the client MUST be CONNECT."""
    for first in (raw.PINGREQ_BYTES, raw.subscribe([("a/b", 0)]), raw.publish("a/b", b"x"),
                  raw.DISCONNECT_BYTES):
        with RawClient(node.mqtt_port) as c:
            c.send(first)
            assert c.wait_closed() == [], f"after {first!r}"


def test_second_connect_closes_MQTT_3_1_0_2(
    node: NodeThread, key: str, client: RawClient, version: int
) -> None:
    """[MQTT-3.1.0-2] a second CONNECT is a protocol violation: disconnect."""
    client.send(raw.connect("dev", "dev", key, version=version))
    client.expect_disconnect((0x82,))


def test_accepted_connack_MQTT_3_2_2_1(node: NodeThread, key: str, version: int) -> None:
    """[MQTT-3.2.2-1] clean session: session present 0, return code 0. MQTT 5.0 §3.2.2.3:
    the server announces what it does not support (no retain, no QoS 2, no shared subs)."""
    with RawClient(node.mqtt_port, version) as c:
        ack = c.handshake("dev", key)
        assert (ack.session_present, ack.code) == (False, 0)
        if version == 5:
            assert ack.props.get("retain_available") == 0
            assert ack.props.get("maximum_qos") == 1
            assert ack.props.get("shared_subscription_available") == 0
            assert ack.props.get("topic_alias_maximum", 0) == 0
            assert ack.props.get("maximum_packet_size", 2**32) >= 256 * 1024


@pytest.mark.parametrize("level", [3, 6, 255])
def test_unsupported_protocol_level_MQTT_3_1_2_2(node: NodeThread, key: str, level: int) -> None:
    """[MQTT-3.1.2-2] unsupported level: CONNACK 0x01 (3.1.1) / 0x84 (5.0), then close."""
    name = "MQIsdp" if level == 3 else "MQTT"
    with RawClient(node.mqtt_port) as c:
        c.send(raw.connect("dev", "dev", key, protocol_name=name, level=level))
        packets = c.wait_closed()
    assert [p.type for p in packets] == [raw.CONNACK]
    assert packets[0].body in (b"\x00\x01", b"\x00\x84\x00")


def test_bad_protocol_name_closes_MQTT_3_1_2_1(node: NodeThread, key: str, version: int) -> None:
    """[MQTT-3.1.2-1] a wrong protocol name: the server MAY disconnect, and must not go on
    as MQTT; a CONNACK, if any, refuses."""
    with RawClient(node.mqtt_port, version) as c:
        c.send(raw.connect("dev", "dev", key, version=version, protocol_name="MQTX"))
        c.expect_refused((0x01, 0x84))


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_reserved_connect_flag_closes_MQTT_3_1_2_3(
    node: NodeThread, key: str, version: int
) -> None:
    """[MQTT-3.1.2-3] the reserved flag in CONNECT MUST be 0, else disconnect."""
    with RawClient(node.mqtt_port, version) as c:
        c.send(raw.connect("dev", "dev", key, version=version, extra_flags=0x01))
        c.expect_refused((0x81,))


def test_reserved_fixed_header_flags_close_MQTT_2_2_2_2(node: NodeThread, key: str) -> None:
    """[MQTT-2.2.2-2] CONNECT fixed header flags are reserved (0000); others: close."""
    good = raw.connect("dev", "dev", key)
    with RawClient(node.mqtt_port) as c:
        c.send(bytes((0x11,)) + good[1:])
        c.expect_refused((0x81,))


def test_password_without_user_name_closes_MQTT_3_1_2_22(node: NodeThread, key: str) -> None:
    """[MQTT-3.1.2-22] 3.1.1: password flag set without user name flag: close."""
    with RawClient(node.mqtt_port) as c:
        c.send(raw.connect("dev", None, key))
        c.expect_refused((0x04, 0x05))


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
@pytest.mark.parametrize(
    "client_id, username, password",
    [("dev", "dev", "wrong-key-wrong-key"), ("ghost", "ghost", "whatever-whatever"),
     ("dev", "dev", None), ("dev", None, None), ("dev", "other", "KEY")],
    ids=["wrong-key", "unknown-device", "no-password", "anonymous", "username-not-client-id"],
)
def test_refused_credentials_get_not_authorized_then_close_MQTT_3_2_2_5(
    node: NodeThread, key: str, version: int, client_id: str, username: str | None,
    password: str | None,
) -> None:
    """[MQTT-3.2.2-5] a refusing CONNACK, then close: 3.1.1 code 5 (not authorized),
    5.0 reason 0x87, for every way of getting the credentials wrong."""
    if password == "KEY":
        password = key
    if version == 4 and password is not None and username is None:
        pytest.skip("not expressible in 3.1.1 [MQTT-3.1.2-22]")
    with RawClient(node.mqtt_port, version) as c:
        c.send(raw.connect(client_id, username, password, version=version))
        packets = c.wait_closed()
    assert len(packets) == 1
    ack = raw.parse_connack(packets[0], version)
    assert ack.code == (V311_NOT_AUTHORIZED if version == 4 else V5_NOT_AUTHORIZED)
    assert ack.session_present is False  # [MQTT-3.2.2-4] / [MQTT-3.2.2-6]


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_invalid_client_identifier_is_rejected_MQTT_3_1_3_9(node: NodeThread, version: int) -> None:
    """[MQTT-3.1.3-9] a rejected client id: CONNACK 0x02 (3.1.1) / 0x85 (5.0), then close.
    Device ids exclude '+', '#', '/', '$' and more than 128 characters (DESIGN.md)."""
    for client_id in ("", "a/b", "a+b", "#", "$dev", "x" * 129):
        with RawClient(node.mqtt_port, version) as c:
            c.send(raw.connect(client_id, client_id, "some-key-some-key", version=version))
            packets = c.wait_closed()
        assert len(packets) == 1, f"client id {client_id!r}: {packets}"
        ack = raw.parse_connack(packets[0], version)
        expected = (0x02,) if version == 4 else (0x85, 0x87)
        assert ack.code in expected, f"client id {client_id!r}: CONNACK 0x{ack.code:02x}"


def test_remaining_length_over_four_bytes_closes_MQTT_1_5_5_1(node: NodeThread) -> None:
    """3.1.1 §2.2.3 / 5.0 [MQTT-1.5.5-1]: at most four bytes of Remaining Length."""
    with RawClient(node.mqtt_port) as c:
        c.send(b"\x10\xff\xff\xff\xff\x7f")
        assert c.wait_closed() == []


@pytest.mark.parametrize("declared", [256 * 1024 + 1, 268_435_455])
def test_huge_declared_length_before_auth_closes_at_once(node: NodeThread, declared: int) -> None:
    """DESIGN.md: no memory is allocated from a declared length before authentication.
    Only the fixed header is sent; the close must come without waiting for the body
    (well before the 10 s CONNECT deadline would close it anyway)."""
    with RawClient(node.mqtt_port) as c:
        started = time.monotonic()
        c.send(b"\x10" + raw.varint(declared))
        assert c.wait_closed(timeout=8) == []
        assert time.monotonic() - started < 8


@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_connect_byte_at_a_time(node: NodeThread, key: str, version: int) -> None:
    """The stream may be split anywhere (MQTT is a byte stream, §4.2)."""
    with RawClient(node.mqtt_port, version) as c:
        c.send_bytewise(raw.connect("dev", "dev", key, version=version, keepalive=30))
        ack = raw.parse_connack(c.read(), version)
        assert ack.code == 0
        assert c.ping().type == raw.PINGRESP


def test_mqtt5_will_qos_2_is_refused_MQTT_3_2_2_12(node: NodeThread, key: str) -> None:
    """[MQTT-3.2.2-12] a Will QoS over Maximum QoS: reject the connection (CONNACK 0x9B
    SHOULD be used)."""
    body = raw.utf8("MQTT") + bytes((5, 0x02 | 0x04 | (2 << 3) | 0xC0)) + raw.u16(30) + b"\x00"
    body += raw.utf8("dev") + b"\x00" + raw.utf8("devices/dev/telemetry") + raw.binary(b"bye")
    body += raw.utf8("dev") + raw.binary(key.encode())
    with RawClient(node.mqtt_port, 5) as c:
        c.send(raw.packet(0x10, body))
        c.expect_refused((0x9B,))


@pytest.mark.parametrize("props", [raw.properties(receive_maximum=0),
                                   raw.properties(maximum_packet_size=0),
                                   raw.varint(10) + (b"\x11" + raw.u32(1)) * 2],
                         ids=["receive-maximum-0", "maximum-packet-size-0", "expiry-twice"])
def test_mqtt5_bad_connect_properties_close_MQTT_3_1_2_11(
    node: NodeThread, key: str, props: bytes
) -> None:
    """5.0 §3.1.2.11.3/.4/.2: Receive Maximum 0, Maximum Packet Size 0, or a property given
    twice are protocol errors: close (a CONNACK, if any, refuses with 0x81/0x82)."""
    with RawClient(node.mqtt_port, 5) as c:
        c.send(raw.connect("dev", "dev", key, version=5, props=props))
        c.expect_refused((0x81, 0x82))


def test_mqtt5_unsupported_authentication_method_is_refused_MQTT_4_12_0_1(
    node: NodeThread, key: str
) -> None:
    """[MQTT-4.12.0-1] an Authentication Method the server does not support: CONNACK 0x8C
    (Bad authentication method) or 0x87, then close."""
    props = raw.properties(authentication_method="SCRAM-SHA-1", authentication_data=b"n,,n=dev")
    with RawClient(node.mqtt_port, 5) as c:
        c.send(raw.connect("dev", "dev", key, version=5, props=props))
        assert c.expect_refused((0x8C, 0x87), timeout=5) is not None
