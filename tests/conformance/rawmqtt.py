"""A raw-socket MQTT 3.1.1 / 5.0 client for conformance tests.

Written from the specifications (MQTT 3.1.1, OASIS 2014; MQTT 5.0, OASIS
2019), independently of ``roost.proto``: a test that used Roost's own codec to
check Roost would pass on symmetric bugs. Builders return raw ``bytes`` so a
test can cut, corrupt or trickle them; :class:`RawClient` is a blocking
socket with timeouts that reads whole packets and notices when the server
closes.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 10.0

# Control packet types (§2.1.2)
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8, 9, 10, 11, 12, 13, 14, 15,
)

# --- data representations (§1.5) ----------------------------------------------------


def varint(value: int) -> bytes:
    """Variable Byte Integer (§1.5.5 / 3.1.1 §2.2.3)."""
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def u16(value: int) -> bytes:
    return struct.pack("!H", value)


def u32(value: int) -> bytes:
    return struct.pack("!I", value)


def utf8(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return u16(len(data)) + data


def binary(value: bytes) -> bytes:
    return u16(len(value)) + value


def packet(first: int, body: bytes) -> bytes:
    """Fixed header + body."""
    return bytes((first,)) + varint(len(body)) + body


# --- MQTT 5 properties (§2.2.2.2) ---------------------------------------------------

# identifier -> (name, kind)
PROPERTY_TYPES: dict[int, tuple[str, str]] = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROPERTY_IDS = {name: (ident, kind) for ident, (name, kind) in PROPERTY_TYPES.items()}


def properties(**values: Any) -> bytes:
    """Encode properties by name; ``user_property`` takes a list of pairs."""
    out = bytearray()
    for name, value in values.items():
        ident, kind = PROPERTY_IDS[name]
        items = value if kind == "pair" else [value]
        for item in items:
            out += varint(ident)
            if kind == "byte":
                out.append(item)
            elif kind == "u16":
                out += u16(item)
            elif kind == "u32":
                out += u32(item)
            elif kind == "varint":
                out += varint(item)
            elif kind == "str":
                out += utf8(item)
            elif kind == "bin":
                out += binary(item)
            else:
                out += utf8(item[0]) + utf8(item[1])
    return varint(len(out)) + bytes(out)


class Cursor:
    """Reads data representations from one packet body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"packet too short: need {n} bytes at {self.pos} of {self.data!r}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def varint(self) -> int:
        value, shift = 0, 0
        for _ in range(4):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise ValueError("variable byte integer longer than 4 bytes")

    def str(self) -> str:
        return self.take(self.u16()).decode()

    def bin(self) -> bytes:
        return self.take(self.u16())

    def properties(self) -> dict[str, Any]:
        length = self.varint()
        end = self.pos + length
        props: dict[str, Any] = {}
        while self.pos < end:
            name, kind = PROPERTY_TYPES[self.varint()]
            if kind == "pair":
                props.setdefault(name, []).append((self.str(), self.str()))
            else:
                props[name] = getattr(self, kind)() if kind != "byte" else self.byte()
        if self.pos != end:
            raise ValueError("property length mismatch")
        return props


# --- packet builders ------------------------------------------------------------------


def connect(
    client_id: str,
    username: str | None = None,
    password: str | bytes | None = None,
    *,
    version: int = 4,
    clean: bool = True,
    keepalive: int = 60,
    props: bytes | None = None,
    protocol_name: str = "MQTT",
    level: int | None = None,
    extra_flags: int = 0,
) -> bytes:
    """CONNECT (§3.1). ``props`` is an encoded property block (MQTT 5)."""
    flags = (0x02 if clean else 0) | extra_flags
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = utf8(protocol_name) + bytes((level if level is not None else version, flags))
    body += u16(keepalive)
    if version == 5:
        body += props if props is not None else b"\x00"
    body += utf8(client_id)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password.encode() if isinstance(password, str) else password)
    return packet(0x10, body)


