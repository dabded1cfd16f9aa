"""The read thread: a second connection for reads, so they never wait for an fsync.

Reads used to ride in the writer's batches and so waited for the batch's commit
(an fsync, 1-3 ms here) even though they write nothing. In WAL mode a reader
sees every transaction committed before its read began and never blocks the
writer, so reads run here instead: the thread takes every read queued so far,
runs them in one read transaction (one consistent snapshot), and resolves
their futures with one ``loop.call_soon_threadsafe``.

Read-your-writes still holds: a write's future is resolved only after its
commit, so a read submitted after awaiting it starts after that commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from roost.backplane.sqlite.writer import settle, take_queued
from roost.errors import Unavailable

log = logging.getLogger(__name__)

R = TypeVar("R")
Read = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]
_STOP = object()


class Reader:
    """Owns the read connection and its thread."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[Read | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False

    async def start(self) -> None:
        """Open the connection in the thread; raise Unavailable if that fails."""
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._main, args=(ready,),
                                        name="roost-sqlite-read", daemon=True)
        self._thread.start()
        await ready
        self._accepting = True

    async def close(self) -> None:
        """Answer what is queued, then stop the thread and close the connection."""
        if self._thread is None:
            return
        if self._accepting:
            self._accepting = False
            self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def submit(self, fn: Callable[[sqlite3.Connection], R]) -> asyncio.Future[R]:
        """Queue ``fn(conn)``, which must only read."""
        if not self._accepting or self._loop is None:
            raise Unavailable("the SQLite backplane is not running")
        future: asyncio.Future[R] = self._loop.create_future()
        self._queue.put((fn, future))
        return future

    # --- the thread -------------------------------------------------------------------

    def _main(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
        except Exception as exc:  # handed to start()
            error = Unavailable(f"cannot open database for reading: {exc}")
            self._loop.call_soon_threadsafe(settle, ready, None, error)
            return
        self._loop.call_soon_threadsafe(settle, ready, None, None)
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        assert self._loop is not None
        stop = False
        while not stop:
            batch = take_queued(self._queue)
            reads = [item for item in batch if isinstance(item, tuple)]
            stop = len(reads) != len(batch)
            if reads:
                answers = _run(conn, reads)
                try:
                    self._loop.call_soon_threadsafe(_answer, answers)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    return


def _run(conn: sqlite3.Connection, reads: list[Read]) -> list[tuple[Any, Any, Any]]:
    """Every read of the batch in one snapshot; an error fails its own read only."""
    try:
        conn.execute("BEGIN")
    except sqlite3.Error as exc:
        lost = Unavailable(f"database read failed: {exc}")
        return [(future, None, lost) for _, future in reads]
    answers: list[tuple[Any, Any, Any]] = []
    for fn, future in reads:
        try:
            answers.append((future, fn(conn), None))
        except Exception as exc:
            answers.append((future, None, exc))
    try:
        conn.execute("COMMIT")  # ends the snapshot; a read transaction has nothing to lose
    except sqlite3.Error:
        log.warning("ending a read transaction failed", exc_info=True)
    return answers


def _answer(answers: list[tuple[Any, Any, Any]]) -> None:
    for future, result, error in answers:
        settle(future, result, error)
