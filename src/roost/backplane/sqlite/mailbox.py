"""Device mailboxes, group logs with per-device cursors, and expiry.

A group or broadcast message is stored once in ``group_log``; each member keeps
a cursor in ``device_groups`` (fan-out on read, DESIGN.md). A message counts as
expired once ``expires_at <= now``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from roost.backplane.sqlite import bulk, feedback
from roost.errors import MailboxFull, UnknownDevice
from roost.model import MailboxMessage, MessageKind, Outcome, OutcomeKind

_MSG_COLS = "seq, id, kind, name, payload, created_at, expires_at, ref, content_type, props"

_INSERT_MAILBOX = (
    "INSERT INTO mailbox (device, id, kind, name, payload, created_at, expires_at, ref,"
    " content_type, props)"
)
# The known devices among ?1 with their depth at time ?2. The LIMIT bounds each
# count at the largest max_depth asked for, however full a mailbox is.
_DEPTHS = (
    "SELECT d.id, (SELECT COUNT(*) FROM (SELECT 1 FROM mailbox WHERE device = d.id"
    " AND expires_at > ?2 LIMIT ?3)) FROM devices AS d"
    " WHERE d.id IN (SELECT value FROM json_each(?1))"
)

# --- mailboxes ------------------------------------------------------------------------


def put_merged(
    conn: sqlite3.Connection, puts: list[tuple[MailboxMessage, int]]
) -> list[MailboxMessage | Exception]:
    """``mailbox_put`` for many messages at once: one depth query, one multi-row insert.

    Gives the same answers as putting them one by one in order: a message that
    fails its check gets its exception in the results and nothing is written for it.
    Depth counts the messages unexpired now, by the clock (put takes no ``now``).
    """
    depth = _depths(conn, puts)
    results = [_admit(msg, max_depth, depth) for msg, max_depth in puts]
    _insert(conn, [r for r in results if isinstance(r, MailboxMessage)])
    return results


def _depths(conn: sqlite3.Connection, puts: list[tuple[MailboxMessage, int]]) -> dict[str, int]:
    """Depth of each known device among the targets (unknown ones are absent)."""
    devices = json.dumps(list({msg.device for msg, _ in puts}))
    limit = max(max_depth for _, max_depth in puts)
    return dict(conn.execute(_DEPTHS, (devices, time.time(), limit)).fetchall())


def _insert(conn: sqlite3.Connection, accepted: list[MailboxMessage]) -> None:
    flat: list[Any] = []
    for m in accepted:
        flat += (m.device, m.id, m.kind.value, m.name, bytearray(m.payload), m.created_at,
                 m.expires_at, m.ref, m.content_type, _props(m.props))
    seq = bulk.insert(conn, _INSERT_MAILBOX, 10, flat) - len(accepted)
    for m in accepted:
        seq += 1
        m.seq = seq


def _admit(
    msg: MailboxMessage, max_depth: int, depth: dict[str, int]
) -> MailboxMessage | Exception:
    """Count ``msg`` into ``depth`` if its device exists and has room."""
    held = depth.get(msg.device)
    if held is None:
        return UnknownDevice(f"no device {msg.device!r}")
    if held >= max_depth:
        return MailboxFull(f"the mailbox of {msg.device!r} holds {max_depth} messages")
    depth[msg.device] = held + 1
    return msg


def mailbox_read(
    conn: sqlite3.Connection, device_id: str, after_seq: int, limit: int, now: float
) -> list[MailboxMessage]:
    rows = conn.execute(
        f"SELECT {_MSG_COLS}, attempts FROM mailbox WHERE device = ? AND seq > ?"
        " AND expires_at > ? ORDER BY seq LIMIT ?",
        (device_id, after_seq, now, limit),
    )
    return [_message(r, device_id, None, r[10]) for r in rows]


def mailbox_depth(conn: sqlite3.Connection, device_id: str, now: float) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM mailbox WHERE device = ? AND expires_at > ?", (device_id, now)
        ).fetchone()[0]
    )


def mailbox_mark_sent(conn: sqlite3.Connection, device_id: str, seqs: Sequence[int]) -> None:
    conn.execute(
        "UPDATE mailbox SET attempts = attempts + 1"
        " WHERE device = ? AND seq IN (SELECT value FROM json_each(?))",
        (device_id, json.dumps(list(seqs))),
    )


def mailbox_ack(
    conn: sqlite3.Connection, device_id: str, seqs: Sequence[int], at: float
) -> list[Outcome]:
    rows = conn.execute(
        "DELETE FROM mailbox WHERE device = ? AND seq IN (SELECT value FROM json_each(?))"
        " RETURNING seq, id, kind, name",
        (device_id, json.dumps(list(seqs))),
    ).fetchall()
    return _record(conn, rows, device_id, OutcomeKind.DELIVERED, at)


def mailbox_purge(conn: sqlite3.Connection, device_id: str, at: float) -> list[Outcome]:
    rows = conn.execute(
        "DELETE FROM mailbox WHERE device = ? RETURNING seq, id, kind, name", (device_id,)
    ).fetchall()
    return _record(conn, rows, device_id, OutcomeKind.PURGED, at)


def _record(
    conn: sqlite3.Connection, rows: list[Any], device_id: str, kind: OutcomeKind, at: float
) -> list[Outcome]:
    """Outcomes for deleted ``(seq, id, kind, name)`` rows, in message order."""
    rows.sort()  # RETURNING gives no order
    return feedback.outcome_put(
        conn, [Outcome(id=r[1], device=device_id, kind=r[2], name=r[3], outcome=kind, at=at)
               for r in rows],
    )


# --- group logs -----------------------------------------------------------------------


def group_head(conn: sqlite3.Connection) -> int:
    """A cursor value no stored group message is after; later ones all are.

    One value serves every group: seqs come from one increasing counter.
    """
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM group_log").fetchone()[0])


def group_put(conn: sqlite3.Connection, msg: MailboxMessage) -> MailboxMessage:
    msg.seq = conn.execute(
        "INSERT INTO group_log (grp, id, kind, name, payload, created_at, expires_at, ref,"
        " content_type, props) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (msg.group, msg.id, msg.kind.value, msg.name, bytearray(msg.payload), msg.created_at,
         msg.expires_at, msg.ref, msg.content_type, _props(msg.props)),
    ).lastrowid or 0
    return msg


def group_read(
    conn: sqlite3.Connection, group: str, after_seq: int, limit: int, now: float
) -> list[MailboxMessage]:
    rows = conn.execute(
        f"SELECT {_MSG_COLS} FROM group_log WHERE grp = ? AND seq > ? AND expires_at > ?"
        " ORDER BY seq LIMIT ?",
        (group, after_seq, now, limit),
    )
    return [_message(r, "", group, 0) for r in rows]


def group_cursors(conn: sqlite3.Connection, device_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT grp, cursor FROM device_groups WHERE device = ?", (device_id,))
    return {grp: cursor for grp, cursor in rows}


def group_marks(conn: sqlite3.Connection, device_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT grp, sent FROM device_groups WHERE device = ?", (device_id,))
    return {grp: sent for grp, sent in rows}


def group_mark_sent(conn: sqlite3.Connection, device_id: str, group: str, seq: int) -> None:
    conn.execute(
        "UPDATE device_groups SET sent = MAX(sent, ?) WHERE device = ? AND grp = ?",
        (seq, device_id, group),
    )


def group_ack(conn: sqlite3.Connection, device_id: str, group: str, seq: int) -> None:
    conn.execute(
        "UPDATE device_groups SET cursor = MAX(cursor, ?) WHERE device = ? AND grp = ?",
        (seq, device_id, group),
    )


# --- expiry ---------------------------------------------------------------------------


def expire_messages(conn: sqlite3.Connection, now: float) -> list[Outcome]:
    """Delete due mailbox and group messages (range scans on expires_at) and record
    their EXPIRED outcomes: one per mailbox message, one per group message."""
    mine = conn.execute(
        "DELETE FROM mailbox WHERE expires_at <= ? RETURNING seq, device, id, kind, name", (now,)
    ).fetchall()
    logs = conn.execute(
        "DELETE FROM group_log WHERE expires_at <= ? RETURNING seq, grp, id, kind, name", (now,)
    ).fetchall()
    gone = OutcomeKind.EXPIRED
    outcomes = [Outcome(id=i, device=d, kind=k, name=n, outcome=gone, at=now)
                for _, d, i, k, n in sorted(mine)]
    outcomes += [Outcome(id=i, device=None, group=g, kind=k, name=n, outcome=gone, at=now)
                 for _, g, i, k, n in sorted(logs)]
    return feedback.outcome_put(conn, outcomes)


# --- rows -----------------------------------------------------------------------------


def _props(props: dict[str, str]) -> str | None:
    return json.dumps(props) if props else None


def _message(row: Any, device: str, group: str | None, attempts: int) -> MailboxMessage:
    return MailboxMessage(
        id=row[1],
        device=device,
        kind=MessageKind(row[2]),
        name=row[3],
        payload=row[4],
        created_at=row[5],
        expires_at=row[6],
        ref=row[7],
        content_type=row[8],
        props=json.loads(row[9]) if row[9] else {},
        group=group,
        seq=row[0],
        attempts=attempts,
    )