def publish(
    topic: str,
    payload: bytes = b"",
    *,
    qos: int = 0,
    packet_id: int | None = None,
    version: int = 4,
    retain: bool = False,
    dup: bool = False,
    props: bytes | None = None,
) -> bytes:
    """PUBLISH (§3.3); ``qos`` may be any 2-bit value, for malformed cases."""
    first = 0x30 | (dup << 3) | (qos << 1) | int(retain)
    body = utf8(topic)
    if qos:
        body += u16(packet_id if packet_id is not None else 1)
    if version == 5:
        body += props if props is not None else b"\x00"
    return packet(first, body + payload)


def subscribe(
    filters: list[tuple[str, int]], packet_id: int = 1, *, version: int = 4
) -> bytes:
    """SUBSCRIBE (§3.8), fixed header flags 0b0010."""
    body = u16(packet_id) + (b"\x00" if version == 5 else b"")
    for topic_filter, options in filters:
        body += utf8(topic_filter) + bytes((options,))
    return packet(0x82, body)


def unsubscribe(filters: list[str], packet_id: int = 1, *, version: int = 4) -> bytes:
    body = u16(packet_id) + (b"\x00" if version == 5 else b"")
    for topic_filter in filters:
        body += utf8(topic_filter)
    return packet(0xA2, body)


def puback(packet_id: int) -> bytes:
    return packet(0x40, u16(packet_id))


PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"


# --- parsed packets ---------------------------------------------------------------------


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes

    @property
    def name(self) -> str:
        names = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
                 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
                 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}
        return names.get(self.type, f"type {self.type}")


@dataclass
class Connack:
    session_present: bool
    code: int
    props: dict[str, Any] = field(default_factory=dict)


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int
    dup: bool
    retain: bool
    packet_id: int | None
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def user_properties(self) -> dict[str, str]:
        return dict(self.props.get("user_property", []))


def parse_connack(p: Packet, version: int) -> Connack:
    assert p.type == CONNACK, f"expected CONNACK, got {p.name}"
    c = Cursor(p.body)
    flags, code = c.byte(), c.byte()
    props = c.properties() if version == 5 and c.left() else {}
    return Connack(bool(flags & 1), code, props)


def parse_publish(p: Packet, version: int) -> Publish:
    assert p.type == PUBLISH, f"expected PUBLISH, got {p.name}"
    qos = (p.flags >> 1) & 3
    c = Cursor(p.body)
    topic = c.str()
    packet_id = c.u16() if qos else None
    props = c.properties() if version == 5 else {}
    return Publish(topic, c.take(c.left()), qos, bool(p.flags & 8), bool(p.flags & 1),
                   packet_id, props)


def parse_suback(p: Packet, version: int) -> tuple[int, list[int]]:
    assert p.type == SUBACK, f"expected SUBACK, got {p.name}"
    c = Cursor(p.body)
    packet_id = c.u16()
    if version == 5:
        c.properties()
    return packet_id, list(c.take(c.left()))


def parse_disconnect(p: Packet) -> int:
    """The reason code of a (5.0) DISCONNECT; 0 when left out (§3.14.2.1)."""
    assert p.type == DISCONNECT, f"expected DISCONNECT, got {p.name}"
    return p.body[0] if p.body else 0


