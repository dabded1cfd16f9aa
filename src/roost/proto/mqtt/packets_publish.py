"""PUBLISH and its acknowledgements: PUBACK, PUBREC, PUBREL, PUBCOMP.

MQTT 5.0 §3.3–§3.7, 3.1.1 §3.3–§3.7. PUBLISH is Roost's hot path in both
directions, so besides the packet classes this module has
:func:`parse_publish`, which reads a PUBLISH straight out of the decoder's
read buffer without slicing the body first, and :func:`encode_publish`,
:func:`encode_puback` and :func:`encode_pubacks`, which write the common
packets without building packet objects.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from roost.errors import MalformedPacket, ProtocolError, TopicNameInvalid

from .constants import PUBACK_REASONS, PUBREL_REASONS
from .packets_connect import Body, check_flags, check_reason
from .properties import (
    ACK_PROPS,
    EMPTY_PROPERTIES,
    PUBLISH_PROPS,
    Properties,
    is_empty,
    parse_properties,
    serialize_properties,
)
from .topics import validate_topic_name
from .wire import MAX_UINT16, MAX_VBI, as_bytes, encode_vbi, frame

V5 = 5
_PUBACK = struct.Struct(">HH")  # 0x4002, packet id: the whole packet in one pack


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH (MQTT 5.0 §3.3, 3.1.1 §3.3).

    ``packet_id`` is present exactly when ``qos`` > 0 (§3.3.2.2). In 5.0 the
    topic may be empty when a Topic Alias property stands for it
    (§3.3.2.3.4); resolving the alias is the connection's job.
    """

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = EMPTY_PROPERTIES

    def serialize(self, version: int) -> bytes:
        if self.topic or version < V5 or self.properties.topic_alias is None:
            validate_topic_name(self.topic)
        return encode_publish(
            self.topic,
            self.payload,
            self.qos,
            self.packet_id,
            version,
            dup=self.dup,
            retain=self.retain,
            properties=self.properties,
        )

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Publish:
        buf = as_bytes(body)
        return parse_publish(flags, buf, 0, len(buf), version)


class _PublishLayout:
    """The slot layout of :class:`Publish` without its frozen ``__setattr__``.

    A frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, which costs more than all of PUBLISH parsing. The
    decoder builds this plain twin and then retypes it as a Publish, which
    CPython allows for classes with identical slots (and refuses loudly,
    with TypeError, if the two ever drift apart). The result is an ordinary,
    immutable Publish.
    """

    __slots__ = Publish.__slots__

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        dup: bool,
        packet_id: int | None,
        properties: Properties,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packet_id = packet_id
        self.properties = properties


def _new_publish(
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties,
) -> Publish:
    packet = _PublishLayout(topic, payload, qos, retain, dup, packet_id, properties)
    packet.__class__ = Publish  # type: ignore[assignment]
    return packet  # type: ignore[return-value]


def parse_publish(flags: int, buf: bytes, pos: int, end: int, version: int) -> Publish:
    """Parse the PUBLISH occupying ``buf[pos:end]`` (MQTT 5.0 §3.3.1–§3.3.3).

    Checks QoS 3 [MQTT-3.3.1-4], DUP on QoS 0 [MQTT-3.3.1-2], string
    well-formedness [MQTT-1.5.4-1/2], wildcards in the topic [MQTT-3.3.2-2],
    an empty topic without a Topic Alias [MQTT-4.7.3-1] (§3.3.2.3.4) and a zero
    packet identifier [MQTT-2.2.1-3].
    """
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    dup = flags & 8 != 0
    if dup and not qos:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
    start = pos + 2
    if start > end:
        raise MalformedPacket("PUBLISH ends before its topic")
    pos = start + ((buf[pos] << 8) | buf[pos + 1])
    if pos > end:
        raise MalformedPacket("PUBLISH topic runs past the end of the packet")
    try:
        topic = buf[start:pos].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("topic is not well-formed UTF-8 [MQTT-1.5.4-1]") from None
    if "\x00" in topic:
        raise MalformedPacket("topic contains U+0000 [MQTT-1.5.4-2]")
    if "+" in topic or "#" in topic:
        raise TopicNameInvalid("wildcard in PUBLISH topic [MQTT-3.3.2-2]")
    packet_id = None
    if qos:
        if pos + 2 > end:
            raise MalformedPacket("PUBLISH ends before its packet identifier")
        packet_id = (buf[pos] << 8) | buf[pos + 1]
        if not packet_id:
            raise ProtocolError("packet identifier 0 [MQTT-2.2.1-3]")
        pos += 2
    props = EMPTY_PROPERTIES
    if version >= V5:
        if pos >= end:
            raise MalformedPacket("PUBLISH ends before its property length")
        if buf[pos]:
            props, pos = parse_properties(buf, pos, end, PUBLISH_PROPS)
            if not topic and props.topic_alias is None:
                raise ProtocolError("empty topic without a topic alias (§3.3.2.3.4)")
        else:
            pos += 1
            if not topic:
                raise ProtocolError("empty topic without a topic alias (§3.3.2.3.4)")
    elif not topic:
        raise TopicNameInvalid("empty topic name [MQTT-4.7.3-1]")
    return _new_publish(topic, buf[pos:end], qos, flags & 1 == 1, dup, packet_id, props)


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    packet_id: int | None,
    version: int,
    *,
    dup: bool = False,
    retain: bool = False,
    properties: Properties | None = None,
) -> bytes:
    """Encode a PUBLISH without building a packet object (MQTT 5.0 §3.3).

    The outbound fast path: the topic is trusted to be valid (the hub
    validated it on the way in, see ``validate_topic_name``); only values that
    would corrupt the framing are checked, and raise ``ValueError``.
    """
    data = topic.encode()
    size = len(data)
    if size > MAX_UINT16:
        raise ValueError("topic longer than 65535 bytes")
    head = size.to_bytes(2, "big") + data
    if qos:
        if qos > 2 or qos < 0:
            raise ValueError(f"QoS {qos}")
        if packet_id is None or not 0 < packet_id <= MAX_UINT16:
            raise ValueError(f"packet identifier {packet_id} for QoS {qos}")
        head += packet_id.to_bytes(2, "big")
    elif dup or packet_id is not None:
        raise ValueError("QoS 0 PUBLISH with DUP or a packet identifier [MQTT-3.3.1-2]")
    if version >= V5:
        head += b"\x00" if properties is None else serialize_properties(properties)
    size = len(head) + len(payload)
    first = 0x30 | (dup << 3) | (qos << 1) | retain
    if size < 128:
        return b"".join((bytes((first, size)), head, payload))
    if size > MAX_VBI:
        raise ValueError("PUBLISH larger than 256 MB")
    return b"".join((bytes((first,)), encode_vbi(size), head, payload))


