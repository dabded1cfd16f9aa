"""The server side of one MQTT connection, without I/O (MQTT 5.0 §3, §4).

The asyncio layer feeds :meth:`MqttConnection.receive_data` with what it
read, acts on the packets it gets back, calls the reply methods
(:meth:`~MqttConnection.accept`, :meth:`~MqttConnection.puback`, …) and writes
:meth:`~MqttConnection.data_to_send` to the socket.

Packet order is checked against a table, ``(state, packet class) -> handler``;
a packet not in the table for the current state is a Protocol Error. States:

``AWAIT_CONNECT`` -CONNECT-> ``CONNECTING`` -accept()-> ``CONNECTED``;
refuse(), disconnect() or a client DISCONNECT -> ``CLOSED``.

QoS 2, decided here: Roost's hub speaks QoS 0 and 1. To a 5.0 client it
advertises Maximum QoS 1 in CONNACK, and a QoS 2 PUBLISH (or Will) from that
client raises ProtocolError with ``mqtt_reason`` 0x9B, QoS not supported
[MQTT-3.2.2-12] (§3.2.2.3.4). A 3.1.1 client cannot be told, so this class
completes the PUBREC/PUBREL/PUBCOMP handshake for it (MQTT 3.1.1 §4.3.3, method
B): the message is returned once, ``puback()`` answers it with PUBREC, and a
resent PUBLISH with the same packet identifier before the PUBREL is not
returned again. Outbound messages are QoS 0 or 1 only.

Errors are raised, never sent: the caller answers any ProtocolError with
``disconnect(err.mqtt_reason)``, which picks the right packet for the state
(a CONNACK before the connection is accepted, a 5.0 DISCONNECT after).
Misuse of the API by the caller raises RuntimeError or ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from enum import Enum, auto
from typing import Any

from roost.errors import PayloadTooLarge, ProtocolError

from .codec import Decoder, encode_puback, encode_pubacks, encode_publish
from .constants import CONNACK_REASONS, DISCONNECT_REASONS, ReasonCode, connack_code_v311
from .flow import MAX_PACKET_ID, InboundFlow, OutboundWindow, protocol_error
from .packets import (
    PINGRESP_BYTES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
)
from .properties import EMPTY_PROPERTIES, Properties

V5 = 5


class ConnState(Enum):
    AWAIT_CONNECT = auto()
    CONNECTING = auto()  # CONNECT received; the caller has not accepted or refused yet
    CONNECTED = auto()
    CLOSED = auto()


class MqttConnection:
    """Server-side MQTT 3.1.1 / 5.0 connection state machine."""

    def __init__(
        self,
        max_packet_size: int = 256 * 1024,
        connect_max_size: int = 64 * 1024,
        receive_maximum: int = 100,
    ) -> None:
        if not 0 < receive_maximum <= MAX_PACKET_ID:
            raise ValueError("receive maximum must be 1..65535")
        self.state = ConnState.AWAIT_CONNECT
        self._handlers = _TABLE[self.state]
        self.max_packet_size = max_packet_size
        self.receive_maximum = receive_maximum
        self.client_receive_maximum = MAX_PACKET_ID
        self.client_max_packet_size: int | None = None
        self.connect: Connect | None = None
        # Until CONNECT is accepted the limit is small: no large allocations
        # for a client that has not authenticated yet.
        self._decoder = Decoder(connect_max_size)
        self._out = bytearray()
        self._held = bytearray()  # replies queued before CONNACK [MQTT-3.2.0-1]
        self._window = OutboundWindow()
        self._inbound = InboundFlow(receive_maximum)
        self._server_props = EMPTY_PROPERTIES

    @property
    def version(self) -> int | None:
        """Protocol level of the client's CONNECT (4 or 5), None before it."""
        return self._decoder.version

    # --- input --------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Packet]:
        """Decode ``data`` and check each packet against the state table.

        Returns the packets for the caller to act on, in order. Data after the
        connection is closed is ignored.
        """
        handlers = self._handlers
        if not handlers:
            return []
        out: list[Packet] = []
        for packet in self._decoder.feed(data):
            handler = handlers.get(type(packet))
            if handler is None:
                raise ProtocolError(f"{type(packet).__name__} in state {self.state.name}")
            result = handler(self, packet)
            if result is not None:
                out.append(result)
            if self._handlers is not handlers:  # the packet changed the state
                handlers = self._handlers
                if not handlers:
                    break
        return out

    def _enter(self, state: ConnState) -> None:
        self.state = state
        self._handlers = _TABLE[state]

    def _on_connect(self, packet: Connect) -> Packet:
        if packet.version < V5:
            if not packet.client_id and not packet.clean_start:
                raise protocol_error(
                    "empty client id without clean session [MQTT-3.1.3-8]",
                    ReasonCode.CLIENT_IDENTIFIER_NOT_VALID,
                )
            self._inbound.max_qos = 2
        else:
            self._inbound.enforce_receive_maximum = True
            if packet.will is not None and packet.will.qos > self._inbound.max_qos:
                raise protocol_error(
                    "will QoS 2 is not supported [MQTT-3.2.2-12]", ReasonCode.QOS_NOT_SUPPORTED
                )
            props = packet.properties
            if props.receive_maximum is not None:
                self.client_receive_maximum = self._window.limit = props.receive_maximum
            self.client_max_packet_size = props.maximum_packet_size
        self.connect = packet
        self._enter(ConnState.CONNECTING)
        return packet

    def _on_second_connect(self, packet: Connect) -> Packet:
        raise ProtocolError("second CONNECT [MQTT-3.1.0-2]")

    def _on_publish(self, packet: Publish) -> Packet | None:
        result = self._inbound.receive(packet)
        if result is None:  # a 3.1.1 QoS 2 resend: answer again if already answered
            packet_id = packet.packet_id or 0
            if self._inbound.pubrec_sent(packet_id):
                self._write(Pubrec(packet_id).serialize(4))
        return result

    def _on_puback(self, packet: Puback) -> Packet:
        # An unknown packet identifier is ignored (3.1.1 §4.3.2, 5.0 §4.3.2).
        self._window.ack(packet.packet_id)
        return packet

    def _on_pubrel(self, packet: Pubrel) -> Packet:
        known = self._inbound.release(packet.packet_id)
        reason = 0 if known or self.version != V5 else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
        self._write(Pubcomp(packet.packet_id, reason).serialize(self.version or 4))
        return packet

    def _on_subscribe(self, packet: Subscribe) -> Packet:
        props = self._server_props
        sub_ids = packet.properties.subscription_identifiers
        if props.subscription_identifier_available == 0 and sub_ids:
            raise protocol_error(
                "subscription identifiers are not available (§3.2.2.3.12)",
                ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            )
        for sub in packet.subscriptions:
            topic_filter = sub.topic_filter
            if props.wildcard_subscription_available == 0 and (
                "+" in topic_filter or "#" in topic_filter
            ):
                raise protocol_error(
                    "wildcard subscriptions are not available (§3.2.2.3.11)",
                    ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                )
            if props.shared_subscription_available == 0 and topic_filter.startswith("$share/"):
                raise protocol_error(
                    "shared subscriptions are not available (§3.2.2.3.13)",
                    ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
                )
        return packet

    def _on_pingreq(self, packet: Pingreq) -> Packet:
        self._write(PINGRESP_BYTES)
        return packet

    def _on_disconnect(self, packet: Disconnect) -> Packet:
        expiry = packet.properties.session_expiry_interval
        assert self.connect is not None
        if expiry and not self.connect.properties.session_expiry_interval:
            raise ProtocolError("session expiry set at DISCONNECT but 0 at CONNECT [MQTT-3.14.2-2]")
        self._enter(ConnState.CLOSED)
        return packet

    def _on_auth(self, packet: Auth) -> Packet:
        assert self.connect is not None
        if self.connect.properties.authentication_method is None:
            raise ProtocolError("AUTH without an authentication method in CONNECT (§4.12)")
        return packet

    def _on_passthrough(self, packet: Packet) -> Packet:
        return packet

    # --- output -------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Take everything queued for the socket."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def _write(self, data: bytes) -> None:
        state = self.state
        if state is ConnState.CONNECTED:
            self._out += data
        elif state is ConnState.CONNECTING:
            self._held += data

    def send(self, packet: Packet) -> None:
        """Queue any packet, e.g. an AUTH; the common replies have their own methods."""
        if self.version is None:
            raise RuntimeError("no CONNECT yet")
        self._write(packet.serialize(self.version))

    def accept(self, session_present: bool, properties: Properties | None = None) -> None:
        """Send a success CONNACK and start the session (MQTT 5.0 §3.2).

        For 5.0, Receive Maximum and Maximum Packet Size come from this
        connection's settings; Maximum QoS defaults to 1 and Retain Available
        to 0; Wildcard/Shared Subscription Available, Subscription Identifier
        Available and Topic Alias Maximum are taken from ``properties`` and
        enforced on later packets.
        """
        if self.state is not ConnState.CONNECTING:
            raise RuntimeError(f"accept() in state {self.state.name}")
        assert self.connect is not None
        if session_present and self.connect.clean_start:
            raise ValueError("session present with clean start [MQTT-3.2.2-2]")
        version = self.version or 4
        props = EMPTY_PROPERTIES
        if version >= V5:
            props = properties or EMPTY_PROPERTIES
            props = replace(
                props,
                maximum_qos=1 if props.maximum_qos is None else props.maximum_qos,
                retain_available=props.retain_available or 0,
                receive_maximum=(
                    None if self.receive_maximum == MAX_PACKET_ID else self.receive_maximum
                ),
                maximum_packet_size=self.max_packet_size,
            )
            inbound = self._inbound
            inbound.max_qos = props.maximum_qos or 0
            inbound.retain_available = bool(props.retain_available)
            inbound.topic_alias_maximum = props.topic_alias_maximum or 0
            self._server_props = props
        self._out += Connack(session_present, 0, props).serialize(version)
        self._out += self._held
        self._held.clear()
        self._decoder.max_packet_size = self.max_packet_size
        self._enter(ConnState.CONNECTED)

    def refuse(self, reason: int) -> None:
        """Send a failure CONNACK and close (MQTT 5.0 §3.2.2.2, 3.1.1 §3.2.2.3).

        For 3.1.1, or when the version is unknown because the CONNECT was
        refused for its version, the reason is mapped with ``connack_code_v311``.
        """
        if self.state not in (ConnState.AWAIT_CONNECT, ConnState.CONNECTING):
            raise RuntimeError(f"refuse() in state {self.state.name}")
        if reason < 0x80:
            raise ValueError(f"refusal with success reason code 0x{reason:02x}")
        if self.version == V5:
            code = reason if reason in CONNACK_REASONS else ReasonCode.UNSPECIFIED_ERROR
            self._out += Connack(False, code).serialize(V5)
        else:
            self._out += Connack(False, connack_code_v311(reason)).serialize(4)
        self._held.clear()
        self._enter(ConnState.CLOSED)

    def disconnect(self, reason: int) -> None:
        """Close the connection, telling the client why if the protocol can.

        After CONNACK: a 5.0 DISCONNECT with ``reason`` (0x80 if the reason is
        not a DISCONNECT reason, §3.14.2.1); nothing for 3.1.1. Before it: a
        refusing CONNACK if the CONNECT was decoded (even if then rejected,
        e.g. [MQTT-3.1.3-8]) or was refused for its version [MQTT-3.1.2-2];
        nothing for a malformed CONNECT. Idempotent.
        """
        state = self.state
        if state is ConnState.CLOSED:
            return
        if state is ConnState.CONNECTED:
            if self.version == V5:
                code = reason if reason in DISCONNECT_REASONS else ReasonCode.UNSPECIFIED_ERROR
                self._out += Disconnect(code).serialize(V5)
        elif self.version is not None or reason == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
            self.refuse(reason if reason >= 0x80 else ReasonCode.UNSPECIFIED_ERROR)
        self._held.clear()
        self._enter(ConnState.CLOSED)

    # --- outbound QoS 1 -------------------------------------------------------

    @property
    def inflight_count(self) -> int:
        """Outbound QoS 1 messages sent and not yet acknowledged."""
        return len(self._window)

    def can_publish(self) -> bool:
        """Whether a QoS 1 message may be sent now (client's Receive Maximum, §4.9)."""
        return self._window.has_room()

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        *,
        properties: Properties | None = None,
        dup: bool = False,
        retain: bool = False,
        tag: object = None,
    ) -> int | None:
        """Queue a PUBLISH; for QoS 1 allocate a packet identifier and remember ``tag``.

        Returns the packet identifier (None for QoS 0). A packet larger than
        the client's Maximum Packet Size raises PayloadTooLarge and is not
        sent; the caller then treats the message as delivered
        [MQTT-3.1.2-25].
        """
        if self.state not in (ConnState.CONNECTED, ConnState.CONNECTING):
            raise RuntimeError(f"publish() in state {self.state.name}")
        version = self.version or 4
        if qos == 0:
            data = encode_publish(
                topic, payload, 0, None, version, retain=retain, properties=properties
            )
            self._check_size(data)
            self._write(data)
            return None
        if qos != 1:
            raise ValueError("Roost sends QoS 0 and 1 only")
        window = self._window
        packet_id = window.next_id()
        data = encode_publish(
            topic, payload, 1, packet_id, version, dup=dup, retain=retain, properties=properties
        )
        self._check_size(data)
        window.add(packet_id, tag)
        self._write(data)
        return packet_id

    def _check_size(self, data: bytes) -> None:
        limit = self.client_max_packet_size
        if limit is not None and len(data) > limit:
            raise PayloadTooLarge(f"PUBLISH of {len(data)} bytes over the client's {limit}")

    def take_acked(self, packet_id: int) -> object | None:
        """The tag of an outbound message the client acknowledged, removed."""
        return self._window.take_acked(packet_id)

    def inflight_tags(self) -> list[object]:
        """Tags of outbound QoS 1 messages not acknowledged yet, in send order."""
        return self._window.tags()

    # --- acknowledgements -----------------------------------------------------

    def puback(self, packet_id: int, reason: int = 0) -> None:
        """Acknowledge an inbound QoS 1 PUBLISH (QoS 2 on 3.1.1: PUBREC)."""
        if self._inbound.ack(packet_id):
            self._write(Pubrec(packet_id).serialize(4))
            return
        self._write(encode_puback(packet_id, self.version or 4, reason))

    def pubacks(self, packet_ids: Iterable[int]) -> None:
        """Acknowledge many inbound messages with one buffer append."""
        ids = list(packet_ids)
        if self._inbound.has_qos2():
            for packet_id in ids:
                self.puback(packet_id)
            return
        self._inbound.ack_many(ids)
        self._write(encode_pubacks(ids, self.version or 4))

    def suback(self, packet_id: int, codes: list[int]) -> None:
        """Answer a SUBSCRIBE, one code per filter (3.1.1 failure codes become 0x80)."""
        self._write(Suback(packet_id, tuple(codes)).serialize(self.version or 4))

    def unsuback(self, packet_id: int, codes: list[int]) -> None:
        """Answer an UNSUBSCRIBE (3.1.1 UNSUBACK carries no codes)."""
        self._write(Unsuback(packet_id, tuple(codes)).serialize(self.version or 4))


_Handler = Callable[[MqttConnection, Any], Packet | None]
_OPEN: dict[type, _Handler] = {
    Connect: MqttConnection._on_second_connect,
    Publish: MqttConnection._on_publish,
    Puback: MqttConnection._on_puback,
    Pubrel: MqttConnection._on_pubrel,
    Subscribe: MqttConnection._on_subscribe,
    Unsubscribe: MqttConnection._on_passthrough,
    Pingreq: MqttConnection._on_pingreq,
    Disconnect: MqttConnection._on_disconnect,
    Auth: MqttConnection._on_auth,
}
# (state, packet class) -> handler, stored per state so the per-packet lookup
# hashes only the class. PUBREC/PUBCOMP never arrive (Roost sends no QoS 2),
# nor do the server's own packet types; CLOSED accepts nothing.
_TABLE: dict[ConnState, dict[type, _Handler]] = {
    ConnState.AWAIT_CONNECT: {Connect: MqttConnection._on_connect},
    ConnState.CONNECTING: _OPEN,
    ConnState.CONNECTED: dict(_OPEN),  # its own object: receive_data sees state changes by identity
    ConnState.CLOSED: {},
}
