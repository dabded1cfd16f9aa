"""CONNECT: authenticate the device, take over its session, answer CONNACK.

MQTT 5.0 §3.1 / 3.1.1 §3.1. Client id = user name = device id, password =
device key (DESIGN.md, device-facing contract).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from roost.edge.mqtt.errors import reason_for
from roost.errors import BadAuthenticationMethod, BadCredentials, InvalidId, RoostError
from roost.model import check_id
from roost.proto.mqtt.constants import ReasonCode
from roost.proto.mqtt.packets import Connect
from roost.proto.mqtt.properties import Properties

if TYPE_CHECKING:
    from roost.edge.mqtt.protocol import MqttProtocol

log = logging.getLogger("roost.mqtt")

FOREVER = 0xFFFFFFFF


def session_expiry(packet: Connect) -> float | None:
    """Seconds the session outlives the connection; None = forever (§3.1.2.11.2)."""
    if packet.version != 5:
        return 0.0 if packet.clean_start else None  # 3.1.1 clean session flag
    interval = packet.properties.session_expiry_interval or 0
    return None if interval == FOREVER else float(interval)


def device_id_of(packet: Connect) -> str:
    """The device id: the client id, which the user name (if any) must repeat."""
    if packet.version == 5 and packet.properties.authentication_method is not None:
        # [MQTT-4.12.0-1] Roost authenticates with the password only.
        raise BadAuthenticationMethod(
            f"authentication method {packet.properties.authentication_method!r} not supported"
        )
    try:
        device_id = check_id(packet.client_id)
    except InvalidId:
        raise InvalidId(f"client id {packet.client_id!r} is not a valid device id") from None
    if packet.username is not None and packet.username != device_id:
        raise BadCredentials("user name must equal the client id (the device id)")
    return device_id


async def connect(proto: MqttProtocol, packet: Connect) -> None:
    hub = proto.listener.hub
    try:
        device_id = device_id_of(packet)
        link, present = await hub.links.open(
            device_id,
            packet.password,
            proto,
            clean=packet.clean_start,
            session_expiry=session_expiry(packet),
        )
    except RoostError as exc:
        log.info("refused CONNECT from %s (%r): %s", proto.peer, packet.client_id, exc)
        proto.conn.refuse(reason_for(exc))
        proto.close(int(ReasonCode.NOT_AUTHORIZED))
        return
    if proto.transport is None or proto.transport.is_closing():
        await hub.links.close(link)
        return
    proto.link = link
    proto.keepalive = float(packet.keep_alive)
    settings = hub.settings
    props = Properties(
        receive_maximum=settings.receive_maximum,
        maximum_packet_size=settings.max_packet_size,
        topic_alias_maximum=0,
        retain_available=0,
        maximum_qos=1,
        shared_subscription_available=0,
        subscription_identifier_available=0,
        wildcard_subscription_available=1,
    )
    proto.conn.accept(present, props if packet.version == 5 else None)
    proto.flush()
    await link.start_delivery()
