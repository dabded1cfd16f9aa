"""Data representations (MQTT 5.0 §1.5)."""

from __future__ import annotations

import pytest

from roost.errors import MalformedPacket
from roost.proto.mqtt.wire import (
    Reader,
    decode_binary,
    decode_string,
    decode_vbi,
    encode_binary,
    encode_string,
    encode_vbi,
)

# The boundary values of §1.5.5 Table 1-1.
VBI_CASES = [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
]


@pytest.mark.parametrize(("value", "wire"), VBI_CASES)
def test_variable_byte_integer_boundaries(value: int, wire: bytes) -> None:
    assert encode_vbi(value) == wire
    assert decode_vbi(wire, 0, len(wire)) == (value, len(wire))


def test_variable_byte_integer_over_four_bytes_is_malformed() -> None:
    # [MQTT-1.5.5-1]: at most four bytes.
    with pytest.raises(MalformedPacket):
        decode_vbi(b"\xff\xff\xff\xff\x01", 0, 5)


def test_truncated_variable_byte_integer_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_vbi(b"\xff\xff", 0, 2)


@pytest.mark.parametrize("value", [-1, 268_435_456])
def test_encoding_an_out_of_range_variable_byte_integer_is_a_caller_error(value: int) -> None:
    with pytest.raises(ValueError):
        encode_vbi(value)


def test_string_encoding_matches_the_spec_example() -> None:
    # §1.5.4 Figure 1-1: U+2A6D4 followed by U+FEFF... here: "A\U0002a6d4".
    wire = encode_string("A\U0002a6d4")
    assert wire == b"\x00\x05A\xf0\xaa\x9b\x94"
    assert decode_string(wire, 0, len(wire)) == ("A\U0002a6d4", 7)


def test_string_with_bad_utf8_is_malformed() -> None:
    # [MQTT-1.5.4-1]: ill-formed UTF-8, here a lone continuation byte.
    with pytest.raises(MalformedPacket):
        decode_string(b"\x00\x01\x80", 0, 3)


def test_string_with_an_encoded_surrogate_is_malformed() -> None:
    # [MQTT-1.5.4-1]: U+D800..U+DFFF must not be encoded.
    with pytest.raises(MalformedPacket):
        decode_string(b"\x00\x03\xed\xa0\x80", 0, 5)


def test_string_with_null_character_is_malformed() -> None:
    # [MQTT-1.5.4-2]
    with pytest.raises(MalformedPacket):
        decode_string(b"\x00\x03a\x00b", 0, 5)


def test_string_running_past_its_end_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_string(b"\x00\x05abc", 0, 5)
    with pytest.raises(MalformedPacket):
        decode_string(b"\x00", 0, 1)


def test_string_too_long_to_encode_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        encode_string("x" * 65_536)
    with pytest.raises(ValueError):
        encode_binary(b"x" * 65_536)


def test_binary_data() -> None:
    assert encode_binary(b"\x00\xff") == b"\x00\x02\x00\xff"
    assert decode_binary(b"\x00\x02\x00\xff", 0, 4) == (b"\x00\xff", 4)
    with pytest.raises(MalformedPacket):
        decode_binary(b"\x00\x03\x00", 0, 3)


def test_reader_stops_at_its_end_not_the_buffer_end() -> None:
    r = Reader(b"\x01\x02\x03", 0, 2)
    assert r.u16() == 0x0102
    with pytest.raises(MalformedPacket):
        r.u8()


def test_reader_done_rejects_trailing_bytes() -> None:
    r = Reader(b"\x01\x02")
    r.u8()
    with pytest.raises(MalformedPacket):
        r.done()
