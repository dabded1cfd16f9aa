"""PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP from hand-written bytes.

MQTT 5.0 §3.3–§3.7, MQTT 3.1.1 §3.3–§3.7; plus the fast encoders.
"""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, ProtocolError, TopicNameInvalid
from roost.proto.mqtt import (
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    encode_puback,
    encode_pubacks,
    encode_publish,
)

from .wire_helpers import decode_one, h

# --- PUBLISH ---------------------------------------------------------------


def test_publish_311_qos0() -> None:
    wire = h("30 0a 00 03 'a/b' 'hello'")
    packet = Publish("a/b", b"hello")
    assert decode_one(wire, 4) == packet
    assert packet.serialize(4) == wire


def test_publish_311_qos1_dup_retain() -> None:
    wire = h("3b 0c 00 03 'a/b' 00 07 'hello'")
    packet = Publish("a/b", b"hello", 1, retain=True, dup=True, packet_id=7)
    assert decode_one(wire, 4) == packet
    assert packet.serialize(4) == wire


def test_publish_5_qos1_without_properties() -> None:
    wire = h("32 0d 00 03 'a/b' 00 07 00 'hello'")
    packet = Publish("a/b", b"hello", 1, packet_id=7)
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_publish_5_with_properties() -> None:
    wire = h("32 19 00 03 'a/b' 00 07 0c 02 00 00 00 3c 26 00 01 'k' 00 01 'v' 'hello'")
    props = Properties(message_expiry_interval=60, user_properties=(("k", "v"),))
    packet = Publish("a/b", b"hello", 1, packet_id=7, properties=props)
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_publish_5_empty_topic_with_topic_alias() -> None:
    # §3.3.2.3.4: a zero-length topic stands for the aliased one.
    wire = h("30 06 00 00 03 23 00 01")
    assert decode_one(wire, 5) == Publish("", b"", properties=Properties(topic_alias=1))


def test_publish_empty_payload_and_long_payload() -> None:
    assert decode_one(h("30 03 00 01 't'"), 4) == Publish("t", b"")
    payload = bytes(300)
    wire = encode_publish("t", payload, 0, None, 4)
    assert wire[:3] == h("30 af 02")  # remaining length 303 in two bytes
    assert decode_one(wire, 4) == Publish("t", payload)


@pytest.mark.parametrize(
    ("wire", "error", "clause"),
    [
        (h("36 06 00 01 't' 00 01 'x'"), MalformedPacket, "MQTT-3.3.1-4"),  # QoS 3
        (h("38 04 00 01 't' 'x'"), MalformedPacket, "MQTT-3.3.1-2"),  # DUP on QoS 0
        (h("30 05 00 03 'a/+'"), TopicNameInvalid, "MQTT-3.3.2-2"),  # wildcard +
        (h("30 05 00 03 'a/#'"), TopicNameInvalid, "MQTT-3.3.2-2"),  # wildcard #
        (h("32 05 00 01 't' 00 00"), ProtocolError, "MQTT-2.2.1-3"),  # packet id 0
        (h("30 04 00 02 c3 28"), MalformedPacket, "MQTT-1.5.4-1"),  # bad UTF-8
        (h("30 04 00 02 61 00"), MalformedPacket, "MQTT-1.5.4-2"),  # U+0000
        (h("30 02 00 00"), TopicNameInvalid, "MQTT-4.7.3-1"),  # empty topic, 3.1.1
        (h("30 04 00 05 'abc'"), MalformedPacket, "past the end"),  # topic overruns
        (h("32 04 00 01 't' 00"), MalformedPacket, "packet identifier"),  # id cut short
    ],
)
def test_malformed_publish_311(wire: bytes, error: type[Exception], clause: str) -> None:
    with pytest.raises(error, match=clause):
        decode_one(wire, 4)


def test_publish_5_empty_topic_without_alias_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="topic alias"):
        decode_one(h("30 03 00 00 00"), 5)


def test_publish_5_missing_property_length_is_malformed() -> None:
    with pytest.raises(MalformedPacket, match="property length"):
        decode_one(h("30 03 00 01 't'"), 5)


def test_publish_5_property_not_allowed_in_publish_is_malformed() -> None:
    # Session Expiry Interval (0x11) is not a PUBLISH property (§3.3.2.3).
    with pytest.raises(MalformedPacket):
        decode_one(h("30 09 00 01 't' 05 11 00 00 00 01"), 5)


def test_publish_serialize_validates_the_topic() -> None:
    with pytest.raises(TopicNameInvalid):
        Publish("a/#").serialize(4)
    with pytest.raises(TopicNameInvalid):
        Publish("").serialize(5)
    assert Publish("", properties=Properties(topic_alias=2)).serialize(5) == h(
        "30 06 00 00 03 23 00 02"
    )


def test_parse_accepts_memoryview_bodies() -> None:
    assert Publish.parse(0, memoryview(h("00 01 't' 'x'")), 4) == Publish("t", b"x")


