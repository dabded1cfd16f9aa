"""CONNECT, CONNACK, PINGREQ, PINGRESP, DISCONNECT, AUTH from hand-written bytes.

MQTT 5.0 §3.1, §3.2, §3.12–§3.15 and MQTT 3.1.1 §3.1, §3.2, §3.12–§3.14.
"""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, ProtocolError, TopicNameInvalid, UnsupportedVersion
from roost.proto.mqtt import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Properties,
    Will,
)

from .wire_helpers import decode_one, h

# --- CONNECT ---------------------------------------------------------------

CONNECT_311_MINIMAL = h("10 0f 00 04 'MQTT' 04 02 00 3c 00 03 'abc'")
CONNECT_311_FULL = h(
    "10 1b 00 04 'MQTT' 04 ee 00 0a"  # flags: user, password, will retain, will QoS 1, will, clean
    "00 02 'id' 00 01 't' 00 02 'hi' 00 01 'u' 00 01 'p'"
)
CONNECT_5_MINIMAL = h("10 10 00 04 'MQTT' 05 02 00 3c 00 00 03 'abc'")
CONNECT_5_PROPS = h(
    "10 18 00 04 'MQTT' 05 02 00 3c"
    "08 11 00 00 00 3c 21 00 0a"  # session expiry 60, receive maximum 10
    "00 03 'abc'"
)
CONNECT_5_WILL = h(
    "10 1f 00 04 'MQTT' 05 0e 00 00 00"  # will QoS 1, will, clean start
    "00 02 'id'"
    "05 18 00 00 00 05"  # will delay interval 5
    "00 03 'w/t' 00 03 'bye'"
)


def test_connect_311_minimal() -> None:
    packet = Connect("MQTT", 4, "abc", True, 60)
    assert decode_one(CONNECT_311_MINIMAL, None) == packet
    assert packet.serialize() == CONNECT_311_MINIMAL


def test_connect_311_with_will_user_and_password() -> None:
    packet = Connect("MQTT", 4, "id", True, 10, "u", b"p", Will("t", b"hi", 1, True))
    assert decode_one(CONNECT_311_FULL, None) == packet
    assert packet.serialize() == CONNECT_311_FULL


def test_connect_5_minimal() -> None:
    packet = Connect("MQTT", 5, "abc", True, 60)
    assert decode_one(CONNECT_5_MINIMAL, None) == packet
    assert packet.serialize(5) == CONNECT_5_MINIMAL


def test_connect_5_with_properties() -> None:
    packet = Connect(
        "MQTT",
        5,
        "abc",
        True,
        60,
        properties=Properties(session_expiry_interval=60, receive_maximum=10),
    )
    assert decode_one(CONNECT_5_PROPS, None) == packet
    assert packet.serialize() == CONNECT_5_PROPS


def test_connect_5_with_will_properties() -> None:
    will = Will("w/t", b"bye", 1, False, Properties(will_delay_interval=5))
    packet = Connect("MQTT", 5, "id", True, 0, will=will)
    assert decode_one(CONNECT_5_WILL, None) == packet
    assert packet.serialize() == CONNECT_5_WILL


def test_connect_5_allows_password_without_user_name() -> None:
    # §3.1.2.9: 5.0 dropped 3.1.1's [MQTT-3.1.2-22].
    wire = h("10 12 00 04 'MQTT' 05 40 00 00 00 00 01 'c' 00 02 'pw'")
    assert decode_one(wire, None) == Connect("MQTT", 5, "c", False, 0, password=b"pw")


def test_connect_311_password_without_user_name_is_malformed() -> None:
    # [MQTT-3.1.2-22]
    with pytest.raises(MalformedPacket, match="MQTT-3.1.2-22"):
        decode_one(h("10 11 00 04 'MQTT' 04 42 00 00 00 01 'c' 00 02 'pw'"), None)


@pytest.mark.parametrize(
    "wire",
    [
        h("10 0d 00 06 'MQIsdp' 03 02 00 3c 00 00"),  # MQTT 3.1
        h("10 0b 00 04 'MQTT' 06 02 00 3c 00 00"),  # level 6
        h("10 0b 00 04 'MQTX' 04 02 00 3c 00 00"),  # wrong protocol name [MQTT-3.1.2-1]
    ],
)
def test_connect_unsupported_protocol(wire: bytes) -> None:
    # [MQTT-3.1.2-2]
    with pytest.raises(UnsupportedVersion, match="MQTT-3.1.2-2"):
        decode_one(wire, None)


@pytest.mark.parametrize(
    ("flags", "clause"),
    [
        ("03", "MQTT-3.1.2-3"),  # reserved bit 0
        ("0a", "MQTT-3.1.2-11"),  # will QoS 1 without will flag
        ("22", "MQTT-3.1.2-11/13"),  # will retain without will flag
        ("1e", "MQTT-3.1.2-12"),  # will QoS 3
    ],
)
def test_connect_bad_flags_are_malformed(flags: str, clause: str) -> None:
    with pytest.raises(MalformedPacket, match=clause):
        decode_one(h(f"10 0c 00 04 'MQTT' 04 {flags} 00 3c 00 00"), None)


