"""Subscription packets: SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK.

MQTT 5.0 §3.8–§3.11, 3.1.1 §3.8–§3.11. The parsers check the packet's
structure; whether each topic filter is acceptable is decided per filter by
the caller (``validate_topic_filter``), because 5.0 answers a bad filter with
SUBACK reason 0x8F rather than by closing the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from roost.errors import MalformedPacket, ProtocolError

from .constants import SUBACK_CODES_V311, SUBACK_REASONS, UNSUBACK_REASONS
from .packets_connect import Body, check_flags
from .properties import (
    ACK_PROPS,
    EMPTY_PROPERTIES,
    SUBSCRIBE_PROPS,
    UNSUBSCRIBE_PROPS,
    Properties,
    parse_properties,
    serialize_properties,
)
from .topics import SHARE_PREFIX
from .wire import MAX_UINT16, Reader, as_bytes, encode_string, frame

V5 = 5


def _packet_id_bytes(packet_id: int) -> bytes:
    if not 0 < packet_id <= MAX_UINT16:
        raise ValueError(f"packet identifier {packet_id}")
    return packet_id.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter and its Subscription Options (MQTT 5.0 §3.8.3.1).

    3.1.1 carries only the QoS; the other options read as their defaults.
    """

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0

    def options(self) -> int:
        return (
            self.qos
            | (self.no_local << 2)
            | (self.retain_as_published << 3)
            | (self.retain_handling << 4)
        )


def _parse_options(topic_filter: str, options: int, version: int) -> Subscription:
    qos = options & 3
    if qos == 3:
        raise MalformedPacket("subscription QoS 3 [MQTT-3.8.3-4]")
    if version < V5:
        if options & 0xFC:
            raise MalformedPacket("reserved subscription option bits set (3.1.1 [MQTT-3-8.3-4])")
        return Subscription(topic_filter, qos)
    if options & 0xC0:
        raise MalformedPacket("reserved subscription option bits set [MQTT-3.8.3-5]")
    retain_handling = (options >> 4) & 3
    if retain_handling == 3:
        raise ProtocolError("retain handling 3 (§3.8.3.1)")
    no_local = bool(options & 0x04)
    if no_local and topic_filter.startswith(SHARE_PREFIX):
        raise ProtocolError("no local on a shared subscription [MQTT-3.8.3-4]")
    return Subscription(topic_filter, qos, no_local, bool(options & 0x08), retain_handling)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE (MQTT 5.0 §3.8, 3.1.1 §3.8); flags 0b0010 [MQTT-3.8.1-1]."""

    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        if not self.subscriptions:
            raise ValueError("SUBSCRIBE without a topic filter [MQTT-3.8.3-3]")
        parts = [_packet_id_bytes(self.packet_id)]
        if version >= V5:
            parts.append(serialize_properties(self.properties))
        for sub in self.subscriptions:
            options = sub.options() if version >= V5 else sub.qos
            parts += (encode_string(sub.topic_filter), bytes((options,)))
        return frame(0x82, b"".join(parts))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 2, "SUBSCRIBE")
        r = Reader(as_bytes(body))
        packet_id = r.packet_id()
        props = EMPTY_PROPERTIES
        if version >= V5:
            props, r.pos = parse_properties(r.buf, r.pos, r.end, SUBSCRIBE_PROPS)
            if len(props.subscription_identifiers) > 1:
                raise ProtocolError("subscription identifier included more than once")
        subs = []
        while r.remaining():
            topic_filter = r.string()
            subs.append(_parse_options(topic_filter, r.u8(), version))
        if not subs:
            raise ProtocolError("SUBSCRIBE without a topic filter [MQTT-3.8.3-3]")
        return cls(packet_id, tuple(subs), props)


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK (MQTT 5.0 §3.9, 3.1.1 §3.9).

    Serialized as 3.1.1, a failure reason (>= 0x80) becomes return code 0x80
    (3.1.1 §3.9.3) and the properties are dropped.
    """

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        parts = [_packet_id_bytes(self.packet_id)]
        if version >= V5:
            parts += (serialize_properties(self.properties), bytes(self.reason_codes))
        else:
            parts.append(bytes(0x80 if code >= 0x80 else code for code in self.reason_codes))
        return frame(0x90, b"".join(parts))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "SUBACK")
        r = Reader(as_bytes(body))
        packet_id = r.packet_id()
        props = EMPTY_PROPERTIES
        allowed = SUBACK_CODES_V311
        if version >= V5:
            props, r.pos = parse_properties(r.buf, r.pos, r.end, ACK_PROPS)
            allowed = SUBACK_REASONS
        codes = tuple(r.buf[r.pos : r.end])
        if not codes or not allowed.issuperset(codes):
            raise MalformedPacket("SUBACK without valid return codes (§3.9.3)")
        return cls(packet_id, codes, props)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE (MQTT 5.0 §3.10, 3.1.1 §3.10); flags 0b0010 [MQTT-3.10.1-1]."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        if not self.topic_filters:
            raise ValueError("UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]")
        parts = [_packet_id_bytes(self.packet_id)]
        if version >= V5:
            parts.append(serialize_properties(self.properties))
        parts += (encode_string(f) for f in self.topic_filters)
        return frame(0xA2, b"".join(parts))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 2, "UNSUBSCRIBE")
        r = Reader(as_bytes(body))
        packet_id = r.packet_id()
        props = EMPTY_PROPERTIES
        if version >= V5:
            props, r.pos = parse_properties(r.buf, r.pos, r.end, UNSUBSCRIBE_PROPS)
        filters = []
        while r.remaining():
            filters.append(r.string())
        if not filters:
            raise ProtocolError("UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]")
        return cls(packet_id, tuple(filters), props)


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK (MQTT 5.0 §3.11; in 3.1.1 §3.11 just the packet identifier)."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        pid = _packet_id_bytes(self.packet_id)
        if version < V5:
            return b"\xb0\x02" + pid
        return frame(0xB0, pid + serialize_properties(self.properties) + bytes(self.reason_codes))

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, 0, "UNSUBACK")
        r = Reader(as_bytes(body))
        packet_id = r.packet_id()
        if version < V5:
            r.done()
            return cls(packet_id)
        props, r.pos = parse_properties(r.buf, r.pos, r.end, ACK_PROPS)
        codes = tuple(r.buf[r.pos : r.end])
        if not codes or not UNSUBACK_REASONS.issuperset(codes):
            raise MalformedPacket("UNSUBACK without valid reason codes (§3.11.3)")
        return cls(packet_id, codes, props)
