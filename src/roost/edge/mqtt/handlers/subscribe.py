"""SUBSCRIBE / UNSUBSCRIBE: only within the device's own ``devices/{d}/`` (MQTT 5.0 §3.8, §3.10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.proto.mqtt.constants import ReasonCode
from roost.proto.mqtt.packets import Subscribe, Unsubscribe

if TYPE_CHECKING:
    from roost.edge.mqtt.protocol import MqttProtocol

REFUSED_V311 = 0x80


def subscribe(proto: MqttProtocol, packet: Subscribe) -> None:
    assert proto.link is not None  # the state machine admits SUBSCRIBE only once connected
    granted = proto.link.subscribe([(s.topic_filter, s.qos) for s in packet.subscriptions])
    refused = REFUSED_V311 if proto.conn.version != 5 else int(ReasonCode.NOT_AUTHORIZED)
    proto.conn.suback(packet.packet_id, [refused if g is None else g for g in granted])


def unsubscribe(proto: MqttProtocol, packet: Unsubscribe) -> None:
    assert proto.link is not None
    removed = proto.link.unsubscribe(list(packet.topic_filters))
    codes = [0 if r else int(ReasonCode.NO_SUBSCRIPTION_EXISTED) for r in removed]
    proto.conn.unsuback(packet.packet_id, codes)
