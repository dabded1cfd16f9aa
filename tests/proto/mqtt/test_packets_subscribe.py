"""SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK from hand-written bytes.

MQTT 5.0 §3.8–§3.11, MQTT 3.1.1 §3.8–§3.11.
"""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, ProtocolError
from roost.proto.mqtt import Properties, Suback, Subscribe, Subscription, Unsuback, Unsubscribe

from .wire_helpers import decode_one, h

# --- SUBSCRIBE -------------------------------------------------------------


def test_subscribe_311() -> None:
    wire = h("82 0c 00 01 00 03 'a/+' 01 00 01 '#' 00")
    packet = Subscribe(1, (Subscription("a/+", 1), Subscription("#", 0)))
    assert decode_one(wire, 4) == packet
    assert packet.serialize(4) == wire


def test_subscribe_5_options() -> None:
    # §3.8.3.1: QoS 1, No Local, Retain As Published, Retain Handling 1 = 0x1d.
    wire = h("82 09 00 01 00 00 03 'a/+' 1d")
    packet = Subscribe(1, (Subscription("a/+", 1, True, True, 1),))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_subscribe_5_with_subscription_identifier() -> None:
    wire = h("82 0b 00 01 02 0b 05 00 03 'a/b' 00")
    packet = Subscribe(1, (Subscription("a/b"),), Properties(subscription_identifiers=(5,)))
    assert decode_one(wire, 5) == packet
    assert packet.serialize(5) == wire


def test_subscribe_options_beyond_qos_are_dropped_for_311() -> None:
    packet = Subscribe(1, (Subscription("a", 1, True, True, 2),))
    assert packet.serialize(4) == h("82 06 00 01 00 01 'a' 01")


@pytest.mark.parametrize(
    ("wire", "version", "error", "clause"),
    [
        (h("80 06 00 01 00 01 'a' 00"), 4, MalformedPacket, "MQTT-2.1.3-1"),  # [MQTT-3.8.1-1]
        (h("82 02 00 01"), 4, ProtocolError, "MQTT-3.8.3-3"),  # no topic filter
        (h("82 03 00 01 00"), 5, ProtocolError, "MQTT-3.8.3-3"),
        (h("82 06 00 01 00 01 'a' 03"), 4, MalformedPacket, "MQTT-3.8.3-4"),  # QoS 3
        (h("82 06 00 01 00 01 'a' 04"), 4, MalformedPacket, "3-8.3-4"),  # reserved bits 3.1.1
        (h("82 07 00 01 00 00 01 'a' 40"), 5, MalformedPacket, "MQTT-3.8.3-5"),  # reserved
        (h("82 07 00 01 00 00 01 'a' 30"), 5, ProtocolError, "retain handling 3"),
        (h("82 06 00 00 00 01 'a' 00"), 4, ProtocolError, "MQTT-2.2.1-3"),  # packet id 0
        (h("82 05 00 01 00 01 'a'"), 4, MalformedPacket, "ends early"),  # options missing
        (h("82 0f 00 01 00 00 09 '$share/g/' 04"), 5, ProtocolError, "MQTT-3.8.3-4"),
    ],
)
def test_malformed_subscribe(
    wire: bytes, version: int, error: type[Exception], clause: str
) -> None:
    with pytest.raises(error, match=clause):
        decode_one(wire, version)


def test_subscribe_with_two_subscription_identifiers_is_a_protocol_error() -> None:
    # §3.8.2.1.2
    with pytest.raises(ProtocolError, match="more than once"):
        decode_one(h("82 0b 00 01 04 0b 01 0b 02 00 01 'a' 00"), 5)


# --- SUBACK ----------------------------------------------------------------


def test_suback_311() -> None:
    wire = h("90 04 00 01 01 80")
    assert decode_one(wire, 4) == Suback(1, (1, 0x80))
    # 3.1.1 §3.9.3: every failure is 0x80.
    assert Suback(1, (1, 0x8F)).serialize(4) == wire


def test_suback_5() -> None:
    wire = h("90 05 00 01 00 01 8f")
    assert decode_one(wire, 5) == Suback(1, (1, 0x8F))
    assert Suback(1, (1, 0x8F)).serialize(5) == wire


@pytest.mark.parametrize(
    ("wire", "version"),
    [
        (h("90 03 00 01 03"), 4),
        (h("90 03 00 01 8f"), 4),
        (h("90 03 00 01 00"), 5),
        (h("90 04 00 01 00 10"), 5),
    ],
)
def test_suback_invalid_codes_are_malformed(wire: bytes, version: int) -> None:
    with pytest.raises(MalformedPacket):
        decode_one(wire, version)


# --- UNSUBSCRIBE / UNSUBACK -------------------------------------------------


def test_unsubscribe() -> None:
    assert decode_one(h("a2 05 00 02 00 01 '#'"), 4) == Unsubscribe(2, ("#",))
    assert Unsubscribe(2, ("#",)).serialize(4) == h("a2 05 00 02 00 01 '#'")
    assert decode_one(h("a2 06 00 02 00 00 01 '#'"), 5) == Unsubscribe(2, ("#",))
    assert Unsubscribe(2, ("#",)).serialize(5) == h("a2 06 00 02 00 00 01 '#'")


def test_unsubscribe_needs_a_filter_and_flags_0010() -> None:
    with pytest.raises(ProtocolError, match="MQTT-3.10.3-2"):
        decode_one(h("a2 02 00 02"), 4)
    with pytest.raises(MalformedPacket, match="MQTT-2.1.3-1"):  # [MQTT-3.10.1-1]
        decode_one(h("a0 05 00 02 00 01 '#'"), 4)


def test_unsuback_311_is_just_the_packet_id() -> None:
    assert decode_one(h("b0 02 00 02"), 4) == Unsuback(2)
    assert Unsuback(2, (0x11,)).serialize(4) == h("b0 02 00 02")


def test_unsuback_5() -> None:
    wire = h("b0 05 00 02 00 00 11")
    assert decode_one(wire, 5) == Unsuback(2, (0, 0x11))
    assert Unsuback(2, (0, 0x11)).serialize(5) == wire
    with pytest.raises(MalformedPacket):
        decode_one(h("b0 03 00 02 00"), 5)  # no reason codes
    with pytest.raises(MalformedPacket):
        decode_one(h("b0 04 00 02 00 01"), 5)  # 0x01 is not an UNSUBACK reason