# --- the client -----------------------------------------------------------------------------


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """One TCP connection speaking raw MQTT, with blocking reads under a deadline."""

    def __init__(self, port: int, version: int = 4, host: str = "127.0.0.1") -> None:
        self.version = version
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self.eof = False

    # --- bytes ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_bytewise(self, data: bytes, pause: float = 0.002) -> None:
        """One byte per send (TCP_NODELAY, with a pause): the server sees many small reads."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            if pause:
                time.sleep(pause)

    def _fill(self, deadline: float) -> None:
        if self.eof:
            raise Closed("connection closed by the server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.eof = True
            raise Closed(f"connection reset: {exc}") from None
        except TimeoutError:
            raise TimeoutError("no data from the server in time") from None
        if not chunk:
            self.eof = True
            raise Closed("connection closed by the server")
        self._buf += chunk

    def _parse_one(self) -> Packet | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        length, shift, i = 0, 0, 1
        while True:
            if i >= len(buf):
                return None
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if byte < 0x80:
                break
            shift += 7
            if i > 4:
                raise ValueError("server sent a remaining length over 4 bytes")
        if len(buf) < i + length:
            return None
        first = buf[0]
        body = bytes(buf[i : i + length])
        del buf[: i + length]
        return Packet(first >> 4, first & 0x0F, body)

    def read(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet; raises :class:`Closed` or ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse_one()
            if p is not None:
                return p
            self._fill(deadline)

    def read_until(self, kind: int, timeout: float = TIMEOUT) -> Packet:
        """Skip other packets (e.g. PINGRESP) until one of type ``kind``."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.read(max(0.01, deadline - time.monotonic()))
            if p.type == kind:
                return p

    def wait_closed(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Read until the server closes; return what it sent before. ``TimeoutError`` if it
        keeps the connection open."""
        deadline = time.monotonic() + timeout
        packets: list[Packet] = []
        while True:
            try:
                packets.append(self.read(max(0.01, deadline - time.monotonic())))
            except Closed:
                return packets

    def is_open_after(self, seconds: float) -> bool:
        """True if the server keeps the connection open (and silent) for ``seconds``."""
        try:
            self.read(seconds)
        except TimeoutError:
            return True
        except Closed:
            return False
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- conversations ---------------------------------------------------------------

    def handshake(
        self,
        client_id: str,
        key: str | None,
        *,
        clean: bool = True,
        keepalive: int = 60,
        session_expiry: int | None = None,
        username: str | None = None,
    ) -> Connack:
        """CONNECT with user name = client id, password = key; return the CONNACK."""
        props = None
        if self.version == 5 and session_expiry is not None:
            props = properties(session_expiry_interval=session_expiry)
        self.send(
            connect(
                client_id,
                username if username is not None else (client_id if key is not None else None),
                key,
                version=self.version,
                clean=clean,
                keepalive=keepalive,
                props=props,
            )
        )
        return parse_connack(self.read(), self.version)

    def subscribe(self, filters: list[tuple[str, int]], packet_id: int = 1) -> list[int]:
        self.send(subscribe(filters, packet_id, version=self.version))
        pid, codes = parse_suback(self.read_until(SUBACK), self.version)
        assert pid == packet_id, f"SUBACK for packet id {pid}, expected {packet_id}"
        return codes

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, packet_id: int = 1,
                **kw: Any) -> None:
        self.send(publish(topic, payload, qos=qos, packet_id=packet_id, version=self.version,
                          **kw))

    def expect_publish(self, timeout: float = TIMEOUT) -> Publish:
        return parse_publish(self.read_until(PUBLISH, timeout), self.version)

    def puback(self, packet_id: int) -> None:
        self.send(puback(packet_id))

    def ping(self, timeout: float = TIMEOUT) -> Packet:
        self.send(PINGREQ_BYTES)
        return self.read_until(PINGRESP, timeout)

    # --- endings -------------------------------------------------------------------------

    def expect_disconnect(self, reasons: tuple[int, ...] = (), *, required: bool = False,
                          timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to close the connection.

        Before closing, a 5.0 server may (``required``: must) send one DISCONNECT whose
        reason is in ``reasons`` (§4.13); a 3.1.1 server sends nothing. Returns the
        reason, or None when there was no DISCONNECT.
        """
        packets = self.wait_closed(timeout)
        if not packets:
            assert not (required and self.version == 5), "closed without a DISCONNECT"
            return None
        assert self.version == 5, f"3.1.1 server sent {[p.name for p in packets]} before closing"
        assert [p.type for p in packets] == [DISCONNECT], [p.name for p in packets]
        reason = parse_disconnect(packets[0])
        assert reason in reasons, f"DISCONNECT reason 0x{reason:02x}, expected one of " + ", ".join(
            f"0x{r:02x}" for r in reasons)
        return reason

    def expect_refused(self, codes: tuple[int, ...] = (), *,
                       timeout: float = TIMEOUT) -> int | None:
        """Wait for the close of a connection that was never accepted.

        The server may first send one CONNACK, whose code must then be in ``codes``
        (return code in 3.1.1, reason code in 5.0) [MQTT-3.2.2-5]. Returns that code or None.
        """
        packets = self.wait_closed(timeout)
        if not packets:
            return None
        assert [p.type for p in packets] == [CONNACK], [p.name for p in packets]
        code = packets[0].body[1]
        assert code in codes, f"CONNACK code 0x{code:02x}, expected one of {codes}"
        return code