def test_decoded_publish_is_frozen() -> None:
    packet = decode_one(h("30 04 00 01 't' 'x'"), 4)
    with pytest.raises(AttributeError):
        packet.topic = "other"  # type: ignore[misc]


# --- encode_publish --------------------------------------------------------


def test_encode_publish_matches_hand_written_bytes() -> None:
    assert encode_publish("a/b", b"hello", 1, 7, 4) == h("32 0c 00 03 'a/b' 00 07 'hello'")
    assert encode_publish("a/b", b"hello", 1, 7, 5) == h("32 0d 00 03 'a/b' 00 07 00 'hello'")
    assert encode_publish("a/b", b"hi", 0, None, 4, retain=True) == h("31 07 00 03 'a/b' 'hi'")
    assert encode_publish("a", b"", 1, 1, 5, dup=True, properties=Properties(topic_alias=1)) == h(
        "3a 09 00 01 'a' 00 01 03 23 00 01"
    )


@pytest.mark.parametrize(
    ("qos", "packet_id", "dup"),
    [
        (1, None, False),
        (1, 0, False),
        (1, 65_536, False),
        (3, 1, False),
        (0, 5, False),
        (0, None, True),
    ],
)
def test_encode_publish_rejects_values_that_break_framing(
    qos: int, packet_id: int | None, dup: bool
) -> None:
    with pytest.raises(ValueError):
        encode_publish("t", b"", qos, packet_id, 4, dup=dup)


# --- PUBACK / PUBREC / PUBREL / PUBCOMP --------------------------------------

ACKS = [(Puback, "40"), (Pubrec, "50"), (Pubrel, "62"), (Pubcomp, "70")]


@pytest.mark.parametrize(("cls", "first"), ACKS)
def test_ack_311_is_just_the_packet_id(cls: type[Puback], first: str) -> None:
    wire = h(f"{first} 02 00 07")
    assert decode_one(wire, 4) == cls(7)
    assert cls(7).serialize(4) == wire
    assert cls(7, 0x80).serialize(4) == wire  # 3.1.1 cannot carry a reason
    with pytest.raises(MalformedPacket):
        decode_one(h(f"{first} 03 00 07 00"), 4)


@pytest.mark.parametrize(("cls", "first"), ACKS)
def test_ack_5_short_forms(cls: type[Puback], first: str) -> None:
    # §3.4.2.1: reason code and property length may be omitted.
    assert decode_one(h(f"{first} 02 00 07"), 5) == cls(7)
    assert cls(7).serialize(5) == h(f"{first} 02 00 07")
    assert decode_one(h(f"{first} 04 00 07 00 00"), 5) == cls(7)


def test_puback_5_with_reason_and_properties() -> None:
    assert decode_one(h("40 03 00 07 10"), 5) == Puback(7, 0x10)
    assert Puback(7, 0x10).serialize(5) == h("40 03 00 07 10")
    wire = h("40 09 00 07 87 05 1f 00 02 'no'")
    packet = Puback(7, 0x87, Properties(reason_string="no"))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_pubrel_5_packet_identifier_not_found() -> None:
    assert decode_one(h("62 03 00 07 92"), 5) == Pubrel(7, 0x92)


@pytest.mark.parametrize(
    ("wire", "clause"),
    [
        (h("60 02 00 07"), "MQTT-2.1.3-1"),  # PUBREL flags must be 0010 [MQTT-3.6.1-1]
        (h("42 02 00 07"), "MQTT-2.1.3-1"),  # PUBACK flags must be 0000
        (h("40 02 00 00"), "MQTT-2.2.1-3"),  # packet id 0
        (h("40 01 00"), "shorter"),
        (h("40 03 00 07 92"), "not valid"),  # 0x92 is not a PUBACK reason
        (h("62 03 00 07 10"), "not valid"),  # 0x10 is not a PUBREL reason
        (h("40 05 00 07 00 00 ff"), "unexpected bytes"),
    ],
)
def test_malformed_acks_5(wire: bytes, clause: str) -> None:
    with pytest.raises(ProtocolError, match=clause):
        decode_one(wire, 5)


def test_encode_puback_and_pubacks() -> None:
    assert encode_puback(7, 4) == h("40 02 00 07")
    assert encode_puback(7, 5) == h("40 02 00 07")
    assert encode_puback(7, 5, 0x97) == h("40 03 00 07 97")
    assert encode_puback(7, 4, 0x97) == h("40 02 00 07")
    assert encode_pubacks([1, 0x102, 0xFFFF], 4) == h("40 02 00 01 40 02 01 02 40 02 ff ff")
    assert encode_pubacks([], 5) == b""
    for bad in ([0], [65_536], [1, -1]):
        with pytest.raises(ValueError):
            encode_pubacks(bad, 4)
    with pytest.raises(ValueError):
        encode_puback(0, 4)
