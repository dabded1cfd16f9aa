"""JSON in and out: domain objects to JSON, and checked fields from JSON request bodies.

Out: payloads are base64 strings, times Unix seconds as floats, absent values
``null``. In: :class:`Fields` checks that a body is an object with only known
fields, each of the right JSON type, and names the field when one is not.
"""

from __future__ import annotations

import base64
from typing import Any

from roost.errors import InvalidInput
from roost.hub.views import DeviceView
from roost.model import ApiToken, Inquiry, MailboxMessage, Outcome, TelemetryRecord

JSON = dict[str, Any]


def b64(payload: bytes | None) -> str | None:
    return None if payload is None else base64.b64encode(payload).decode("ascii")


def device(view: DeviceView) -> JSON:
    d = view.device
    return {
        "id": d.id,
        "groups": list(d.groups),
        "metadata": d.metadata,
        "enabled": d.enabled,
        "created_at": d.created_at,
        "connected": view.connected,
        "last_seen": view.last_seen,
        "mailbox_depth": view.mailbox_depth,
    }


def mailbox_message(msg: MailboxMessage) -> JSON:
    return {
        "id": msg.id,
        "kind": str(msg.kind),
        "name": msg.name,
        "ref": msg.ref,
        "payload": b64(msg.payload),
        "content_type": msg.content_type,
        "created_at": msg.created_at,
        "expires_at": msg.expires_at,
        "group": msg.group,
        "attempts": msg.attempts,
    }


def telemetry_record(rec: TelemetryRecord) -> JSON:
    return {
        "seq": rec.seq,
        "device": rec.device,
        "path": rec.path,
        "payload": b64(rec.payload),
        "content_type": rec.content_type,
        "received_at": rec.received_at,
    }


def inquiry(inq: Inquiry, *, with_state: bool = False) -> JSON:
    body: JSON = {
        "id": inq.id,
        "device": inq.device,
        "name": inq.name,
        "rid": inq.rid,
        "payload": b64(inq.payload),
        "content_type": inq.content_type,
        "created_at": inq.created_at,
        "expires_at": inq.expires_at,
    }
    if with_state:
        body["state"] = str(inq.state)
    return body


def outcome(out: Outcome) -> JSON:
    body: JSON = {
        "seq": out.seq,
        "id": out.id,
        "device": out.device,
        "kind": out.kind,
        "name": out.name,
        "outcome": str(out.outcome),
        "at": out.at,
        "group": out.group,
        "status": out.status,
        "payload": b64(out.payload),
        "reason": out.reason,
    }
    if out.content_type is not None:  # a response's, only when the device gave one
        body["content_type"] = out.content_type
    return body


def token(tok: ApiToken) -> JSON:
    return {
        "id": tok.id,
        "scopes": list(tok.scopes),
        "description": tok.description,
        "created_at": tok.created_at,
    }


# --- request bodies ----------------------------------------------------------------


class Fields:
    """The fields of a JSON object body, each read with its expected type."""

    def __init__(self, body: Any, allowed: tuple[str, ...], what: str = "request body") -> None:
        if not isinstance(body, dict):
            raise InvalidInput(f"{what} must be a JSON object")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise InvalidInput(
                f"unknown field(s) in {what}: {', '.join(unknown)} (known: {', '.join(allowed)})"
            )
        self._body: dict[str, Any] = body
        self._what = what

    def has(self, name: str) -> bool:
        return self._body.get(name) is not None

    def _get(self, name: str, kind: type | tuple[type, ...], label: str, required: bool) -> Any:
        value = self._body.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"field {name!r} is required in {self._what}")
            return None
        # bool is an int in Python, but never a valid string, list or object here
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidInput(f"field {name!r} must be {label}")
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value: str | None = self._get(name, str, "a string", required)
        return value

    def boolean(self, name: str) -> bool | None:
        value: bool | None = self._get(name, bool, "true or false", False)
        return value

    def mapping(self, name: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._get(name, dict, "a JSON object", False)
        return value

    def strings(self, name: str, *, required: bool = False) -> list[str] | None:
        value: list[Any] | None = self._get(name, list, "a list of strings", required)
        if value is not None and not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"field {name!r} must be a list of strings")
        return value
