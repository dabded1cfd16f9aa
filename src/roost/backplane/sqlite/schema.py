"""Tables, indexes and migrations of the SQLite backplane.

The schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``. Append new migrations, never edit old ones.

Choices worth knowing:

* Sequence numbers come from ``INTEGER PRIMARY KEY AUTOINCREMENT``: unlike a plain
  rowid they are never reused once the newest rows are deleted (acked, trimmed),
  so cursors and consumer-group positions never see a seq twice. One counter per
  table is enough: a sequence increasing over all devices increases per device.
* ``device_groups`` holds membership and the device's fan-out cursor in one row,
  so a cursor exists exactly while the device is a member. Every device is also a
  member of ``BROADCAST`` ('*', which no valid group id can collide with).
* Every table that expires has an index on ``expires_at`` so that ``expire`` is a
  range scan over what is due, not a scan of everything stored.
* Dicts (metadata, props, scopes, subscriptions) are JSON text; empty props are NULL.
"""

from __future__ import annotations

import os
import sqlite3

from roost.errors import Unavailable

V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    metadata TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL
) WITHOUT ROWID;

CREATE TABLE device_groups (
    device TEXT NOT NULL,
    grp TEXT NOT NULL,
    pos INTEGER NOT NULL,          -- keeps Device.groups in the order it was given
    cursor INTEGER NOT NULL,       -- last group_log seq the device acknowledged
    sent INTEGER NOT NULL DEFAULT 0, -- last group_log seq sent to it (DUP on redelivery)
    PRIMARY KEY (device, grp)
) WITHOUT ROWID;
CREATE INDEX device_groups_by_group ON device_groups (grp, device);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE mailbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ref TEXT NOT NULL,
    content_type TEXT,
    props TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
-- covers both the read (device, seq > ?) and the depth count (expires_at > now)
CREATE INDEX mailbox_by_device ON mailbox (device, seq, expires_at);
CREATE INDEX mailbox_by_expiry ON mailbox (expires_at);

CREATE TABLE group_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    ref TEXT NOT NULL,
    content_type TEXT,
    props TEXT
);
CREATE INDEX group_log_by_group ON group_log (grp, seq, expires_at);
CREATE INDEX group_log_by_expiry ON group_log (expires_at);

-- No index on received_at: it would cost every append; trim walks the oldest rows.
CREATE TABLE telemetry (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    path TEXT NOT NULL,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    content_type TEXT NOT NULL     -- '' for none: binding NULL costs an adapter lookup
);
CREATE TABLE telemetry_groups (
    grp TEXT PRIMARY KEY,
    position INTEGER NOT NULL      -- last seq handed out to the group
) WITHOUT ROWID;
CREATE TABLE telemetry_leases (
    grp TEXT NOT NULL,
    seq INTEGER NOT NULL,
    token TEXT NOT NULL,
    deadline REAL NOT NULL,
    PRIMARY KEY (grp, seq)
) WITHOUT ROWID;
CREATE INDEX telemetry_leases_by_token ON telemetry_leases (token);

CREATE TABLE inquiries (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    rid TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    content_type TEXT,
    state TEXT NOT NULL,
    lease_until REAL NOT NULL      -- 0 while pending, so "lease_until <= now" finds both
);
CREATE INDEX inquiries_by_rid ON inquiries (device, name, rid, created_at);
CREATE INDEX inquiries_open ON inquiries (state, lease_until);
CREATE INDEX inquiries_by_expiry ON inquiries (expires_at);

CREATE TABLE outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    device TEXT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at REAL NOT NULL,
    grp TEXT,
    status INTEGER,
    payload BLOB,
    reason TEXT
);
CREATE INDEX outcomes_by_time ON outcomes (at);

CREATE TABLE sessions (
    device TEXT PRIMARY KEY,
    subscriptions TEXT NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE presence (
    device TEXT PRIMARY KEY,
    owner TEXT,
    node TEXT,
    connected INTEGER NOT NULL,
    since REAL NOT NULL
) WITHOUT ROWID;
"""

# A command response's content type (MQTT 5), handed back to the waiting caller.
V2 = """
ALTER TABLE outcomes ADD COLUMN content_type TEXT;
"""

MIGRATIONS: tuple[str, ...] = (V1, V2)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open the database with the durability settings and bring the schema up to date."""
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    try:
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise Unavailable(f"{os.fspath(path)}: WAL mode is not available")
        conn.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
        conn.execute("PRAGMA foreign_keys=OFF")  # deletes cascade by hand, in one place
        conn.execute("PRAGMA busy_timeout=5000")  # another process (e.g. a CLI) may hold it
        conn.execute("PRAGMA cache_size=-32000")  # 32 MB
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection that only reads (opened after :func:`connect` set the database up)."""
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    try:
        conn.execute("PRAGMA query_only=1")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA cache_size=-16000")  # 16 MB
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations the file has not seen, each in its own transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise Unavailable(
            f"database schema version {version} is newer than this Roost ({len(MIGRATIONS)})"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would COMMIT on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    return statements
