"""MQTT 3.1.1 and 5.0 without I/O: packets, codec, topics and connection state.

Public names are re-exported here; see the modules for the spec sections each
implements.
"""

from .codec import Decoder, encode_puback, encode_pubacks, encode_publish
from .connection import ConnState, MqttConnection
from .constants import (
    ConnackCodeV311,
    PacketType,
    PropertyId,
    ProtocolVersion,
    ReasonCode,
    connack_code_v311,
)
from .packets import (
    DISCONNECT_BYTES,
    PINGREQ_BYTES,
    PINGRESP_BYTES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
)
from .properties import EMPTY_PROPERTIES, Properties, parse_properties, serialize_properties
from .topics import split_shared, topic_matches, validate_topic_filter, validate_topic_name

__all__ = [
    "DISCONNECT_BYTES",
    "EMPTY_PROPERTIES",
    "PINGREQ_BYTES",
    "PINGRESP_BYTES",
    "Auth",
    "ConnState",
    "Connack",
    "ConnackCodeV311",
    "Connect",
    "Decoder",
    "Disconnect",
    "MqttConnection",
    "Packet",
    "PacketType",
    "Pingreq",
    "Pingresp",
    "Properties",
    "PropertyId",
    "ProtocolVersion",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "ReasonCode",
    "Suback",
    "Subscribe",
    "Subscription",
    "Unsuback",
    "Unsubscribe",
    "Will",
    "connack_code_v311",
    "encode_puback",
    "encode_pubacks",
    "encode_publish",
    "parse_properties",
    "serialize_properties",
    "split_shared",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]
