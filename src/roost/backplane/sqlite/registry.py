"""Devices, their group memberships, API tokens and small settings.

Each function runs on the database thread inside the writer's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from roost.backplane.sqlite import bulk
from roost.backplane.sqlite.mailbox import group_head
from roost.errors import AlreadyExists, UnknownDevice
from roost.model import BROADCAST, ApiToken, Device

_DEVICE_COLS = "id, key_hash, metadata, enabled, created_at, last_seen"
_INSERT_DEVICES = f"INSERT INTO devices ({_DEVICE_COLS})"
_INSERT_GROUPS = "INSERT INTO device_groups (device, grp, pos, cursor)"

# --- meta -----------------------------------------------------------------------------


def meta_get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def meta_put_if_absent(conn: sqlite3.Connection, key: str, value: str) -> str:
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
    return str(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


# --- devices --------------------------------------------------------------------------


def device_create(conn: sqlite3.Connection, device: Device) -> None:
    if _exists(conn, device.id):
        raise AlreadyExists(f"device {device.id!r} already exists")
    _insert_devices(conn, [device])


def device_import(conn: sqlite3.Connection, devices: Sequence[Device]) -> int:
    """Insert the devices whose ids are new (first one wins on duplicates)."""
    fresh: dict[str, Device] = {}
    for d in devices:
        fresh.setdefault(d.id, d)
    for taken in _existing_ids(conn, list(fresh)):
        del fresh[taken]
    _insert_devices(conn, list(fresh.values()))
    return len(fresh)


def _insert_devices(conn: sqlite3.Connection, devices: Sequence[Device]) -> None:
    """Rows for the devices and their memberships; cursors start at the log head."""
    flat: list[Any] = []
    for d in devices:
        flat += (d.id, d.key_hash, json.dumps(d.metadata), int(d.enabled), d.created_at,
                 d.last_seen)
    bulk.insert(conn, _INSERT_DEVICES, 6, flat)
    head = group_head(conn)
    memberships: list[Any] = []
    for d in devices:
        for pos, grp in enumerate((BROADCAST, *_unique(d.groups))):
            memberships += (d.id, grp, pos, head)
    bulk.insert(conn, _INSERT_GROUPS, 4, memberships)


def device_get(conn: sqlite3.Connection, device_id: str) -> Device | None:
    row = conn.execute(f"SELECT {_DEVICE_COLS} FROM devices WHERE id = ?", (device_id,)).fetchone()
    return None if row is None else _with_groups(conn, [row])[0]


def device_update(conn: sqlite3.Connection, device: Device) -> None:
    changed = conn.execute(
        "UPDATE devices SET key_hash = ?, metadata = ?, enabled = ? WHERE id = ?",
        (device.key_hash, json.dumps(device.metadata), int(device.enabled), device.id),
    ).rowcount
    if not changed:
        raise UnknownDevice(f"no device {device.id!r}")
    _set_groups(conn, device.id, _unique(device.groups))


def _set_groups(conn: sqlite3.Connection, device_id: str, groups: tuple[str, ...]) -> None:
    """Keep the cursors of groups the device stays in; new ones start at the head."""
    keep = (BROADCAST, *groups)
    conn.execute(
        "DELETE FROM device_groups"
        " WHERE device = ? AND grp NOT IN (SELECT value FROM json_each(?))",
        (device_id, json.dumps(keep)),
    )
    head = group_head(conn)
    conn.executemany(
        "INSERT INTO device_groups (device, grp, pos, cursor) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (device, grp) DO UPDATE SET pos = excluded.pos",
        [(device_id, grp, pos, head) for pos, grp in enumerate(keep)],
    )


def device_delete(conn: sqlite3.Connection, device_id: str) -> bool:
    """Remove the device and everything kept for it (there are no cascading keys)."""
    if not conn.execute("DELETE FROM devices WHERE id = ?", (device_id,)).rowcount:
        return False
    for table in ("device_groups", "mailbox", "sessions", "presence"):
        conn.execute(f"DELETE FROM {table} WHERE device = ?", (device_id,))
    return True


def device_list(
    conn: sqlite3.Connection, after: str | None, limit: int, group: str | None
) -> list[Device]:
    if group is None:
        rows = conn.execute(
            f"SELECT {_DEVICE_COLS} FROM devices WHERE id > ? ORDER BY id LIMIT ?",
            (after or "", limit),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_DEVICE_COLS} FROM device_groups AS g JOIN devices AS d ON d.id = g.device"
            " WHERE g.grp = ? AND g.device > ? ORDER BY g.device LIMIT ?",
            (group, after or "", limit),
        ).fetchall()
    return _with_groups(conn, rows)


def device_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM devices").fetchone()[0])


def device_touch(conn: sqlite3.Connection, device_id: str, last_seen: float) -> None:
    conn.execute("UPDATE devices SET last_seen = ? WHERE id = ?", (last_seen, device_id))


def _exists(conn: sqlite3.Connection, device_id: str) -> bool:
    return conn.execute("SELECT 1 FROM devices WHERE id = ?", (device_id,)).fetchone() is not None


def _existing_ids(conn: sqlite3.Connection, ids: list[str]) -> list[str]:
    # json_each binds any number of ids as one parameter: no variable limit, one statement.
    rows = conn.execute(
        "SELECT id FROM devices WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)
    )
    return [r[0] for r in rows]


def _with_groups(conn: sqlite3.Connection, rows: list[Any]) -> list[Device]:
    """Build Devices, fetching the groups of all of them in one query."""
    groups: dict[str, list[str]] = {r[0]: [] for r in rows}
    if rows:
        for device_id, grp in conn.execute(
            "SELECT device, grp FROM device_groups WHERE device IN"
            " (SELECT value FROM json_each(?)) AND grp != ? ORDER BY device, pos",
            (json.dumps(list(groups)), BROADCAST),
        ):
            groups[device_id].append(grp)
    return [
        Device(
            id=r[0],
            key_hash=r[1],
            groups=tuple(groups[r[0]]),
            metadata=json.loads(r[2]),
            enabled=bool(r[3]),
            created_at=r[4],
            last_seen=r[5],
        )
        for r in rows
    ]


def _unique(groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(g for g in dict.fromkeys(groups) if g != BROADCAST)


# --- API tokens -----------------------------------------------------------------------

_TOKEN_COLS = "id, token_hash, scopes, description, created_at"


def token_create(conn: sqlite3.Connection, token: ApiToken) -> None:
    try:
        conn.execute(
            f"INSERT INTO tokens ({_TOKEN_COLS}) VALUES (?, ?, ?, ?, ?)",
            (token.id, token.token_hash, json.dumps(token.scopes), token.description,
             token.created_at),
        )
    except sqlite3.IntegrityError as exc:  # id or hash taken
        raise AlreadyExists(f"token {token.id!r} already exists") from exc


def token_find(conn: sqlite3.Connection, token_hash: str) -> ApiToken | None:
    row = conn.execute(
        f"SELECT {_TOKEN_COLS} FROM tokens WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return None if row is None else _token(row)


def token_list(conn: sqlite3.Connection) -> list[ApiToken]:
    return [_token(r) for r in conn.execute(f"SELECT {_TOKEN_COLS} FROM tokens ORDER BY id")]


def token_delete(conn: sqlite3.Connection, token_id: str) -> bool:
    return conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row[0], token_hash=row[1], scopes=tuple(json.loads(row[2])), description=row[3],
        created_at=row[4],
    )
