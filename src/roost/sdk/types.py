"""What the SDK returns: small frozen dataclasses read from the API's JSON.

Payloads are ``bytes`` again (the API sends base64) and times are Unix seconds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any


def unb64(value: Any) -> bytes:
    return b"" if value is None else base64.b64decode(value)


def maybe_b64(value: Any) -> bytes | None:
    return None if value is None else base64.b64decode(value)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    groups: tuple[str, ...]
    metadata: dict[str, Any]
    enabled: bool
    created_at: float
    connected: bool
    last_seen: float | None
    mailbox_depth: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DeviceInfo:
        return cls(
            id=d["id"],
            groups=tuple(d["groups"]),
            metadata=dict(d["metadata"]),
            enabled=d["enabled"],
            created_at=d["created_at"],
            connected=d["connected"],
            last_seen=d["last_seen"],
            mailbox_depth=d["mailbox_depth"],
        )


@dataclass(frozen=True, slots=True)
class DevicePage:
    devices: list[DeviceInfo]
    next: str | None  # pass as ``after`` for the next page; None after the last


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    skipped: int
    keys: list[tuple[str, str]]  # (device id, key) of each device created

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImportResult:
        keys = [(k["id"], k["key"]) for k in d["keys"]]
        return cls(created=d["created"], skipped=d["skipped"], keys=keys)


@dataclass(frozen=True, slots=True)
class CommandResponse:
    id: str  # the command id (cid)
    status: int | None  # None when the command was only queued (no ``wait``)
    payload: bytes | None
    content_type: str | None = None  # the response's, if the device gave one (MQTT 5)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message waiting in a device's mailbox (or unread in one of its groups)."""

    id: str
    kind: str  # "command" | "notification" | "reply"
    name: str
    ref: str
    payload: bytes
    content_type: str | None
    created_at: float
    expires_at: float
    group: str | None
    attempts: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> QueuedMessage:
        return cls(
            id=d["id"],
            kind=d["kind"],
            name=d["name"],
            ref=d["ref"],
            payload=unb64(d["payload"]),
            content_type=d["content_type"],
            created_at=d["created_at"],
            expires_at=d["expires_at"],
            group=d["group"],
            attempts=d["attempts"],
        )


@dataclass(frozen=True, slots=True)
class Record:
    """One telemetry record."""

    seq: int
    device: str
    path: str
    payload: bytes
    content_type: str | None
    received_at: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        return cls(
            seq=d["seq"],
            device=d["device"],
            path=d["path"],
            payload=unb64(d["payload"]),
            content_type=d["content_type"],
            received_at=d["received_at"],
        )


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    records: list[Record]
    ack: str | None  # settles these records; None when there are none


@dataclass(frozen=True, slots=True)
class Inquiry:
    id: str
    device: str
    name: str
    rid: str
    payload: bytes
    content_type: str | None
    created_at: float
    expires_at: float
    state: str | None = None  # only from ``Service.inquiry(id)``

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Inquiry:
        return cls(
            id=d["id"],
            device=d["device"],
            name=d["name"],
            rid=d["rid"],
            payload=unb64(d["payload"]),
            content_type=d["content_type"],
            created_at=d["created_at"],
            expires_at=d["expires_at"],
            state=d.get("state"),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a message: delivered, expired, rejected or purged (or a response)."""

    seq: int  # the feedback cursor
    id: str
    device: str | None
    kind: str
    name: str
    outcome: str
    at: float
    group: str | None
    status: int | None
    payload: bytes | None
    reason: str | None
    content_type: str | None = None  # a response's, if the device gave one (MQTT 5)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Outcome:
        return cls(
            seq=d["seq"],
            id=d["id"],
            device=d["device"],
            kind=d["kind"],
            name=d["name"],
            outcome=d["outcome"],
            at=d["at"],
            group=d["group"],
            status=d["status"],
            payload=maybe_b64(d["payload"]),
            reason=d["reason"],
            content_type=d.get("content_type"),
        )


@dataclass(frozen=True, slots=True)
class FeedbackPage:
    outcomes: list[Outcome]
    next: int  # pass as ``after`` to read on


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    scopes: tuple[str, ...]
    description: str
    created_at: float

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TokenInfo:
        return cls(d["id"], tuple(d["scopes"]), d["description"], d["created_at"])


@dataclass(frozen=True, slots=True)
class NewToken:
    id: str
    token: str  # the secret, shown this once
    scopes: tuple[str, ...]