def encode_puback(packet_id: int, version: int, reason: int = 0) -> bytes:
    """Encode a PUBACK (MQTT 5.0 §3.4).

    A success PUBACK is the same four bytes in both versions (the 5.0 reason
    code may be omitted when it is 0, §3.4.2.1); 3.1.1 cannot carry ``reason``.
    """
    if not 0 < packet_id <= MAX_UINT16:
        raise ValueError(f"packet identifier {packet_id}")
    if reason and version >= V5:
        return _PUBACK.pack(0x4003, packet_id) + bytes((reason,))
    return _PUBACK.pack(0x4002, packet_id)


def encode_pubacks(packet_ids: Iterable[int], version: int) -> bytes:
    """Encode success PUBACKs for many packet identifiers as one ``bytes`` (§3.4)."""
    words = [0x4002_0000 | pid for pid in packet_ids]
    if words and (min(words) <= 0x4002_0000 or max(words) > 0x4002_FFFF):
        raise ValueError("packet identifier out of range 1..65535")
    return struct.pack(f">{len(words)}I", *words)


@dataclass(frozen=True, slots=True)
class _Ack:
    """Shared layout of PUBACK, PUBREC, PUBREL and PUBCOMP (MQTT 5.0 §3.4.2).

    In 3.1.1 these packets are just the packet identifier. In 5.0 the reason
    code and property length may be left out: remaining length 2 means reason
    0, 3 means no properties (§3.4.2.1).
    """

    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES

    FIRST_BYTE: ClassVar[int] = 0x40
    REASONS: ClassVar[frozenset[int]] = PUBACK_REASONS
    NAME: ClassVar[str] = "PUBACK"

    def serialize(self, version: int) -> bytes:
        first = self.FIRST_BYTE
        if not 0 < self.packet_id <= MAX_UINT16:
            raise ValueError(f"packet identifier {self.packet_id}")
        pid = self.packet_id.to_bytes(2, "big")
        empty = is_empty(self.properties)
        if version < V5 or (self.reason_code == 0 and empty):
            return bytes((first, 2)) + pid
        if empty:
            return bytes((first, 3)) + pid + bytes((self.reason_code,))
        body = pid + bytes((self.reason_code,)) + serialize_properties(self.properties)
        return frame(first, body)

    @classmethod
    def parse(cls, flags: int, body: Body, version: int) -> Self:
        check_flags(flags, cls.FIRST_BYTE & 0x0F, cls.NAME)
        buf = as_bytes(body)
        size = len(buf)
        if size < 2:
            raise MalformedPacket(f"{cls.NAME} shorter than a packet identifier")
        packet_id = (buf[0] << 8) | buf[1]
        if not packet_id:
            raise ProtocolError("packet identifier 0 [MQTT-2.2.1-3]")
        if size == 2:
            return cls(packet_id)
        if version < V5:
            raise MalformedPacket(f"3.1.1 {cls.NAME} longer than 2 bytes")
        code = check_reason(buf[2], cls.REASONS, cls.NAME)
        if size == 3:
            return cls(packet_id, code)
        props, pos = parse_properties(buf, 3, size, ACK_PROPS)
        if pos != size:
            raise MalformedPacket(f"unexpected bytes at the end of {cls.NAME}")
        return cls(packet_id, code, props)


@dataclass(frozen=True, slots=True)
class Puback(_Ack):
    """PUBACK (MQTT 5.0 §3.4, 3.1.1 §3.4)."""


@dataclass(frozen=True, slots=True)
class Pubrec(_Ack):
    """PUBREC (MQTT 5.0 §3.5, 3.1.1 §3.5)."""

    FIRST_BYTE: ClassVar[int] = 0x50
    NAME: ClassVar[str] = "PUBREC"


@dataclass(frozen=True, slots=True)
class Pubrel(_Ack):
    """PUBREL (MQTT 5.0 §3.6); its fixed-header flags are 0b0010 [MQTT-3.6.1-1]."""

    FIRST_BYTE: ClassVar[int] = 0x62
    REASONS: ClassVar[frozenset[int]] = PUBREL_REASONS
    NAME: ClassVar[str] = "PUBREL"


@dataclass(frozen=True, slots=True)
class Pubcomp(_Ack):
    """PUBCOMP (MQTT 5.0 §3.7, 3.1.1 §3.7)."""

    FIRST_BYTE: ClassVar[int] = 0x70
    REASONS: ClassVar[frozenset[int]] = PUBREL_REASONS
    NAME: ClassVar[str] = "PUBCOMP"
