"""Just enough MQTT 3.1.1 to drive a broker: build packets, split a byte stream into packets.

Deliberately independent of ``roost.proto`` (a benchmark that shared the server's codec
could share its bugs too), and built for speed rather than completeness: packets are
encoded once and reused, and the splitter has a fast path for the 4-byte acks that
dominate a QoS 1 load. References are to the MQTT 3.1.1 OASIS standard.
"""

from __future__ import annotations

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"


def _varint(n: int) -> bytes:
    """Remaining Length (§2.2.3): 7 bits a byte, high bit = more."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(s: str | bytes) -> bytes:
    """A length-prefixed string (§1.5.3)."""
    data = s.encode() if isinstance(s, str) else s
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect(
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    keepalive: int = 60,
    clean: bool = True,
) -> bytes:
    """CONNECT (§3.1) for protocol level 4 (3.1.1)."""
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    body = _utf8("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big") + _utf8(client_id)
    if username is not None:
        body += _utf8(username)
    if password is not None:
        body += _utf8(password)
    return _packet(CONNECT << 4, body)


def publish(topic: str | bytes, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    """PUBLISH (§3.3); ``packet_id`` only for QoS > 0."""
    body = _utf8(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return _packet(PUBLISH << 4 | qos << 1, body)


def subscribe(packet_id: int, topic: str, qos: int = 1) -> bytes:
    """SUBSCRIBE (§3.8) to one topic filter; fixed-header flags must be 0b0010."""
    return _packet(SUBSCRIBE << 4 | 2, packet_id.to_bytes(2, "big") + _utf8(topic) + bytes([qos]))


def puback(packet_id: int) -> bytes:
    """PUBACK (§3.4)."""
    return bytes([PUBACK << 4, 2]) + packet_id.to_bytes(2, "big")


def split(buf: bytearray) -> list[tuple[int, int, bytes]]:
    """Remove every complete packet from ``buf``; return ``(type, flags, body)`` for each.

    PUBACKs are returned with the packet id as an int in place of the body bytes
    (type PUBACK, flags 0, body ``pid``) so the hot path never slices them.
    """
    out: list[tuple[int, int, bytes]] = []
    i, n = 0, len(buf)
    while i + 2 <= n:
        first = buf[i]
        if first == 0x40 and buf[i + 1] == 2:  # PUBACK, the common case under QoS 1 load
            if i + 4 > n:
                break
            out.append((PUBACK, 0, buf[i + 2] << 8 | buf[i + 3]))  # type: ignore[arg-type]
            i += 4
            continue
        length, mult, j = 0, 1, i + 1
        while True:
            if j >= n:
                del buf[:i]
                return out
            byte = buf[j]
            length += (byte & 0x7F) * mult
            mult <<= 7
            j += 1
            if not byte & 0x80:
                break
        if j + length > n:
            break
        out.append((first >> 4, first & 0x0F, bytes(buf[j : j + length])))
        i = j + length
    del buf[:i]
    return out


def parse_publish(flags: int, body: bytes) -> tuple[bytes, int, int, bytes]:
    """``(topic, qos, packet_id, payload)`` of a PUBLISH body (§3.3.2)."""
    tlen = body[0] << 8 | body[1]
    topic = body[2 : 2 + tlen]
    qos = (flags >> 1) & 3
    pos = 2 + tlen
    pid = 0
    if qos:
        pid = body[pos] << 8 | body[pos + 1]
        pos += 2
    return topic, qos, pid, body[pos:]
