"""MQTT 5.0 properties (MQTT 5.0 §2.2.2).

A :class:`Properties` value holds every property a packet may carry; each
packet type allows only some of them (§2.2.2.2, Table 2-4), and the parser is
given that set. The parser returns the shared :data:`EMPTY_PROPERTIES` for a
zero property length, which is what nearly every PUBLISH and acknowledgement
carries, so the hot path builds no object at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roost.errors import MalformedPacket, ProtocolError

from .constants import PropertyId as P
from .wire import (
    MAX_UINT16,
    MAX_UINT32,
    decode_binary,
    decode_string,
    decode_vbi,
    encode_binary,
    encode_string,
    encode_vbi,
)


@dataclass(frozen=True, slots=True, repr=False)
class Properties:
    """The properties of one packet or of a Will (MQTT 5.0 §2.2.2.2, §3.1.3.2).

    ``None`` means absent. The two properties that may repeat are tuples:
    User Property pairs in order (§3.1.2.11.8) and Subscription Identifiers
    (§3.3.2.3.8).
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __repr__(self) -> str:
        # Only the properties present: a full repr is 27 fields of None.
        shown = (
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if getattr(self, name) not in (None, ())
        )
        return f"Properties({', '.join(shown)})"


EMPTY_PROPERTIES = Properties()
EMPTY_PROPERTIES_BYTES = b"\x00"


def is_empty(props: Properties) -> bool:
    """True for no properties at all; cheap for the shared EMPTY_PROPERTIES."""
    return props is EMPTY_PROPERTIES or props == EMPTY_PROPERTIES


# Data types of §2.2.2.2 Table 2-4.
_BYTE, _U16, _U32, _VBI, _STR, _BIN, _PAIR = range(7)

_SPEC: dict[int, tuple[str, int]] = {
    P.PAYLOAD_FORMAT_INDICATOR: ("payload_format_indicator", _BYTE),
    P.MESSAGE_EXPIRY_INTERVAL: ("message_expiry_interval", _U32),
    P.CONTENT_TYPE: ("content_type", _STR),
    P.RESPONSE_TOPIC: ("response_topic", _STR),
    P.CORRELATION_DATA: ("correlation_data", _BIN),
    P.SUBSCRIPTION_IDENTIFIER: ("subscription_identifiers", _VBI),
    P.SESSION_EXPIRY_INTERVAL: ("session_expiry_interval", _U32),
    P.ASSIGNED_CLIENT_IDENTIFIER: ("assigned_client_identifier", _STR),
    P.SERVER_KEEP_ALIVE: ("server_keep_alive", _U16),
    P.AUTHENTICATION_METHOD: ("authentication_method", _STR),
    P.AUTHENTICATION_DATA: ("authentication_data", _BIN),
    P.REQUEST_PROBLEM_INFORMATION: ("request_problem_information", _BYTE),
    P.WILL_DELAY_INTERVAL: ("will_delay_interval", _U32),
    P.REQUEST_RESPONSE_INFORMATION: ("request_response_information", _BYTE),
    P.RESPONSE_INFORMATION: ("response_information", _STR),
    P.SERVER_REFERENCE: ("server_reference", _STR),
    P.REASON_STRING: ("reason_string", _STR),
    P.RECEIVE_MAXIMUM: ("receive_maximum", _U16),
    P.TOPIC_ALIAS_MAXIMUM: ("topic_alias_maximum", _U16),
    P.TOPIC_ALIAS: ("topic_alias", _U16),
    P.MAXIMUM_QOS: ("maximum_qos", _BYTE),
    P.RETAIN_AVAILABLE: ("retain_available", _BYTE),
    P.USER_PROPERTY: ("user_properties", _PAIR),
    P.MAXIMUM_PACKET_SIZE: ("maximum_packet_size", _U32),
    P.WILDCARD_SUBSCRIPTION_AVAILABLE: ("wildcard_subscription_available", _BYTE),
    P.SUBSCRIPTION_IDENTIFIER_AVAILABLE: ("subscription_identifier_available", _BYTE),
    P.SHARED_SUBSCRIPTION_AVAILABLE: ("shared_subscription_available", _BYTE),
}
# Serialization order: by identifier, so output is deterministic.
_ORDER = sorted((pid, name, kind) for pid, (name, kind) in _SPEC.items())

