"""MQTT data representations (MQTT 5.0 §1.5, 3.1.1 §1.5).

Two-byte integers, variable byte integers, UTF-8 encoded strings, binary data
and string pairs, read from a buffer between an offset and an end so a parser
never reads past its own packet, and written to ``bytes``.

Reading errors from the peer raise :class:`~roost.errors.MalformedPacket`;
writing values that cannot be encoded (a string over 65,535 bytes) is a bug in
the caller and raises ``ValueError``.
"""

from __future__ import annotations

from roost.errors import MalformedPacket, ProtocolError

MAX_VBI = 268_435_455  # §1.5.5: four bytes of seven bits
MAX_UINT16 = 0xFFFF
MAX_UINT32 = 0xFFFF_FFFF

# One-byte variable byte integers are the overwhelmingly common remaining
# length and property length, so they are never rebuilt.
_VBI1: tuple[bytes, ...] = tuple(bytes((i,)) for i in range(128))


def encode_vbi(value: int) -> bytes:
    """Encode a Variable Byte Integer (MQTT 5.0 §1.5.5)."""
    if value < 128:
        if value < 0:
            raise ValueError(f"variable byte integer out of range: {value}")
        return _VBI1[value]
    if value > MAX_VBI:
        raise ValueError(f"variable byte integer out of range: {value}")
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_vbi(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a Variable Byte Integer at ``pos`` (MQTT 5.0 §1.5.5).

    Returns the value and the offset after it. More than four bytes, or running
    past ``end``, is a Malformed Packet [MQTT-1.5.5-1].
    """
    value = 0
    shift = 0
    for i in range(pos, min(pos + 4, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    if end - pos >= 4:
        raise MalformedPacket("variable byte integer longer than 4 bytes")
    raise MalformedPacket("truncated variable byte integer")


def as_bytes(body: bytes | bytearray | memoryview) -> bytes:
    """Parsers work on ``bytes``; accept any buffer and copy only if needed."""
    return body if type(body) is bytes else bytes(body)


def frame(first_byte: int, body: bytes) -> bytes:
    """Prefix a packet body with its fixed header (MQTT 5.0 §2.1.1, §2.1.4)."""
    size = len(body)
    if size < 128:
        return bytes((first_byte, size)) + body
    return bytes((first_byte,)) + encode_vbi(size) + body


def encode_string(value: str) -> bytes:
    """Encode a UTF-8 Encoded String with its two-byte length (MQTT 5.0 §1.5.4)."""
    data = value.encode()
    if len(data) > MAX_UINT16:
        raise ValueError("UTF-8 string longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + data


def encode_binary(value: bytes) -> bytes:
    """Encode Binary Data with its two-byte length (MQTT 5.0 §1.5.6)."""
    if len(value) > MAX_UINT16:
        raise ValueError("binary data longer than 65535 bytes")
    return len(value).to_bytes(2, "big") + value


def check_string(value: str) -> None:
    """Reject U+0000, which MQTT strings must not contain [MQTT-1.5.4-2].

    Ill-formed UTF-8 and surrogates [MQTT-1.5.4-1] are already refused by
    Python's strict UTF-8 decoder.
    """
    if "\x00" in value:
        raise MalformedPacket("UTF-8 string contains U+0000 [MQTT-1.5.4-2]")


def decode_string(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """Read a UTF-8 Encoded String (MQTT 5.0 §1.5.4) [MQTT-1.5.4-1/2]."""
    stop = pos + 2
    if stop > end:
        raise MalformedPacket("truncated string length")
    stop += (buf[pos] << 8) | buf[pos + 1]
    if stop > end:
        raise MalformedPacket("string runs past the end of the packet")
    try:
        value = buf[pos + 2 : stop].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("string is not well-formed UTF-8 [MQTT-1.5.4-1]") from None
    if "\x00" in value:
        raise MalformedPacket("UTF-8 string contains U+0000 [MQTT-1.5.4-2]")
    return value, stop


def decode_binary(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Read Binary Data (MQTT 5.0 §1.5.6)."""
    stop = pos + 2
    if stop > end:
        raise MalformedPacket("truncated binary data length")
    stop += (buf[pos] << 8) | buf[pos + 1]
    if stop > end:
        raise MalformedPacket("binary data runs past the end of the packet")
    return buf[pos + 2 : stop], stop


class Reader:
    """A cursor over one packet body, for the packets that are not on the hot path."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def u8(self) -> int:
        if self.pos >= self.end:
            raise MalformedPacket("packet ends early")
        self.pos += 1
        return self.buf[self.pos - 1]

    def u16(self) -> int:
        pos = self.pos
        if pos + 2 > self.end:
            raise MalformedPacket("packet ends early")
        self.pos = pos + 2
        return (self.buf[pos] << 8) | self.buf[pos + 1]

    def string(self) -> str:
        value, self.pos = decode_string(self.buf, self.pos, self.end)
        return value

    def binary(self) -> bytes:
        value, self.pos = decode_binary(self.buf, self.pos, self.end)
        return value

    def packet_id(self) -> int:
        """A non-zero Packet Identifier (MQTT 5.0 §2.2.1) [MQTT-2.2.1-3]."""
        value = self.u16()
        if value == 0:
            raise ProtocolError("packet identifier 0 [MQTT-2.2.1-3]")
        return value

    def done(self) -> None:
        """Fail if bytes are left over: a length mismatch is a Malformed Packet."""
        if self.pos != self.end:
            raise MalformedPacket("unexpected bytes at the end of the packet")
