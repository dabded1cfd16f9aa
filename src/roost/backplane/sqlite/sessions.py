"""Persistent MQTT sessions and presence (who holds a device's live connection)."""

from __future__ import annotations

import json
import sqlite3

from roost.model import Presence, Session

# --- sessions -------------------------------------------------------------------------


def session_get(conn: sqlite3.Connection, device_id: str) -> Session | None:
    row = conn.execute(
        "SELECT subscriptions, expires_at FROM sessions WHERE device = ?", (device_id,)
    ).fetchone()
    if row is None:
        return None
    return Session(device=device_id, subscriptions=json.loads(row[0]), expires_at=row[1])


def session_put(conn: sqlite3.Connection, session: Session) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO sessions (device, subscriptions, expires_at) VALUES (?, ?, ?)",
        (session.device, json.dumps(session.subscriptions), session.expires_at),
    )


def session_delete(conn: sqlite3.Connection, device_id: str) -> None:
    conn.execute("DELETE FROM sessions WHERE device = ?", (device_id,))


def expire_sessions(conn: sqlite3.Connection, now: float) -> None:
    """Forget sessions past their expiry (a range scan; NULL never expires)."""
    conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))


# --- presence -------------------------------------------------------------------------


def presence_claim(
    conn: sqlite3.Connection, device_id: str, owner: str, node: str, at: float
) -> str | None:
    """Take the device's live session; return the owner that held it, if any.

    The writer thread runs one operation at a time, so read-then-write is atomic.
    """
    row = conn.execute(
        "SELECT owner FROM presence WHERE device = ? AND connected", (device_id,)
    ).fetchone()
    conn.execute(
        "INSERT OR REPLACE INTO presence (device, owner, node, connected, since)"
        " VALUES (?, ?, ?, 1, ?)",
        (device_id, owner, node, at),
    )
    return None if row is None else str(row[0])


def presence_release(conn: sqlite3.Connection, device_id: str, owner: str, at: float) -> None:
    released = conn.execute(
        "UPDATE presence SET owner = NULL, node = NULL, connected = 0, since = ?"
        " WHERE device = ? AND owner = ?",
        (at, device_id, owner),
    ).rowcount
    if released:
        conn.execute("UPDATE devices SET last_seen = ? WHERE id = ?", (at, device_id))


def presence_get(conn: sqlite3.Connection, device_id: str) -> Presence | None:
    row = conn.execute(
        "SELECT p.connected, p.node, p.since, d.last_seen FROM presence AS p"
        " LEFT JOIN devices AS d ON d.id = p.device WHERE p.device = ?",
        (device_id,),
    ).fetchone()
    if row is None:
        return None
    return Presence(
        device=device_id, connected=bool(row[0]), node=row[1], since=row[2], last_seen=row[3]
    )
