"""Inquiries: device requests waiting for (or being answered by) a service handler.

A taken inquiry is leased: if its taker does not answer before ``lease_until``
it can be taken again. Pending inquiries have ``lease_until = 0``, so one
condition, ``lease_until <= now``, finds both the pending and the lapsed ones.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from roost.errors import AlreadyExists
from roost.model import Inquiry, InquiryState

# Ended inquiries stay readable this long after they expire (so that a late
# reply finds "ended", not "unknown"), then expire() deletes them.
RETENTION = 3600.0

_COLS = "id, device, name, rid, payload, created_at, expires_at, content_type, state, lease_until"
_OPEN = (InquiryState.PENDING.value, InquiryState.TAKEN.value)


def inquiry_put(conn: sqlite3.Connection, inquiry: Inquiry) -> None:
    try:
        conn.execute(
            f"INSERT INTO inquiries ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (inquiry.id, inquiry.device, inquiry.name, inquiry.rid, bytearray(inquiry.payload),
             inquiry.created_at, inquiry.expires_at, inquiry.content_type,
             InquiryState.PENDING.value),
        )
    except sqlite3.IntegrityError as exc:
        raise AlreadyExists(f"inquiry {inquiry.id!r} already exists") from exc


def inquiry_take(
    conn: sqlite3.Connection, max_items: int, lease: float, now: float
) -> list[Inquiry]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM inquiries WHERE state IN (?, ?) AND lease_until <= ?"
        " AND expires_at > ? ORDER BY created_at, id LIMIT ?",
        (*_OPEN, now, now, max_items),
    ).fetchall()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    until = now + lease
    conn.execute(
        "UPDATE inquiries SET state = ?, lease_until = ?"
        " WHERE id IN (SELECT value FROM json_each(?))",
        (InquiryState.TAKEN.value, until, json.dumps(ids)),
    )
    taken = [_inquiry(r) for r in rows]
    for inquiry in taken:
        inquiry.state, inquiry.lease_until = InquiryState.TAKEN, until
    return taken


def inquiry_get(conn: sqlite3.Connection, inquiry_id: str) -> Inquiry | None:
    row = conn.execute(f"SELECT {_COLS} FROM inquiries WHERE id = ?", (inquiry_id,)).fetchone()
    return None if row is None else _inquiry(row)


def inquiry_find(conn: sqlite3.Connection, device_id: str, name: str, rid: str) -> Inquiry | None:
    row = conn.execute(
        f"SELECT {_COLS} FROM inquiries WHERE device = ? AND name = ? AND rid = ?"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (device_id, name, rid),
    ).fetchone()
    return None if row is None else _inquiry(row)


def inquiry_set_state(conn: sqlite3.Connection, inquiry_id: str, state: InquiryState) -> None:
    # Back to pending means "take me again now": drop the lease with it.
    conn.execute(
        "UPDATE inquiries SET state = ?, lease_until = CASE WHEN ? THEN 0 ELSE lease_until END"
        " WHERE id = ?",
        (state.value, state is InquiryState.PENDING, inquiry_id),
    )


def expire_inquiries(conn: sqlite3.Connection, now: float) -> None:
    """End the inquiries that expired; forget those ended long ago."""
    conn.execute("DELETE FROM inquiries WHERE expires_at <= ?", (now - RETENTION,))
    conn.execute(
        "UPDATE inquiries SET state = ? WHERE expires_at <= ? AND state != ?",
        (InquiryState.ENDED.value, now, InquiryState.ENDED.value),
    )


def _inquiry(row: Any) -> Inquiry:
    return Inquiry(
        id=row[0],
        device=row[1],
        name=row[2],
        rid=row[3],
        payload=row[4],
        created_at=row[5],
        expires_at=row[6],
        content_type=row[7],
        state=InquiryState(row[8]),
        lease_until=row[9],
    )
