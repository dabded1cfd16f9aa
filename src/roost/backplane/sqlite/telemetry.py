"""The telemetry log and its consumer groups.

Appends are the hot path: every append of one writer batch goes into the same
few multi-row INSERTs (:func:`append_merged`). Payloads are bound as
``bytearray`` and a missing content type as '' because the sqlite3 module
passes those straight through, while ``bytes`` and ``None`` pay an adapter
lookup on every row (measured on a multi-row INSERT: +25 % rows/s from bytearray,
another +35 % from the empty string; bench/bench_mailbox.py prints the first).

A consumer group has a position (the last seq handed out) and leases: one row
per record handed out and not yet acked, with the fetch's ack token and a
deadline after which the record is handed out again.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any

from roost.backplane.sqlite import bulk
from roost.model import TelemetryBatch, TelemetryRecord

_INSERT = "INSERT INTO telemetry (device, path, payload, received_at, content_type)"
_COLS = "seq, device, path, payload, received_at, content_type"


def append_merged(
    conn: sqlite3.Connection, appends: list[Sequence[TelemetryRecord]]
) -> list[None]:
    """Insert the records of many appends at once and set their seqs, in order."""
    records = [r for batch in appends for r in batch]
    flat = [
        v
        for r in records
        for v in (r.device, r.path, bytearray(r.payload), r.received_at, r.content_type or "")
    ]
    seq = bulk.insert(conn, _INSERT, 5, flat) - len(records)
    for r in records:
        seq += 1
        r.seq = seq
    return [None] * len(appends)


def fetch(
    conn: sqlite3.Connection,
    group: str,
    max_records: int,
    ack_timeout: float,
    now: float,
    from_latest: bool,
) -> TelemetryBatch:
    """Redeliver records whose lease ran out, then lease new ones after the position."""
    if max_records <= 0:
        return TelemetryBatch([], None)
    token = secrets.token_urlsafe(16)
    deadline = now + ack_timeout
    records = _release_expired(conn, group, max_records, token, deadline, now)
    records += _lease_new(conn, group, max_records - len(records), token, deadline, from_latest)
    return TelemetryBatch(records, token if records else None)


def _release_expired(
    conn: sqlite3.Connection, group: str, limit: int, token: str, deadline: float, now: float
) -> list[TelemetryRecord]:
    seqs = [
        r[0]
        for r in conn.execute(
            "SELECT seq FROM telemetry_leases WHERE grp = ? AND deadline <= ? ORDER BY seq LIMIT ?",
            (group, now, limit),
        )
    ]
    if not seqs:
        return []
    conn.execute(
        "UPDATE telemetry_leases SET token = ?, deadline = ?"
        " WHERE grp = ? AND seq IN (SELECT value FROM json_each(?))",
        (token, deadline, group, json.dumps(seqs)),
    )
    return _records(conn, seqs)


def _lease_new(
    conn: sqlite3.Connection, group: str, limit: int, token: str, deadline: float,
    from_latest: bool,
) -> list[TelemetryRecord]:
    position = _position(conn, group, from_latest)
    if limit <= 0:
        return []
    rows = conn.execute(
        f"SELECT {_COLS} FROM telemetry WHERE seq > ? ORDER BY seq LIMIT ?", (position, limit)
    ).fetchall()
    if not rows:
        return []
    flat: list[Any] = []
    for r in rows:
        flat += (group, r[0], token, deadline)
    bulk.insert(conn, "INSERT INTO telemetry_leases (grp, seq, token, deadline)", 4, flat)
    conn.execute("UPDATE telemetry_groups SET position = ? WHERE grp = ?", (rows[-1][0], group))
    return [_record(r) for r in rows]


def _position(conn: sqlite3.Connection, group: str, from_latest: bool) -> int:
    """The group's position; a new group starts before the oldest record or after the newest."""
    row = conn.execute("SELECT position FROM telemetry_groups WHERE grp = ?", (group,)).fetchone()
    if row is not None:
        return int(row[0])
    start = "SELECT COALESCE(MAX(seq), 0) FROM telemetry" if from_latest else "SELECT 0"
    position = int(conn.execute(start).fetchone()[0])
    conn.execute("INSERT INTO telemetry_groups (grp, position) VALUES (?, ?)", (group, position))
    return position


def _records(conn: sqlite3.Connection, seqs: list[int]) -> list[TelemetryRecord]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM telemetry WHERE seq IN (SELECT value FROM json_each(?))"
        " ORDER BY seq",
        (json.dumps(seqs),),
    )
    return [_record(r) for r in rows]


def ack(conn: sqlite3.Connection, group: str, token: str) -> int:
    return conn.execute(
        "DELETE FROM telemetry_leases WHERE token = ? AND grp = ?", (token, group)
    ).rowcount


def trim(conn: sqlite3.Connection, before: float, keep_max: int) -> int:
    """Drop old records, and the leases on them.

    Records are appended in the order they are received, so those received
    before ``before`` are a prefix of the log: finding its end walks only the
    rows that go, where an index on received_at would cost every append. (A
    record stamped out of order waits for the ones before it.)
    """
    end = max(_first_received_since(conn, before), _first_of_newest(conn, keep_max))
    conn.execute("DELETE FROM telemetry_leases WHERE seq < ?", (end,))
    return conn.execute("DELETE FROM telemetry WHERE seq < ?", (end,)).rowcount


def _first_received_since(conn: sqlite3.Connection, before: float) -> int:
    row = conn.execute(
        "SELECT seq FROM telemetry WHERE received_at >= ? ORDER BY seq LIMIT 1", (before,)
    ).fetchone()
    return _after_newest(conn) if row is None else int(row[0])


def _first_of_newest(conn: sqlite3.Connection, keep_max: int) -> int:
    if keep_max <= 0:
        return _after_newest(conn)
    row = conn.execute(
        "SELECT seq FROM telemetry ORDER BY seq DESC LIMIT 1 OFFSET ?", (keep_max - 1,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _after_newest(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM telemetry").fetchone()[0])


def _record(row: Any) -> TelemetryRecord:
    return TelemetryRecord(
        seq=row[0],
        device=row[1],
        path=row[2],
        payload=row[3],
        received_at=row[4],
        content_type=row[5] or None,
    )
