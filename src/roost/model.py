"""Roost's domain objects: plain dataclasses shared by the hub and the backplanes.

Times are Unix seconds as floats (``time.time()``). Payloads are ``bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from roost.errors import InvalidId

BROADCAST = "*"
"""The group every device belongs to: broadcast notifications are stored in its log."""

_ID_RE = re.compile(r"^[A-Za-z0-9._:@=~-][A-Za-z0-9._:@=~-]{0,127}$")


def check_id(value: str, what: str = "device id") -> str:
    """Return ``value`` if it is a valid device or group id, else raise :class:`InvalidId`.

    Ids are 1–128 characters of letters, digits and ``. _ : @ = ~ -``; in
    particular ``+``, ``#``, ``/``, ``$`` and whitespace are refused, because ids
    are MQTT topic levels (DESIGN.md, device-facing contract).
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidId(
            f"invalid {what} {value!r}: use 1-128 letters, digits or . _ : @ = ~ - "
            "('+', '#', '/', '$' and spaces are not allowed)"
        )
    return value


class MessageKind(StrEnum):
    """What a mailbox message is; decides the topic it is delivered on."""

    COMMAND = "command"  # devices/{d}/commands/{name}/{ref}
    NOTIFICATION = "notification"  # devices/{d}/notifications/{name}
    REPLY = "reply"  # devices/{d}/replies/{name}/{ref}  (end marker: props["end"] == "1")


class OutcomeKind(StrEnum):
    """The final outcome of a service-to-device message (feedback)."""

    DELIVERED = "delivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PURGED = "purged"


class InquiryState(StrEnum):
    PENDING = "pending"  # waiting for a service to take it
    TAKEN = "taken"  # leased by a service; comes back if not answered within the lease
    ANSWERING = "answering"  # at least one reply sent; a continuous inquiry stays here
    ENDED = "ended"  # final reply sent, cancelled by the device, or expired


@dataclass(slots=True)
class Device:
    id: str
    key_hash: str  # "sha256$<salt hex>$<digest hex>"; the key itself is never stored
    groups: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    created_at: float = 0.0
    last_seen: float | None = None


@dataclass(slots=True)
class ApiToken:
    id: str  # public id, e.g. "tok_3f2a..." (shown in lists; the secret is never stored)
    token_hash: str  # sha256 hex of the secret
    scopes: tuple[str, ...] = ("admin",)
    description: str = ""
    created_at: float = 0.0


@dataclass(slots=True)
class MailboxMessage:
    """A service-to-device message waiting in one device's mailbox or a group log.

    ``seq`` is assigned by the backplane on put (0 before), increasing per device
    mailbox (or per group log). ``group`` is set for group and broadcast messages.
    """

    id: str  # message id, returned to the sender; for commands the correlation id (cid)
    device: str  # target device ("" for group/broadcast messages)
    kind: MessageKind
    name: str  # command name, notification topic (may contain '/'), or inquiry name
    payload: bytes
    created_at: float
    expires_at: float
    ref: str = ""  # cid for commands, rid for replies
    content_type: str | None = None
    props: dict[str, str] = field(default_factory=dict)  # MQTT 5 user properties
    group: str | None = None
    seq: int = 0
    attempts: int = 0  # times it was sent to the device without an ack (DUP when > 0)


@dataclass(slots=True)
class TelemetryRecord:
    device: str
    path: str  # "" for devices/{d}/telemetry, else the part after "telemetry/"
    payload: bytes
    received_at: float
    content_type: str | None = None
    seq: int = 0  # assigned by the backplane on append


@dataclass(slots=True)
class TelemetryBatch:
    """What a consumer-group fetch returns: records and the token that acks them."""

    records: list[TelemetryRecord]
    ack: str | None  # None when records is empty


@dataclass(slots=True)
class Inquiry:
    id: str  # inquiry id (iid), made by the hub
    device: str
    name: str
    rid: str  # the device's own request id
    payload: bytes
    created_at: float
    expires_at: float
    content_type: str | None = None
    state: InquiryState = InquiryState.PENDING
    lease_until: float = 0.0


@dataclass(slots=True)
class Outcome:
    """Feedback: what became of a service-to-device message, or a command's response.

    ``seq`` is the feedback cursor, assigned by the backplane on put.
    A command response is recorded as ``kind="response"``, ``outcome=delivered``
    with ``status`` and ``payload`` set.
    """

    id: str
    device: str | None  # None for a group/broadcast message's expiry
    kind: str  # "command" | "notification" | "reply" | "response"
    name: str
    outcome: OutcomeKind
    at: float
    group: str | None = None
    status: int | None = None
    payload: bytes | None = None
    reason: str | None = None  # e.g. "mailbox_full", "unknown_device"
    content_type: str | None = None  # a response's, when the device gave one (MQTT 5)
    seq: int = 0


@dataclass(slots=True)
class Session:
    """The MQTT session state that outlives a connection (persistent sessions only)."""

    device: str
    subscriptions: dict[str, int]  # topic filter -> granted QoS
    expires_at: float | None  # None: never (3.1.1 clean_session=0)


@dataclass(slots=True)
class Presence:
    device: str
    connected: bool
    node: str | None
    since: float
    last_seen: float | None