# Properties whose value 0 is a Protocol Error: Receive Maximum (§3.1.2.11.3),
# Maximum Packet Size (§3.1.2.11.4), Topic Alias [MQTT-3.3.2-8] and
# Subscription Identifier (§3.3.2.3.8).
_ZERO_INVALID = frozenset(
    {P.RECEIVE_MAXIMUM, P.MAXIMUM_PACKET_SIZE, P.TOPIC_ALIAS, P.SUBSCRIPTION_IDENTIFIER}
)

# Properties each packet may carry (§2.2.2.2 Table 2-4). Any other identifier
# in that packet is a Malformed Packet.
_REASON_USER = frozenset({P.REASON_STRING, P.USER_PROPERTY})
CONNECT_PROPS = frozenset(
    {
        P.SESSION_EXPIRY_INTERVAL,
        P.RECEIVE_MAXIMUM,
        P.MAXIMUM_PACKET_SIZE,
        P.TOPIC_ALIAS_MAXIMUM,
        P.REQUEST_RESPONSE_INFORMATION,
        P.REQUEST_PROBLEM_INFORMATION,
        P.USER_PROPERTY,
        P.AUTHENTICATION_METHOD,
        P.AUTHENTICATION_DATA,
    }
)
WILL_PROPS = frozenset(
    {
        P.WILL_DELAY_INTERVAL,
        P.PAYLOAD_FORMAT_INDICATOR,
        P.MESSAGE_EXPIRY_INTERVAL,
        P.CONTENT_TYPE,
        P.RESPONSE_TOPIC,
        P.CORRELATION_DATA,
        P.USER_PROPERTY,
    }
)
CONNACK_PROPS = frozenset(
    {
        P.SESSION_EXPIRY_INTERVAL,
        P.RECEIVE_MAXIMUM,
        P.MAXIMUM_QOS,
        P.RETAIN_AVAILABLE,
        P.MAXIMUM_PACKET_SIZE,
        P.ASSIGNED_CLIENT_IDENTIFIER,
        P.TOPIC_ALIAS_MAXIMUM,
        P.REASON_STRING,
        P.USER_PROPERTY,
        P.WILDCARD_SUBSCRIPTION_AVAILABLE,
        P.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        P.SHARED_SUBSCRIPTION_AVAILABLE,
        P.SERVER_KEEP_ALIVE,
        P.RESPONSE_INFORMATION,
        P.SERVER_REFERENCE,
        P.AUTHENTICATION_METHOD,
        P.AUTHENTICATION_DATA,
    }
)
PUBLISH_PROPS = frozenset(
    {
        P.PAYLOAD_FORMAT_INDICATOR,
        P.MESSAGE_EXPIRY_INTERVAL,
        P.TOPIC_ALIAS,
        P.RESPONSE_TOPIC,
        P.CORRELATION_DATA,
        P.USER_PROPERTY,
        P.SUBSCRIPTION_IDENTIFIER,
        P.CONTENT_TYPE,
    }
)
ACK_PROPS = _REASON_USER  # PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
SUBSCRIBE_PROPS = frozenset({P.SUBSCRIPTION_IDENTIFIER, P.USER_PROPERTY})
UNSUBSCRIBE_PROPS = frozenset({P.USER_PROPERTY})
DISCONNECT_PROPS = _REASON_USER | {P.SESSION_EXPIRY_INTERVAL, P.SERVER_REFERENCE}
AUTH_PROPS = _REASON_USER | {P.AUTHENTICATION_METHOD, P.AUTHENTICATION_DATA}


