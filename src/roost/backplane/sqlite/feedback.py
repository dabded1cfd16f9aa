"""Outcomes (feedback): what became of each service-to-device message.

Outcomes are not consumed by reading; readers page by ``seq`` and old ones are
trimmed by time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from roost.backplane.sqlite import bulk
from roost.model import Outcome, OutcomeKind

_COLS = "id, device, kind, name, outcome, at, grp, status, payload, reason, content_type"
_INSERT = f"INSERT INTO outcomes ({_COLS})"


def outcome_put(conn: sqlite3.Connection, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Store the outcomes, setting their (consecutive) seqs; return them."""
    flat: list[Any] = []
    for o in outcomes:
        flat += (o.id, o.device, o.kind, o.name, o.outcome.value, o.at, o.group, o.status,
                 o.payload, o.reason, o.content_type)
    seq = bulk.insert(conn, _INSERT, 11, flat) - len(outcomes)
    for o in outcomes:
        seq += 1
        o.seq = seq
    return list(outcomes)


def outcome_read(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[Outcome]:
    rows = conn.execute(
        f"SELECT seq, {_COLS} FROM outcomes WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    return [_outcome(r) for r in rows]


def outcome_trim(conn: sqlite3.Connection, before: float) -> int:
    return conn.execute("DELETE FROM outcomes WHERE at < ?", (before,)).rowcount


def _outcome(row: Any) -> Outcome:
    return Outcome(
        seq=row[0],
        id=row[1],
        device=row[2],
        kind=row[3],
        name=row[4],
        outcome=OutcomeKind(row[5]),
        at=row[6],
        group=row[7],
        status=row[8],
        payload=row[9],
        reason=row[10],
        content_type=row[11],
    )
