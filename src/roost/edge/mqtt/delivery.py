"""Mailbox message → MQTT 5 PUBLISH properties (DESIGN.md, "MQTT 5 extras")."""

from __future__ import annotations

import time

from roost.hub.topics import response_topic
from roost.model import MailboxMessage, MessageKind
from roost.proto.mqtt.properties import Properties


def publish_properties(msg: MailboxMessage, device: str) -> Properties:
    """Message Expiry Interval = remaining TTL, Content Type, User Properties;
    commands also carry Response Topic and Correlation Data (the command id)."""
    remaining = max(1, int(msg.expires_at - time.time()))
    command = msg.kind is MessageKind.COMMAND
    return Properties(
        message_expiry_interval=remaining,
        content_type=msg.content_type,
        user_properties=tuple(msg.props.items()),
        response_topic=response_topic(device, msg.ref) if command else None,
        correlation_data=msg.ref.encode() if command else None,
    )
