"""Session packets: CONNECT, CONNACK, PINGREQ, PINGRESP, DISCONNECT, AUTH.

MQTT 5.0 §3.1, §3.2, §3.12, §3.13, §3.14, §3.15 and their MQTT 3.1.1
counterparts (§3.1, §3.2, §3.12–§3.14; 3.1.1 has no AUTH). Each packet has
``serialize(version)`` and ``parse(flags, body, version)``; ``body`` is the
packet after the fixed header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from roost.errors import MalformedPacket, ProtocolError, UnsupportedVersion

from .constants import AUTH_REASONS, CONNACK_REASONS, DISCONNECT_REASONS
from .properties import (
    AUTH_PROPS,
    CONNACK_PROPS,
    CONNECT_PROPS,
    DISCONNECT_PROPS,
    EMPTY_PROPERTIES,
    WILL_PROPS,
    Properties,
    is_empty,
    parse_properties,
    serialize_properties,
)
from .topics import validate_topic_name
from .wire import Reader, as_bytes, encode_binary, encode_string, frame

V5 = 5
Body = bytes | bytearray | memoryview

PINGREQ_BYTES = b"\xc0\x00"
PINGRESP_BYTES = b"\xd0\x00"
DISCONNECT_BYTES = b"\xe0\x00"  # 3.1.1, and 5.0 normal disconnection (§3.14.2.1)


def check_flags(flags: int, expected: int, name: str) -> None:
    """Reserved fixed-header flag bits must hold their set value [MQTT-2.1.3-1]."""
    if flags != expected:
        raise MalformedPacket(f"reserved flags of {name} are {flags:#06b} [MQTT-2.1.3-1]")


def check_reason(code: int, allowed: frozenset[int], name: str) -> int:
    if code not in allowed:
        raise MalformedPacket(f"reason code 0x{code:02x} is not valid in {name}")
    return code


@dataclass(frozen=True, slots=True)
class Will:
    """The Will Message carried by CONNECT (MQTT 5.0 §3.1.2.5, §3.1.3.2–§3.1.3.4)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT (MQTT 5.0 §3.1, 3.1.1 §3.1).

    ``version`` is the Protocol Level the client sent; the decoder takes the
    protocol version of the whole connection from it.
    """

    protocol_name: str = "MQTT"
    version: int = V5
    client_id: str = ""
    clean_start: bool = True
    keep_alive: int = 0
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int | None = None) -> bytes:
        """Encode; ``version`` defaults to, and must equal, ``self.version``."""
        if version is not None and version != self.version:
            raise ValueError("CONNECT serialized with a version other than its own")
        v5 = self.version >= V5
        if not v5 and self.password is not None and self.username is None:
            raise ValueError("3.1.1 CONNECT with a password needs a user name [MQTT-3.1.2-22]")
        will = self.will
        flags = (self.clean_start << 1) | ((self.password is not None) << 6)
        flags |= (self.username is not None) << 7
        if will is not None:
            flags |= 0x04 | (will.qos << 3) | (will.retain << 5)
        parts = [
            encode_string(self.protocol_name),
            bytes((self.version, flags)),
            self.keep_alive.to_bytes(2, "big"),
        ]
        if v5:
            parts.append(serialize_properties(self.properties))
        parts.append(encode_string(self.client_id))
        if will is not None:
            if v5:
                parts.append(serialize_properties(will.properties))
            parts += (encode_string(will.topic), encode_binary(will.payload))
        if self.username is not None:
            parts.append(encode_string(self.username))
        if self.password is not None:
            parts.append(encode_binary(self.password))
        return frame(0x10, b"".join(parts))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int | None = None) -> Self:
        """Parse CONNECT; ``version`` is ignored, the packet states its own (§3.1.2.2).

        Protocol name other than "MQTT" or a level other than 4 or 5 (MQTT 3.1
        "MQIsdp" included) raises UnsupportedVersion [MQTT-3.1.2-2].
        """
        check_flags(flags, 0, "CONNECT")
        r = Reader(as_bytes(body))
        name = r.string()
        level = r.u8()
        if name != "MQTT" or level not in (4, 5):
            raise UnsupportedVersion(f"protocol {name!r} level {level} [MQTT-3.1.2-2]")
        cflags = r.u8()
        if cflags & 0x01:
            raise MalformedPacket("CONNECT reserved flag is set [MQTT-3.1.2-3]")
        has_will = bool(cflags & 0x04)
        will_qos = (cflags >> 3) & 3
        will_retain = bool(cflags & 0x20)
        if will_qos == 3:
            raise MalformedPacket("will QoS 3 [MQTT-3.1.2-12]")
        if not has_will and (will_qos or will_retain):
            raise MalformedPacket("will QoS/retain set without a will [MQTT-3.1.2-11/13]")
        has_password = bool(cflags & 0x40)
        has_username = bool(cflags & 0x80)
        if level < V5 and has_password and not has_username:
            raise MalformedPacket("password without user name [MQTT-3.1.2-22]")
        keep_alive = r.u16()
        props = EMPTY_PROPERTIES
        if level >= V5:
            props, r.pos = parse_properties(r.buf, r.pos, r.end, CONNECT_PROPS)
            if props.authentication_data is not None and props.authentication_method is None:
                raise ProtocolError("authentication data without method (§3.1.2.11.10)")
        client_id = r.string()
        will = None
        if has_will:
            will_props = EMPTY_PROPERTIES
            if level >= V5:
                will_props, r.pos = parse_properties(r.buf, r.pos, r.end, WILL_PROPS)
            will_topic = r.string()
            validate_topic_name(will_topic)
            will = Will(will_topic, r.binary(), will_qos, will_retain, will_props)
        username = r.string() if has_username else None
        password = r.binary() if has_password else None
        r.done()
        return cls(
            name,
            level,
            client_id,
            bool(cflags & 0x02),
            keep_alive,
            username,
            password,
            will,
            props,
        )


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK (MQTT 5.0 §3.2, 3.1.1 §3.2).

    ``reason_code`` is the wire value of the version: a 5.0 reason code, or a
    3.1.1 return code 0–5 (map with ``connack_code_v311``).
    """

    session_present: bool = False
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        head = bytes((self.session_present, self.reason_code))
        if version < V5:
            return b"\x20\x02" + head
        return frame(0x20, head + serialize_properties(self.properties))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "CONNACK")
        r = Reader(as_bytes(body))
        ack_flags = r.u8()
        if ack_flags & 0xFE:
            raise MalformedPacket("CONNACK reserved flags are set [MQTT-3.2.2-1]")
        code = r.u8()
        props = EMPTY_PROPERTIES
        if version >= V5:
            check_reason(code, CONNACK_REASONS, "CONNACK")
            props, r.pos = parse_properties(r.buf, r.pos, r.end, CONNACK_PROPS)
        elif code > 5:
            raise MalformedPacket(f"CONNACK return code {code} is reserved (3.1.1 §3.2.2.3)")
        r.done()
        return cls(bool(ack_flags), code, props)


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ (MQTT 5.0 §3.12)."""

    def serialize(self, version: int) -> bytes:
        return PINGREQ_BYTES

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "PINGREQ")
        if len(body):
            raise MalformedPacket("PINGREQ with a body")
        return cls()


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP (MQTT 5.0 §3.13)."""

    def serialize(self, version: int) -> bytes:
        return PINGRESP_BYTES

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "PINGRESP")
        if len(body):
            raise MalformedPacket("PINGRESP with a body")
        return cls()


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT (MQTT 5.0 §3.14; 3.1.1 §3.14 has no body).

    In 5.0 the reason code and properties may be left out when the reason is
    0 and there are no properties (§3.14.2.1).
    """

    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        if version < V5 or (self.reason_code == 0 and is_empty(self.properties)):
            return DISCONNECT_BYTES
        if is_empty(self.properties):
            return bytes((0xE0, 1, self.reason_code))
        return frame(0xE0, bytes((self.reason_code,)) + serialize_properties(self.properties))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "DISCONNECT")
        if version < V5:
            if len(body):
                raise MalformedPacket("3.1.1 DISCONNECT with a body")
            return cls()
        if not len(body):
            return cls()
        r = Reader(as_bytes(body))
        code = check_reason(r.u8(), DISCONNECT_REASONS, "DISCONNECT")
        props = EMPTY_PROPERTIES
        if r.remaining():
            props, r.pos = parse_properties(r.buf, r.pos, r.end, DISCONNECT_PROPS)
        r.done()
        return cls(code, props)


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH (MQTT 5.0 §3.15); packet type 15 is reserved in 3.1.1."""

    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        if version < V5:
            raise ValueError("AUTH does not exist in MQTT 3.1.1")
        if self.reason_code == 0 and is_empty(self.properties):
            return b"\xf0\x00"
        return frame(0xF0, bytes((self.reason_code,)) + serialize_properties(self.properties))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        if version < V5:
            raise MalformedPacket("packet type 15 is reserved in MQTT 3.1.1")
        check_flags(flags, 0, "AUTH")
        if not len(body):
            return cls()
        r = Reader(as_bytes(body))
        code = check_reason(r.u8(), AUTH_REASONS, "AUTH")
        props, r.pos = parse_properties(r.buf, r.pos, r.end, AUTH_PROPS)
        r.done()
        return cls(code, props)