def parse_properties(
    buf: bytes,
    offset: int,
    end: int | None = None,
    allowed: frozenset[int] | None = None,
) -> tuple[Properties, int]:
    """Read a property length and the properties after it (MQTT 5.0 §2.2.2).

    ``end`` bounds the packet (default: the end of ``buf``); ``allowed`` is the
    set of identifiers the packet may carry (default: any). Returns the
    properties and the offset after them. An unknown or disallowed identifier
    or a truncated value is a Malformed Packet (§2.2.2.2); a repeated
    single-valued property or an out-of-range value is a Protocol Error.
    """
    if end is None:
        end = len(buf)
    if offset >= end:
        raise MalformedPacket("missing property length")
    length = buf[offset]
    if length == 0:
        return EMPTY_PROPERTIES, offset + 1
    if length < 0x80:
        pos = offset + 1
    else:
        length, pos = decode_vbi(buf, offset, end)
    stop = pos + length
    if stop > end:
        raise MalformedPacket("properties run past the end of the packet")
    values: dict[str, Any] = {}
    users: list[tuple[str, str]] = []
    sub_ids: list[int] = []
    while pos < stop:
        pid = buf[pos]
        spec = _SPEC.get(pid)
        if spec is None or (allowed is not None and pid not in allowed):
            raise MalformedPacket(f"property 0x{pid:02x} not valid here (§2.2.2.2)")
        name, kind = spec
        value: Any
        pos += 1
        if kind == _STR:
            value, pos = decode_string(buf, pos, stop)
        elif kind == _PAIR:
            key, pos = decode_string(buf, pos, stop)
            val, pos = decode_string(buf, pos, stop)
            users.append((key, val))
            continue
        elif kind == _BIN:
            value, pos = decode_binary(buf, pos, stop)
        elif kind == _VBI:
            value, pos = decode_vbi(buf, pos, stop)
            if value == 0:
                raise ProtocolError("subscription identifier 0 (§3.3.2.3.8)")
            sub_ids.append(value)
            continue
        else:
            size = 1 if kind == _BYTE else 2 if kind == _U16 else 4
            if pos + size > stop:
                raise MalformedPacket(f"truncated property 0x{pid:02x}")
            value = int.from_bytes(buf[pos : pos + size], "big")
            pos += size
            if kind == _BYTE and value > 1:
                raise ProtocolError(f"property 0x{pid:02x} must be 0 or 1")
            if value == 0 and pid in _ZERO_INVALID:
                raise ProtocolError(f"property 0x{pid:02x} must not be 0")
        if name in values:
            raise ProtocolError(f"property 0x{pid:02x} included more than once")
        values[name] = value
    return (
        Properties(user_properties=tuple(users), subscription_identifiers=tuple(sub_ids), **values),
        stop,
    )


def _encode_int(value: int, size: int) -> bytes:
    limit = (0xFF, MAX_UINT16, 0, MAX_UINT32)[size - 1]
    if not 0 <= value <= limit:
        raise ValueError(f"property value {value} does not fit in {size} byte(s)")
    return value.to_bytes(size, "big")


def serialize_properties(props: Properties) -> bytes:
    """Encode properties with their length prefix (MQTT 5.0 §2.2.2.1)."""
    if is_empty(props):
        return EMPTY_PROPERTIES_BYTES
    parts: list[bytes] = []
    for pid, name, kind in _ORDER:
        value = getattr(props, name)
        if kind == _PAIR:
            for key, val in value:
                parts.append(b"\x26" + encode_string(key) + encode_string(val))
            continue
        if kind == _VBI:
            for sub_id in value:
                if sub_id == 0:
                    raise ValueError("subscription identifier 0")
                parts.append(b"\x0b" + encode_vbi(sub_id))
            continue
        if value is None:
            continue
        head = bytes((pid,))
        if kind == _STR:
            parts.append(head + encode_string(value))
        elif kind == _BIN:
            parts.append(head + encode_binary(value))
        else:
            size = 1 if kind == _BYTE else 2 if kind == _U16 else 4
            parts.append(head + _encode_int(value, size))
    body = b"".join(parts)
    return encode_vbi(len(body)) + body
