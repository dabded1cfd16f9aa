"""All MQTT packet classes, the :data:`Packet` union and the parser table.

The classes live in three modules by family (``packets_connect``,
``packets_publish``, ``packets_subscribe``); this module gathers them so
callers import from one place.
"""

from __future__ import annotations

from collections.abc import Callable

from .constants import PacketType
from .packets_connect import (
    DISCONNECT_BYTES,
    PINGREQ_BYTES,
    PINGRESP_BYTES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    Will,
)
from .packets_publish import Puback, Pubcomp, Publish, Pubrec, Pubrel
from .packets_subscribe import Suback, Subscribe, Subscription, Unsuback, Unsubscribe

Packet = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)

Parser = Callable[[int, bytes, int], Packet]

# Indexed by packet type; 0 is reserved (MQTT 5.0 §2.1.2).
PARSERS: tuple[Parser | None, ...] = (
    None,
    Connect.parse,
    Connack.parse,
    Publish.parse,
    Puback.parse,
    Pubrec.parse,
    Pubrel.parse,
    Pubcomp.parse,
    Subscribe.parse,
    Suback.parse,
    Unsubscribe.parse,
    Unsuback.parse,
    Pingreq.parse,
    Pingresp.parse,
    Disconnect.parse,
    Auth.parse,
)

PACKET_TYPE: dict[type[Packet], PacketType] = {
    Connect: PacketType.CONNECT,
    Connack: PacketType.CONNACK,
    Publish: PacketType.PUBLISH,
    Puback: PacketType.PUBACK,
    Pubrec: PacketType.PUBREC,
    Pubrel: PacketType.PUBREL,
    Pubcomp: PacketType.PUBCOMP,
    Subscribe: PacketType.SUBSCRIBE,
    Suback: PacketType.SUBACK,
    Unsubscribe: PacketType.UNSUBSCRIBE,
    Unsuback: PacketType.UNSUBACK,
    Pingreq: PacketType.PINGREQ,
    Pingresp: PacketType.PINGRESP,
    Disconnect: PacketType.DISCONNECT,
    Auth: PacketType.AUTH,
}

__all__ = [
    "DISCONNECT_BYTES",
    "PACKET_TYPE",
    "PARSERS",
    "PINGREQ_BYTES",
    "PINGRESP_BYTES",
    "Auth",
    "Connack",
    "Connect",
    "Disconnect",
    "Packet",
    "Pingreq",
    "Pingresp",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "Suback",
    "Subscribe",
    "Subscription",
    "Unsuback",
    "Unsubscribe",
    "Will",
]
