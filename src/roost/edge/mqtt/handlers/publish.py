"""PUBLISH from a device (MQTT 5.0 §3.3, 3.1.1 §3.3).

Consecutive telemetry publishes of one read become one durable write, and
their PUBACKs are queued only after it returns [MQTT-4.6.0-2 keeps them in
order]. Other publishes (responses, inquiries, cancels) go one by one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from roost.edge.mqtt.errors import reason_for
from roost.errors import Forbidden, RetainNotSupported, RoostError, Unavailable
from roost.model import TelemetryRecord
from roost.proto.mqtt.packets import Packet, Publish

if TYPE_CHECKING:
    from roost.edge.mqtt.protocol import MqttProtocol
    from roost.hub.link import DeviceLink

log = logging.getLogger("roost.mqtt")


async def publishes(proto: MqttProtocol, packets: list[Packet], start: int) -> int:
    """Handle the run of PUBLISH packets at ``packets[start:]``; return the next index."""
    link = proto.link
    assert link is not None  # the state machine admits PUBLISH only once connected
    v5 = proto.conn.version == 5
    end = start
    records: list[TelemetryRecord] = []
    acks: list[int] = []
    now = time.time()
    while end < len(packets):
        packet = packets[end]
        if type(packet) is not Publish:
            break
        if packet.retain and v5:
            raise RetainNotSupported("retained messages are not supported")
        path = link.telemetry_path(packet.topic)
        if path is None:
            break
        ct = packet.properties.content_type if v5 else None
        records.append(TelemetryRecord(link.device, path, packet.payload, now, ct))
        if packet.qos:
            acks.append(packet.packet_id or 0)
        end += 1
    if records:
        await link.telemetry(records)  # durable before any PUBACK goes out
        proto.conn.pubacks(acks)
        return end
    packet = packets[end]
    assert type(packet) is Publish  # the caller starts us on a PUBLISH
    await _one(proto, link, packet)
    return end + 1


async def _one(proto: MqttProtocol, link: DeviceLink, packet: Publish) -> None:
    v5 = proto.conn.version == 5
    props = packet.properties
    try:
        await link.publish(
            packet.topic,
            packet.payload,
            content_type=props.content_type if v5 else None,
            props=dict(props.user_properties) if v5 else None,
            ttl=props.message_expiry_interval if v5 else None,
        )
    except (Forbidden, Unavailable):
        raise  # close the connection: the device must not go on, or must retry elsewhere
    except RoostError as exc:
        log.info("device %s: publish to %r refused: %s", link.device, packet.topic, exc)
        if packet.qos:
            proto.conn.puback(packet.packet_id or 0, reason_for(exc) if v5 else 0)
        return
    if packet.qos:
        proto.conn.puback(packet.packet_id or 0)
