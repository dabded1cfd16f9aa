"""PINGREQ, DISCONNECT, AUTH and the rest (MQTT 5.0 §3.12–3.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.proto.mqtt.packets import Disconnect, Pingreq

if TYPE_CHECKING:
    from roost.edge.mqtt.protocol import MqttProtocol


def other(proto: MqttProtocol, packet: object) -> None:
    if type(packet) is Pingreq:
        return  # the state machine already queued PINGRESP
    if type(packet) is Disconnect:
        # A normal DISCONNECT: close without a will (Roost keeps no wills).
        proto._closing = True
        if proto.transport is not None:
            proto.transport.close()
        return
    # PUBREL/PUBREC/PUBCOMP/AUTH: the state machine answered or rejected them already.
