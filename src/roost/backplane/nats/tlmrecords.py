"""How a telemetry record is stored: one message in its partition's stream.

The payload is the message body as it is; path, content type and reception
time are ``Roost-*`` headers, percent-encoded so that no CR/LF or odd byte can
break the header block; the device is the last subject token. Shared by
``telemetry`` (append, trim) and ``tlmgroups`` (fetch).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from urllib.parse import quote, unquote

from roost.backplane.nats.context import Ctx
from roost.backplane.nats.names import untoken
from roost.model import TelemetryRecord

H_PATH, H_TYPE, H_AT, MSG_ID = "Roost-Path", "Roost-Type", "Roost-At", "Nats-Msg-Id"
# printable ASCII but '%' and ' ' passes the header block unchanged
_SAFE = "!\"#$&'()*+,/:;<=>?@[\\]^`{|}"


def stream(ctx: Ctx, part: int) -> str:
    return ctx.names.stream("tlm", part)


def partition_subject(ctx: Ctx, part: int) -> str:
    """The subject filter of every record of one partition."""
    return ctx.names.subject("tlm", part, "*")


def headers(record: TelemetryRecord, msg_id: str) -> dict[str, str]:
    out = {MSG_ID: msg_id, H_AT: repr(record.received_at)}
    if record.path:
        out[H_PATH] = quote(record.path, safe=_SAFE)
    if record.content_type:
        out[H_TYPE] = quote(record.content_type, safe=_SAFE)
    return out


def to_record(subject: str, data: bytes, hdrs: dict[str, str], seq: int) -> TelemetryRecord:
    """The record a stored message holds; ``seq`` is already the record's own seq."""
    content_type = hdrs.get(H_TYPE)
    return TelemetryRecord(
        device=untoken(subject.rsplit(".", 1)[-1]),
        path=unquote(hdrs.get(H_PATH, "")),
        payload=data,
        received_at=float(hdrs.get(H_AT, "0")),
        content_type=None if content_type is None else unquote(content_type),
        seq=seq,
    )


def received_at(hdrs: dict[str, str]) -> float:
    return float(hdrs.get(H_AT, "0"))


def merge(parts: Iterable[list[TelemetryRecord]]) -> list[TelemetryRecord]:
    """Partitions' records (each list in its own order) merged by reception time."""
    return list(heapq.merge(*parts, key=lambda r: r.received_at))