def test_connect_fixed_header_flags_must_be_zero() -> None:
    # [MQTT-2.1.3-1]
    with pytest.raises(MalformedPacket, match="MQTT-2.1.3-1"):
        decode_one(b"\x11" + CONNECT_311_MINIMAL[1:], None)


def test_connect_with_trailing_bytes_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="unexpected bytes"):
        decode_one(h("10 10 00 04 'MQTT' 04 02 00 3c 00 03 'abc' 00"), None)


def test_connect_will_topic_with_wildcard_is_invalid() -> None:
    # [MQTT-3.1.3-11]: the Will Topic is a topic name.
    wire = h("10 14 00 04 'MQTT' 04 06 00 00 00 01 'c' 00 03 'a/#' 00 00")
    with pytest.raises(TopicNameInvalid):
        decode_one(wire, None)


def test_connect_client_id_with_null_is_malformed() -> None:
    # [MQTT-1.5.4-2]
    with pytest.raises(MalformedPacket, match="MQTT-1.5.4-2"):
        decode_one(h("10 0f 00 04 'MQTT' 04 02 00 3c 00 03 61 00 63"), None)


def test_connect_auth_data_without_method_is_a_protocol_error() -> None:
    # §3.1.2.11.10
    wire = h("10 11 00 04 'MQTT' 05 02 00 00 04 16 00 01 'x' 00 00")
    with pytest.raises(ProtocolError):
        decode_one(wire, None)


def test_connect_3_1_1_serialize_password_without_user_is_refused() -> None:
    with pytest.raises(ValueError):
        Connect("MQTT", 4, "c", password=b"p").serialize()


# --- CONNACK ---------------------------------------------------------------


def test_connack_311() -> None:
    wire = h("20 02 01 00")
    assert decode_one(wire, 4) == Connack(True, 0)
    assert Connack(True, 0).serialize(4) == wire
    assert Connack(False, 5).serialize(4) == h("20 02 00 05")


def test_connack_5_with_properties() -> None:
    wire = h("20 07 00 00 04 24 01 25 00")
    packet = Connack(False, 0, Properties(maximum_qos=1, retain_available=0))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire
    assert Connack(False, 0x86).serialize(5) == h("20 03 00 86 00")


def test_connack_reserved_flags_are_malformed() -> None:
    # [MQTT-3.2.2-1]
    with pytest.raises(MalformedPacket, match="MQTT-3.2.2-1"):
        decode_one(h("20 02 02 00"), 4)


def test_connack_311_reserved_return_code_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_one(h("20 02 00 06"), 4)


def test_connack_5_reason_code_not_allowed_in_connack_is_malformed() -> None:
    # 0x10 (no matching subscribers) is a PUBACK reason, not a CONNACK one (§3.2.2.2).
    with pytest.raises(MalformedPacket):
        decode_one(h("20 03 00 10 00"), 5)


# --- PINGREQ / PINGRESP ---------------------------------------------------


@pytest.mark.parametrize("version", [4, 5])
def test_pingreq_and_pingresp(version: int) -> None:
    assert decode_one(h("c0 00"), version) == Pingreq()
    assert decode_one(h("d0 00"), version) == Pingresp()
    assert Pingreq().serialize(version) == h("c0 00")
    assert Pingresp().serialize(version) == h("d0 00")


@pytest.mark.parametrize("wire", [h("c1 00"), h("c0 01 00"), h("d8 00")])
def test_ping_with_flags_or_body_is_malformed(wire: bytes) -> None:
    # [MQTT-2.1.3-1]
    with pytest.raises(MalformedPacket):
        decode_one(wire, 4)


# --- DISCONNECT ------------------------------------------------------------


def test_disconnect_311_has_no_body() -> None:
    assert decode_one(h("e0 00"), 4) == Disconnect()
    assert Disconnect(0x8B).serialize(4) == h("e0 00")
    with pytest.raises(MalformedPacket):
        decode_one(h("e0 01 00"), 4)


def test_disconnect_5_forms() -> None:
    # §3.14.2.1: reason code and properties may be omitted.
    assert decode_one(h("e0 00"), 5) == Disconnect()
    assert decode_one(h("e0 01 04"), 5) == Disconnect(0x04)
    wire = h("e0 07 8e 05 11 00 00 00 00")
    packet = Disconnect(0x8E, Properties(session_expiry_interval=0))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire
    assert Disconnect(0x04).serialize(5) == h("e0 01 04")
    assert Disconnect().serialize(5) == h("e0 00")


def test_disconnect_5_invalid_reason_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_one(h("e0 01 01"), 5)


# --- AUTH ------------------------------------------------------------------


def test_auth_5() -> None:
    assert decode_one(h("f0 00"), 5) == Auth()
    wire = h("f0 0d 18 0b 15 00 04 'SCRM' 16 00 01 'x'")
    packet = Auth(0x18, Properties(authentication_method="SCRM", authentication_data=b"x"))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_auth_is_reserved_in_311() -> None:
    with pytest.raises(MalformedPacket):
        decode_one(h("f0 00"), 4)
    with pytest.raises(ValueError):
        Auth().serialize(4)


def test_auth_properties_not_allowed_in_auth_are_malformed() -> None:
    # Topic Alias is not an AUTH property (§3.15.2.2).
    with pytest.raises(MalformedPacket):
        decode_one(h("f0 05 18 03 23 00 01"), 5)
