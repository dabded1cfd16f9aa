"""MQTT 5.0 properties (§2.2.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from roost.errors import MalformedPacket, ProtocolError
from roost.proto.mqtt import (
    EMPTY_PROPERTIES,
    Properties,
    PropertyId,
    parse_properties,
    serialize_properties,
)
from roost.proto.mqtt.properties import CONNECT_PROPS, PUBLISH_PROPS

from .strategies import properties

ALL_IDS = frozenset(PropertyId)


def test_zero_length_gives_the_shared_empty_instance() -> None:
    props, end = parse_properties(b"\x00", 0)
    assert props is EMPTY_PROPERTIES
    assert end == 1
    assert serialize_properties(EMPTY_PROPERTIES) == b"\x00"
    assert serialize_properties(Properties()) == b"\x00"


def test_every_type_from_bytes() -> None:
    wire = bytes.fromhex(
        "27"  # length 39
        "0101"  # payload format indicator: byte
        "020000003c"  # message expiry interval: four byte integer
        "0300046a736f6e"  # content type: UTF-8 string "json"
        "09000201ff"  # correlation data: binary
        "0b81 01"  # subscription identifier: variable byte integer 129
        "230007"  # topic alias: two byte integer
        "260001610001 62"  # user property a=b
        "260001610001 63"  # user property a=c (may repeat, order kept)
    )
    props, end = parse_properties(wire, 0)
    assert end == len(wire) == 40
    assert props == Properties(
        payload_format_indicator=1,
        message_expiry_interval=60,
        content_type="json",
        correlation_data=b"\x01\xff",
        subscription_identifiers=(129,),
        topic_alias=7,
        user_properties=(("a", "b"), ("a", "c")),
    )
    assert serialize_properties(props) == wire


def test_offset_and_end_bound_the_read() -> None:
    wire = b"\xff\x03\x23\x00\x01\xee"
    props, end = parse_properties(wire, 1, 5)
    assert props.topic_alias == 1 and end == 5
    with pytest.raises(MalformedPacket):
        parse_properties(wire, 1, 4)  # the properties run past the packet


def test_unknown_identifier_is_malformed() -> None:
    # §2.2.2.2: 0x04 is not a property identifier.
    with pytest.raises(MalformedPacket):
        parse_properties(b"\x02\x04\x00", 0)


def test_identifier_not_allowed_in_the_packet_is_malformed() -> None:
    # §2.2.2.2: Topic Alias (0x23) is a PUBLISH property, not a CONNECT one.
    with pytest.raises(MalformedPacket):
        parse_properties(b"\x03\x23\x00\x01", 0, allowed=CONNECT_PROPS)
    props, _ = parse_properties(b"\x03\x23\x00\x01", 0, allowed=PUBLISH_PROPS)
    assert props.topic_alias == 1


def test_duplicate_single_valued_property_is_a_protocol_error() -> None:
    # §3.1.2.11.2: "It is a Protocol Error to include the Session Expiry Interval more than once."
    wire = b"\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"
    with pytest.raises(ProtocolError) as info:
        parse_properties(wire, 0)
    assert not isinstance(info.value, MalformedPacket)


def test_repeated_subscription_identifiers_are_allowed_in_publish() -> None:
    # §3.3.2.3.8: a PUBLISH to a client may carry several.
    props, _ = parse_properties(b"\x04\x0b\x01\x0b\x02", 0, allowed=PUBLISH_PROPS)
    assert props.subscription_identifiers == (1, 2)


@pytest.mark.parametrize(
    "wire",
    [
        b"\x03\x21\x00\x00",  # Receive Maximum 0 (§3.1.2.11.3)
        b"\x05\x27\x00\x00\x00\x00",  # Maximum Packet Size 0 (§3.1.2.11.4)
        b"\x03\x23\x00\x00",  # Topic Alias 0 [MQTT-3.3.2-8]
        b"\x02\x0b\x00",  # Subscription Identifier 0 (§3.3.2.3.8)
        b"\x02\x24\x02",  # Maximum QoS 2 (§3.2.2.3.4)
        b"\x02\x17\x02",  # Request Problem Information 2 (§3.1.2.11.7)
    ],
)
def test_out_of_range_values_are_protocol_errors(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_properties(wire, 0)


@pytest.mark.parametrize(
    "wire",
    [
        b"",  # no property length at all
        b"\x05\x02\x00\x00",  # declared 5, 3 present
        b"\x02\x02\x00",  # four-byte integer cut short
        b"\x04\x03\x00\x05a",  # string cut short
        b"\x03\x0b\x80\x80",  # variable byte integer cut short
        b"\x06\x0b\xff\xff\xff\xff\x01",  # variable byte integer of 5 bytes
        b"\x05\x03\x00\x02\xc3\x28",  # bad UTF-8 [MQTT-1.5.4-1]
        b"\x04\x03\x00\x01\x00",  # U+0000 [MQTT-1.5.4-2]
        b"\x80\x80\x80\x80\x01",  # property length over 4 bytes
    ],
)
def test_malformed_property_blocks(wire: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_properties(wire, 0)


def test_long_property_length_uses_a_multi_byte_integer() -> None:
    props = Properties(user_properties=(("k", "v" * 200),))
    wire = serialize_properties(props)
    assert wire[:2] == b"\xce\x01"  # 206 = 0x4e | 0x80, 0x01
    assert parse_properties(wire, 0) == (props, len(wire))


def test_serializing_values_that_do_not_fit_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        serialize_properties(Properties(receive_maximum=70_000))
    with pytest.raises(ValueError):
        serialize_properties(Properties(subscription_identifiers=(0,)))


def test_repr_shows_only_present_properties() -> None:
    assert repr(EMPTY_PROPERTIES) == "Properties()"
    assert repr(Properties(topic_alias=3)) == "Properties(topic_alias=3)"


@settings(max_examples=200, deadline=None, database=None)
@given(properties(ALL_IDS))
def test_round_trip(props: Properties) -> None:
    wire = serialize_properties(props)
    assert parse_properties(wire, 0) == (props, len(wire))
