"""PINGREQ, DISCONNECT, AUTH and the rest (MQTT 5.0 §3.12–3.15)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from roost.edge.mqtt.handlers.connect import FOREVER
from roost.errors import ProtocolError
from roost.proto.mqtt.packets import Disconnect, Pingreq

if TYPE_CHECKING:
    from roost.edge.mqtt.protocol import MqttProtocol


def disconnect(proto: MqttProtocol, packet: Disconnect) -> None:
    """The client leaves; MQTT 5 may change the session expiry on the way (§3.14.2.2.2)."""
    expiry = packet.properties.session_expiry_interval
    link = proto.link
    if expiry is not None and link is not None:
        if link.session_expiry == 0 and expiry != 0:
            # [MQTT-3.14.2-2] a session that was to end with the connection cannot be revived.
            proto.fail(ProtocolError("non-zero Session Expiry Interval after a zero one"))
            return
        link.persistent = expiry != 0
        link.session_expiry = None if expiry == FOREVER else float(expiry)
    proto.close_quietly()


def other(proto: MqttProtocol, packet: object) -> None:
    if type(packet) is Pingreq:
        return  # the state machine already queued PINGRESP
    if type(packet) is Disconnect:
        disconnect(proto, packet)
        return
    # PUBREL/PUBREC/PUBCOMP/AUTH: the state machine answered or rejected them already.
