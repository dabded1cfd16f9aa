"""Multi-row ``INSERT ... VALUES (...), (...)`` in a few cached statement sizes.

One multi-row statement beats ``executemany`` (DESIGN.md, "The hot path works
in batches"). Any row count is split into chunks whose sizes are powers of two,
so a table needs at most a dozen distinct statements, and all of them stay in
the connection's statement cache instead of being prepared per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache
from typing import Any

MAX_ROWS = 512  # rows per statement; bigger statements gain nothing measurable


def insert(conn: sqlite3.Connection, head: str, width: int, flat: Sequence[Any]) -> int:
    """Insert ``len(flat) // width`` rows; ``head`` is ``INSERT INTO t (cols)``.

    Returns the rowid of the last row inserted (0 if none). The rows of one call
    get consecutive rowids on an AUTOINCREMENT table, since nothing else writes
    between the statements.
    """
    rows = len(flat) // width
    done = 0
    last = 0
    while done < rows:
        size = _chunk(rows - done, width)
        sql = _statement(head, width, size)
        last = conn.execute(sql, flat[done * width : (done + size) * width]).lastrowid or 0
        done += size
    return last


def _chunk(remaining: int, width: int) -> int:
    """The largest power of two <= remaining, capped by MAX_ROWS and the variable limit."""
    cap = min(MAX_ROWS, _max_variables() // width)
    if remaining >= cap:
        return cap
    return 1 << (remaining.bit_length() - 1)


@cache
def _max_variables() -> int:
    # The compile-time default has been 32766 since SQLite 3.32; older builds had 999.
    if sqlite3.sqlite_version_info >= (3, 32, 0):
        return 32766
    return 999


@cache
def _statement(head: str, width: int, rows: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([row] * rows)}"
