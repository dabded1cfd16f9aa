"""JSON forms of the domain objects the NATS backplane stores or sends as signals.

Compact (short keys left out when empty), with payloads in base64. Every
resource module uses these, so a record written by one node version reads on
another.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from roost.model import Outcome, OutcomeKind


def dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    return value


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def outcome_to_json(o: Outcome) -> bytes:
    return dumps({
        "id": o.id, "device": o.device, "kind": o.kind, "name": o.name,
        "outcome": o.outcome.value, "at": o.at, "group": o.group, "status": o.status,
        "payload": b64(o.payload), "reason": o.reason, "seq": o.seq,
        "content_type": o.content_type,
    })


def outcome_from_json(data: bytes, seq: int | None = None) -> Outcome:
    v = loads(data)
    return Outcome(
        id=v["id"], device=v.get("device"), kind=v["kind"], name=v["name"],
        outcome=OutcomeKind(v["outcome"]), at=v["at"], group=v.get("group"),
        status=v.get("status"), payload=unb64(v.get("payload")), reason=v.get("reason"),
        content_type=v.get("content_type"),
        seq=v.get("seq", 0) if seq is None else seq,
    )
