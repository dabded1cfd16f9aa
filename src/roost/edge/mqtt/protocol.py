"""One MQTT connection: feed bytes to the sans-I/O state machine, act on its packets.

Packets that need no I/O (PUBACK, PINGREQ, SUBSCRIBE, ...) are handled inline.
A read that carries CONNECT or PUBLISH pauses reading, is handled in one task
(all telemetry of the read is stored in one durable write), and its replies
go out in one ``transport.write``; then reading resumes. Pausing keeps
replies in order and pushes back on a device that sends faster than the
store commits, so a busy connection's reads (and batches) simply grow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from roost.edge.mqtt import handlers
from roost.edge.mqtt.delivery import publish_properties
from roost.edge.mqtt.errors import kick_reason, reason_for
from roost.errors import PayloadTooLarge, ProtocolError, RoostError
from roost.hub.link import DeviceLink
from roost.model import MailboxMessage
from roost.proto.mqtt.connection import ConnState, MqttConnection
from roost.proto.mqtt.packets import Connect, Packet, Puback, Publish, Subscribe, Unsubscribe

if TYPE_CHECKING:
    from roost.edge.mqtt.listener import MqttListener

log = logging.getLogger("roost.mqtt")


class MqttProtocol(asyncio.Protocol):
    __slots__ = (
        "listener",
        "transport",
        "conn",
        "link",
        "last_rx",
        "opened_at",
        "keepalive",
        "_busy",
        "_flush_scheduled",
        "_closing",
        "peer",
    )

    def __init__(self, listener: MqttListener) -> None:
        settings = listener.hub.settings
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.conn = MqttConnection(
            max_packet_size=settings.max_packet_size, receive_maximum=settings.receive_maximum
        )
        self.link: DeviceLink | None = None
        self.last_rx = self.opened_at = time.monotonic()
        self.keepalive = 0.0
        self._busy = False
        self._flush_scheduled = False
        self._closing = False
        self.peer = ""

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but has its API.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.listener.connections.discard(self)
        if self.link is not None:
            self.listener.hub.links.spawn(self.listener.hub.links.close(self.link))

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        if self._closing:
            return
        try:
            packets = self.conn.receive_data(data)
        except ProtocolError as exc:
            self.fail(exc)
            return
        if any(type(p) is Publish or type(p) is Connect for p in packets):
            self._busy = True
            assert self.transport is not None
            self.transport.pause_reading()
            task = asyncio.ensure_future(self._handle_async(packets))
            task.add_done_callback(_report_crash)
        else:
            self._handle_sync(packets)
            self.flush()

    # --- dispatch ------------------------------------------------------------------------

    def _handle_sync(self, packets: list[Packet]) -> None:
        for packet in packets:
            if type(packet) is Puback:
                self._on_puback(packet)
            elif type(packet) is Subscribe:
                handlers.subscribe(self, packet)
            elif type(packet) is Unsubscribe:
                handlers.unsubscribe(self, packet)
            else:
                handlers.other(self, packet)

    async def _handle_async(self, packets: list[Packet]) -> None:
        try:
            i = 0
            while i < len(packets) and not self._closing:
                packet = packets[i]
                if type(packet) is Connect:
                    await handlers.connect(self, packet)
                    i += 1
                elif type(packet) is Publish:
                    i = await handlers.publishes(self, packets, i)
                else:
                    self._handle_sync([packet])
                    i += 1
        except RoostError as exc:
            self.fail(exc)
        except Exception:
            log.exception("unexpected error on connection from %s", self.peer)
            self.fail(RoostError("internal error"))
        finally:
            self._busy = False
            self.flush()
            if not self._closing and self.transport is not None:
                self.transport.resume_reading()

    def _on_puback(self, packet: Puback) -> None:
        msg = self.conn.take_acked(packet.packet_id)
        if isinstance(msg, MailboxMessage) and self.link is not None:
            self.link.acked(msg)

    # --- output ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write whatever the state machine has queued, in one write."""
        self._flush_scheduled = False
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _schedule_flush(self) -> None:
        # Deliveries made in one loop turn leave in one write.
        if not self._flush_scheduled and not self._busy:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def fail(self, exc: BaseException) -> None:
        """Close after a protocol or policy error, telling an MQTT 5 client why."""
        if self._closing:
            return
        log.info("closing connection from %s: %s", self.peer, exc)
        self.close(reason_for(exc))

    def close_quietly(self) -> None:
        """The client said DISCONNECT: close without sending anything back."""
        self._closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def close(self, reason: int) -> None:
        if self._closing:
            return
        self._closing = True
        if self.conn.state is not ConnState.CLOSED:
            # Connected: DISCONNECT (MQTT 5); CONNECT read but not answered: a refusing CONNACK.
            self.conn.disconnect(reason)
        self.flush()
        if self.transport is not None:
            self.transport.close()

    # --- DeviceSink (what the hub calls) -------------------------------------------------

    def free_slots(self) -> int:
        if self._closing:
            return 0
        window = min(self.listener.hub.settings.max_inflight, self.conn.client_receive_maximum)
        return window - self.conn.inflight_count

    def deliver(self, msg: MailboxMessage, topic: str, qos: int) -> None:
        v5 = self.conn.version == 5
        if msg.props.get("end") == "1" and not v5:
            topic += "/end"  # MQTT 3.1.1 has no user properties: the end is its own topic
        props = publish_properties(msg, self.link.device if self.link else "") if v5 else None
        try:
            self.conn.publish(
                topic, msg.payload, qos, properties=props, dup=msg.attempts > 0, tag=msg
            )
        except PayloadTooLarge:
            # Larger than the client's Maximum Packet Size: MQTT 5 §3.1.2.11.4 says
            # to discard it as if delivered, so it cannot block the mailbox forever.
            log.warning("message %s too large for %s's maximum packet size", msg.id, topic)
            if self.link is not None:
                self.link.acked(msg)
            return
        self._schedule_flush()

    def kick(self, reason: str) -> None:
        log.info("closing %s: %s", self.link.device if self.link else self.peer, reason)
        self.close(kick_reason(reason))


def _report_crash(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("connection handler crashed", exc_info=task.exception())
