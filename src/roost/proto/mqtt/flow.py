"""Per-direction bookkeeping of PUBLISH flows (MQTT 5.0 §4.3, §4.9, §3.3.2.3.4).

:class:`InboundFlow` checks each PUBLISH from the client against what the
server advertised (Maximum QoS, Retain Available, Topic Alias Maximum, Receive
Maximum), resolves topic aliases, and tracks unacknowledged packet
identifiers. :class:`OutboundWindow` allocates packet identifiers for QoS 1
messages to the client and keeps the caller's tag for each until its PUBACK.
"""

from __future__ import annotations

from dataclasses import replace

from roost.errors import ProtocolError, ReceiveMaximumExceeded, RetainNotSupported

from .constants import ReasonCode
from .packets_publish import Publish
from .properties import EMPTY_PROPERTIES, is_empty

MAX_PACKET_ID = 0xFFFF
_MISSING = object()


def protocol_error(message: str, reason: int) -> ProtocolError:
    """A ProtocolError carrying a more precise MQTT reason code than 0x82."""
    error = ProtocolError(message)
    error.mqtt_reason = reason
    return error


class InboundFlow:
    """PUBLISH packets from the client: checks, topic aliases, unacknowledged ids.

    ``receive_maximum`` is enforced only when ``enforce_receive_maximum`` is
    set (5.0; 3.1.1 has no flow control). QoS 2 (``max_qos`` 2, for 3.1.1
    clients only) follows 3.1.1 §4.3.3 method B: the packet identifier is kept
    from the PUBLISH to the PUBREL, and a resend in between is not delivered.
    """

    __slots__ = (
        "receive_maximum",
        "enforce_receive_maximum",
        "max_qos",
        "retain_available",
        "topic_alias_maximum",
        "_unacked",
        "_qos2",
        "_aliases",
    )

    def __init__(self, receive_maximum: int) -> None:
        self.receive_maximum = receive_maximum
        self.enforce_receive_maximum = False
        self.max_qos = 1
        self.retain_available = True
        self.topic_alias_maximum = 0
        self._unacked: set[int] = set()  # QoS 1 ids not acknowledged yet
        self._qos2: dict[int, bool] = {}  # QoS 2 id -> PUBREC sent
        self._aliases: dict[int, str] = {}

    def receive(self, packet: Publish) -> Publish | None:
        """Check and record a PUBLISH; None for a QoS 2 resend already delivered."""
        props = packet.properties
        if props is not EMPTY_PROPERTIES:
            if props.subscription_identifiers:
                raise ProtocolError("subscription identifier from a client [MQTT-3.3.4-6]")
            if props.topic_alias is not None:
                packet = self._resolve_alias(packet, props.topic_alias)
        qos = packet.qos
        if qos > self.max_qos:
            raise protocol_error(
                f"QoS {qos} is not supported (§3.2.2.3.4)", ReasonCode.QOS_NOT_SUPPORTED
            )
        if packet.retain and not self.retain_available:
            raise RetainNotSupported("retain is not available (§3.2.2.3.5)")
        packet_id = packet.packet_id
        if packet_id is None:
            return packet
        if qos == 2:
            if packet_id in self._qos2:
                return None
            self._qos2[packet_id] = False
            return packet
        unacked = self._unacked
        if packet_id not in unacked:
            if len(unacked) >= self.receive_maximum and self.enforce_receive_maximum:
                raise ReceiveMaximumExceeded(
                    f"more than {self.receive_maximum} unacknowledged QoS 1 messages [MQTT-3.3.4-9]"
                )
            unacked.add(packet_id)
        return packet

    def _resolve_alias(self, packet: Publish, alias: int) -> Publish:
        """Apply a Topic Alias and strip it from the properties (MQTT 5.0 §3.3.2.3.4)."""
        if alias > self.topic_alias_maximum:
            raise protocol_error(
                "topic alias above the maximum [MQTT-3.3.2-9]", ReasonCode.TOPIC_ALIAS_INVALID
            )
        topic = packet.topic
        if topic:
            self._aliases[alias] = topic
        else:
            topic = self._aliases.get(alias, "")
            if not topic:
                raise protocol_error(
                    "unknown topic alias (§3.3.2.3.4)", ReasonCode.TOPIC_ALIAS_INVALID
                )
        props = replace(packet.properties, topic_alias=None)
        if is_empty(props):
            props = EMPTY_PROPERTIES
        return replace(packet, topic=topic, properties=props)

    def pubrec_sent(self, packet_id: int) -> bool:
        """Whether a QoS 2 message was answered with PUBREC (so a resend gets one again)."""
        return self._qos2.get(packet_id, False)

    def has_qos2(self) -> bool:
        return bool(self._qos2)

    def ack(self, packet_id: int) -> bool:
        """The caller handled a message; True if it was QoS 2 (answer PUBREC, not PUBACK)."""
        if packet_id in self._qos2:
            self._qos2[packet_id] = True
            return True
        self._unacked.discard(packet_id)
        return False

    def ack_many(self, packet_ids: list[int]) -> None:
        """QoS 1 acknowledgements in bulk (only when no QoS 2 message is pending)."""
        self._unacked.difference_update(packet_ids)

    def release(self, packet_id: int) -> bool:
        """PUBREL arrived; False if the packet identifier was unknown (§4.3.3)."""
        return self._qos2.pop(packet_id, None) is not None

    def unacked(self) -> int:
        return len(self._unacked)


class OutboundWindow:
    """Packet identifiers and tags of unacknowledged outbound QoS 1 PUBLISHes.

    Identifiers go round-robin from 1 to 65535, skipping the ones in flight
    [MQTT-2.2.1-3]; the window is bounded by the client's Receive Maximum
    (§3.1.2.11.3).
    """

    __slots__ = ("limit", "_inflight", "_acked", "_next_id")

    def __init__(self, limit: int = MAX_PACKET_ID) -> None:
        self.limit = limit
        self._inflight: dict[int, object] = {}  # packet id -> tag, in send order
        self._acked: dict[int, object] = {}
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._inflight)

    def has_room(self) -> bool:
        return len(self._inflight) < self.limit

    def next_id(self) -> int:
        """The identifier :meth:`add` will use next; does not reserve it."""
        if len(self._inflight) >= min(self.limit, MAX_PACKET_ID):
            raise RuntimeError("outbound window full; check can_publish()")
        packet_id = self._next_id
        inflight = self._inflight
        while packet_id in inflight:
            packet_id = packet_id % MAX_PACKET_ID + 1
        return packet_id

    def add(self, packet_id: int, tag: object) -> None:
        self._inflight[packet_id] = tag
        self._next_id = packet_id % MAX_PACKET_ID + 1

    def ack(self, packet_id: int) -> bool:
        """Complete a message; False for an identifier not in flight (ignored)."""
        tag = self._inflight.pop(packet_id, _MISSING)
        if tag is _MISSING:
            return False
        self._acked[packet_id] = tag
        return True

    def take_acked(self, packet_id: int) -> object | None:
        return self._acked.pop(packet_id, None)

    def tags(self) -> list[object]:
        return list(self._inflight.values())
