"""The stream decoder (MQTT 5.0 §2.1, §1.5.5) and its limits."""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket, PacketTooLarge, ProtocolError
from roost.proto.mqtt import (
    PINGRESP_BYTES,
    Connect,
    Decoder,
    Pingreq,
    Puback,
    Publish,
    encode_publish,
)

from .wire_helpers import h

CONNECT_311 = h("10 0f 00 04 'MQTT' 04 02 00 3c 00 03 'abc'")
CONNECT_5 = h("10 10 00 04 'MQTT' 05 02 00 3c 00 00 03 'abc'")


def test_one_read_with_several_packets_and_a_partial_tail() -> None:
    decoder = Decoder()
    publish = h("32 0c 00 03 'a/b' 00 07 'hello'")
    packets = decoder.feed(CONNECT_311 + publish + h("c0 00") + publish[:5])
    assert [type(p) for p in packets] == [Connect, Publish, Pingreq]
    assert decoder.version == 4
    assert decoder.buffered() == 5
    assert decoder.feed(publish[5:]) == [Publish("a/b", b"hello", 1, packet_id=7)]
    assert decoder.buffered() == 0


def test_version_from_connect_applies_to_packets_later_in_the_same_read() -> None:
    # A 5.0 PUBLISH has a property length that 3.1.1 does not: parsed right only
    # if the CONNECT's level is used at once.
    decoder = Decoder()
    packets = decoder.feed(CONNECT_5 + h("30 05 00 01 't' 00 'x'"))
    assert packets[1] == Publish("t", b"x")
    assert decoder.version == 5


def test_first_packet_must_be_connect() -> None:
    # [MQTT-3.1.0-1]
    with pytest.raises(ProtocolError, match="MQTT-3.1.0-1"):
        Decoder().feed(h("c0 00"))
    with pytest.raises(ProtocolError, match="MQTT-3.1.0-1"):
        Decoder().feed(h("30 03 00 01 't'"))


def test_reserved_packet_type_zero_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        Decoder(version=4).feed(h("00 00"))


def test_remaining_length_over_four_bytes_is_malformed() -> None:
    # [MQTT-1.5.5-1]: raised as soon as the fifth byte arrives.
    decoder = Decoder(max_packet_size=1 << 30, version=4)
    assert decoder.feed(h("30 ff ff ff")) == []
    with pytest.raises(MalformedPacket, match="MQTT-1.5.5-1"):
        decoder.feed(h("ff"))


def test_declared_length_over_the_limit_raises_before_the_body_arrives() -> None:
    decoder = Decoder(max_packet_size=1000, version=4)
    # Remaining length 1000 + 3 header bytes = 1003 > 1000; no body sent at all.
    with pytest.raises(PacketTooLarge):
        decoder.feed(h("30 e8 07"))


def test_limit_counts_the_fixed_header() -> None:
    # Maximum Packet Size is the whole packet (MQTT 5.0 §3.1.2.11.4).
    wire = encode_publish("t", bytes(95), 0, None, 4)  # 2 + 98 = 100 bytes
    assert len(wire) == 100
    assert len(Decoder(max_packet_size=100, version=4).feed(wire)) == 1
    with pytest.raises(PacketTooLarge):
        Decoder(max_packet_size=99, version=4).feed(wire)


def test_max_packet_size_can_be_changed_between_reads() -> None:
    decoder = Decoder(max_packet_size=10, version=4)
    wire = encode_publish("t", bytes(50), 0, None, 4)
    with pytest.raises(PacketTooLarge):
        decoder.feed(wire)
    decoder = Decoder(max_packet_size=10, version=4)
    decoder.max_packet_size = 100
    assert len(decoder.feed(wire)) == 1


def test_a_huge_declared_length_buffers_only_what_arrived() -> None:
    decoder = Decoder(max_packet_size=1 << 30, version=4)
    assert decoder.feed(h("30 ff ff ff 7f") + bytes(10)) == []
    assert decoder.buffered() == 15


def test_large_packet_arriving_in_pieces() -> None:
    wire = encode_publish("t", bytes(range(256)) * 100, 1, 9, 5)
    decoder = Decoder(version=5)
    got = []
    for i in range(0, len(wire), 1000):
        got += decoder.feed(wire[i : i + 1000])
    assert got == [Publish("t", bytes(range(256)) * 100, 1, packet_id=9)]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    decoder = Decoder(version=4)
    assert decoder.feed(bytearray(h("40 02 00 01"))) == [Puback(1)]
    assert decoder.feed(memoryview(h("40 02 00 02"))) == [Puback(2)]


def test_empty_feed() -> None:
    assert Decoder().feed(b"") == []


def test_constant_bytes() -> None:
    assert PINGRESP_BYTES == h("d0 00")
