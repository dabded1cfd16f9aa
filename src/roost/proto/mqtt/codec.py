"""The MQTT stream decoder and the outbound fast paths (MQTT 5.0 §2, 3.1.1 §2).

:class:`Decoder` turns whatever bytes a read returned into every complete
packet they hold, keeping a partial tail for the next read. It decodes a whole
read in one pass: PUBLISH, the common case, is parsed in place from the read
buffer; other packets get their body sliced out and go to their class's
``parse``.

Memory is bounded by what arrived, never by what a header declares: the
declared size is checked against ``max_packet_size`` as soon as the fixed
header is complete, before any of the body is buffered.
"""

from __future__ import annotations

from roost.errors import MalformedPacket, PacketTooLarge, ProtocolError

from .packets import (
    DISCONNECT_BYTES,
    PARSERS,
    PINGREQ_BYTES,
    PINGRESP_BYTES,
    Connect,
    Packet,
)
from .packets_publish import encode_puback, encode_pubacks, encode_publish, parse_publish
from .wire import as_bytes

__all__ = [
    "DISCONNECT_BYTES",
    "PINGREQ_BYTES",
    "PINGRESP_BYTES",
    "Decoder",
    "Packet",
    "encode_puback",
    "encode_pubacks",
    "encode_publish",
]

DEFAULT_MAX_PACKET_SIZE = 256 * 1024


def _long_remaining_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Remaining Length of the packet at ``pos`` when it takes 2–4 bytes (§2.1.4).

    Returns (length, fixed header size), or (-1, 0) when the header is not
    complete yet. A fifth length byte is a Malformed Packet [MQTT-1.5.5-1].
    """
    value = 0
    shift = 0
    for i in range(pos + 1, min(pos + 5, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1 - pos
        shift += 7
    if end - pos >= 5:
        raise MalformedPacket("remaining length longer than 4 bytes [MQTT-1.5.5-1]")
    return -1, 0


class Decoder:
    """Incremental decoder of a client's (or server's) packet stream.

    ``version`` is None until a CONNECT is decoded; the first CONNECT's
    Protocol Level then fixes it for the rest of the stream, including packets
    later in the same read. A decoder for the client side of a connection is
    given its version up front. Any packet other than CONNECT while the
    version is unknown is a Protocol Error [MQTT-3.1.0-1].

    ``max_packet_size`` bounds the whole packet, fixed header included, as
    Maximum Packet Size does (MQTT 5.0 §3.1.2.11.4); it may be changed between
    calls to :meth:`feed`. After :meth:`feed` raises, the stream is lost and the
    connection must be closed.
    """

    __slots__ = ("version", "max_packet_size", "_tail", "_need")

    def __init__(
        self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE, *, version: int | None = None
    ) -> None:
        self.version: int | None = version
        self.max_packet_size = max_packet_size
        self._tail = bytearray()
        # Size the tail must reach before parsing it again is worth it.
        self._need = 0

    def buffered(self) -> int:
        """Bytes held back as the start of an incomplete packet."""
        return len(self._tail)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Decode every complete packet in the stream so far (MQTT 5.0 §2.1)."""
        tail = self._tail
        if tail:
            tail += data
            if len(tail) < self._need:
                return []
            buf = bytes(tail)
            tail.clear()
        else:
            buf = as_bytes(data)
        out: list[Packet] = []
        append = out.append
        version = self.version
        limit = self.max_packet_size
        pos = 0
        end = len(buf)
        need = 0
        while end - pos >= 2:
            first = buf[pos]
            size = buf[pos + 1]
            if size < 0x80:
                start = pos + 2
            else:
                size, header = _long_remaining_length(buf, pos, end)
                if not header:
                    break
                start = pos + header
            stop = start + size
            if stop - pos > limit:
                raise PacketTooLarge(f"packet of {stop - pos} bytes, limit {limit}")
            if stop > end:
                need = stop - pos
                break
            if first >> 4 == 3 and version is not None:
                append(parse_publish(first & 0x0F, buf, start, stop, version))
            else:
                packet = self._parse(first, buf[start:stop], version)
                if version is None and type(packet) is Connect:
                    version = self.version = packet.version
                append(packet)
            pos = stop
        if pos < end:
            tail += memoryview(buf)[pos:]
        self._need = need
        return out

    @staticmethod
    def _parse(first: int, body: bytes, version: int | None) -> Packet:
        kind = first >> 4
        if kind == 1:
            return Connect.parse(first & 0x0F, body)
        if kind == 0:
            raise MalformedPacket("reserved packet type 0 (§2.1.2)")
        if version is None:
            raise ProtocolError("first packet is not CONNECT [MQTT-3.1.0-1]")
        parser = PARSERS[kind]
        assert parser is not None
        return parser(first & 0x0F, body, version)
