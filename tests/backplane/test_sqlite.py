"""The SQLite backplane: the shared contract plus what only a file can show."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from roost.backplane.sqlite import SqliteBackplane
from roost.backplane.sqlite.schema import MIGRATIONS
from roost.errors import AlreadyExists, MailboxFull, Unavailable, UnknownDevice
from roost.model import Device, Outcome, OutcomeKind, Session, TelemetryRecord

from .contract import BackplaneContract
from .helpers import device, held, message, record, registered


@pytest.fixture
async def backplane(tmp_path: Path) -> AsyncIterator[SqliteBackplane]:
    bp = SqliteBackplane(tmp_path / "roost.db")
    await bp.start()
    yield bp
    await bp.close()


class TestSqliteContract(BackplaneContract):
    pass


async def queued(bp: SqliteBackplane, calls: list[Awaitable[Any]]) -> list[asyncio.Future[Any]]:
    """Start the calls and wait until each has submitted its operation."""
    futures = [asyncio.ensure_future(c) for c in calls]
    while bp._w()._queue.qsize() < len(calls):
        await asyncio.sleep(0)
    return futures


# --- durability --------------------------------------------------------------------------


async def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "roost.db"
    bp = SqliteBackplane(path)
    await bp.start()
    device_id = await registered(bp, "g")
    sent = await bp.mailbox_put(message(device_id), 10)
    await bp.group_put(message(group="g"))
    await bp.telemetry_append([record(device_id, 1)])
    await bp.meta_put_if_absent("k", "v")
    await bp.session_put(Session(device_id, {"t": 1}, None))
    await bp.close()

    again = SqliteBackplane(path)
    await again.start()
    now = time.time()
    assert [m.id for m in await again.mailbox_read(device_id, 0, 10, now)] == [sent.id]
    assert len(await again.group_read("g", 0, 10, now)) == 1
    assert len((await again.telemetry_fetch("g", 10, 30.0, now)).records) == 1
    assert await again.meta_get("k") == "v"
    assert await again.session_get(device_id) == Session(device_id, {"t": 1}, None)
    later = await again.mailbox_put(message(device_id), 10)
    assert later.seq > sent.seq
    await again.close()


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = Path(__file__).with_name("crash_writer.py")
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    try:
        out, _ = proc.communicate(timeout=1.0)  # keeps the pipe drained meanwhile
        pytest.fail(f"the writer exited on its own: {out[-500:]}")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    lines = out.split("\n")[:-1]  # a line cut by the kill has no newline: not acknowledged
    telemetry = {int(line.split()[1]) for line in lines if line.startswith("T ")}
    mailbox = {tuple(line.split()[1:]) for line in lines if line.startswith("M ")}
    assert telemetry and mailbox

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored_seqs = {r[0] for r in conn.execute("SELECT seq FROM telemetry")}
    stored_msgs = {(r[0], r[1]) for r in conn.execute("SELECT device, id FROM mailbox")}
    conn.close()
    assert telemetry <= stored_seqs
    assert mailbox <= stored_msgs


# --- group commit -------------------------------------------------------------------------


async def test_concurrent_appends_share_commits(backplane: SqliteBackplane) -> None:
    before = backplane.stats.commits
    records = [[record("d", i)] for i in range(1000)]
    await asyncio.gather(*(backplane.telemetry_append(r) for r in records))
    assert backplane.stats.commits - before < 100
    assert len({r[0].seq for r in records}) == 1000


async def test_a_held_batch_commits_once(backplane: SqliteBackplane) -> None:
    async with held(backplane):
        before = backplane.stats.commits
        futures = await queued(backplane, [backplane.telemetry_append([record("d", i)])
                                           for i in range(200)])
    await asyncio.gather(*futures)
    assert backplane.stats.commits - before == 2  # the blocker's batch, then all 200


async def test_reads_do_not_wait_for_the_writer(backplane: SqliteBackplane) -> None:
    """Reads have their own connection and thread: a commit in progress (here a batch
    held open) does not hold up a device's mailbox read, a token lookup or the feedback
    log, and they see everything committed before them."""
    await backplane.device_create(device("d1"))
    put = await backplane.mailbox_put(message("d1", payload=b"one"), 10)
    async with held(backplane):
        got = await asyncio.wait_for(backplane.mailbox_read("d1", 0, 10, time.time()), 5)
        assert [m.id for m in got] == [put.id]
        assert (await asyncio.wait_for(backplane.device_get("d1"), 5)) is not None
        assert await asyncio.wait_for(backplane.token_find("nope"), 5) is None
        assert await asyncio.wait_for(backplane.outcome_read(0, 10), 5) == []
        late = asyncio.ensure_future(backplane.mailbox_put(message("d1", payload=b"two"), 10))
        await asyncio.sleep(0.05)
        assert not late.done()  # the write waits for the held batch...
        got = await asyncio.wait_for(backplane.mailbox_read("d1", 0, 10, time.time()), 5)
        assert [m.payload for m in got] == [b"one"]  # ...and no read sees it before its commit
    await late
    got = await backplane.mailbox_read("d1", 0, 10, time.time())
    assert [m.payload for m in got] == [b"one", b"two"]


async def test_a_failing_operation_does_not_poison_its_batch(
    backplane: SqliteBackplane,
) -> None:
    taken = await registered(backplane)
    async with held(backplane):
        futures = await queued(backplane, [
            backplane.device_create(device("fresh", ("g",))),
            backplane.device_create(device(taken)),  # fails after nothing, rolls back alone
            backplane.device_create(device("fresh")),  # fails: the first one is in the batch
            backplane.mailbox_put(message(taken), 10),  # these three are merged
            backplane.mailbox_put(message("ghost"), 10),
            backplane.mailbox_put(message(taken), 1),  # full by now
        ])
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], AlreadyExists) and isinstance(results[2], AlreadyExists)
    assert results[3].device == taken
    assert isinstance(results[4], UnknownDevice) and isinstance(results[5], MailboxFull)
    assert await backplane.mailbox_depth(taken, time.time()) == 1
    fresh = await backplane.device_get("fresh")
    assert fresh is not None and fresh.groups == ("g",)
    assert await backplane.device_count() == 2


async def test_a_bad_append_does_not_fail_the_others_merged_with_it(
    backplane: SqliteBackplane,
) -> None:
    bad = TelemetryRecord("d", "", None, time.time())  # type: ignore[arg-type]
    async with held(backplane):
        futures = await queued(backplane, [
            backplane.telemetry_append([record("d", 1)]),
            backplane.telemetry_append([record("d", 2), bad]),
            backplane.telemetry_append([record("d", 3)]),
        ])
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TypeError)
    batch = await backplane.telemetry_fetch("g", 10, 30.0, time.time())
    assert [r.payload for r in batch.records] == [b"t1", b"t3"]


async def test_a_lost_transaction_fails_the_whole_batch(backplane: SqliteBackplane) -> None:
    device_id = await registered(backplane)

    def lose_transaction(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what SQLite does itself on a disk-full or I/O error
        raise sqlite3.OperationalError("disk I/O error")

    async with held(backplane):
        futures = await queued(backplane, [
            backplane.mailbox_put(message(device_id), 10),
            backplane._w().submit(lose_transaction),
        ])
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, Unavailable) for r in results)
    assert await backplane.mailbox_depth(device_id, time.time()) == 0
    await backplane.check()  # the writer carries on


# --- life cycle ----------------------------------------------------------------------------


async def test_close_finishes_queued_operations(tmp_path: Path) -> None:
    bp = SqliteBackplane(tmp_path / "roost.db")
    await bp.start()
    device_id = await registered(bp)
    futures = await queued(bp, [bp.mailbox_put(message(device_id), 100) for _ in range(50)])
    await bp.close()
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(Unavailable):
        await bp.check()
    with pytest.raises(Unavailable):
        await bp.device_count()
    await bp.close()
    await bp.start()  # and it can start again
    assert await bp.mailbox_depth(device_id, time.time()) == 50
    await bp.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "roost.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(Unavailable, match="newer"):
        await SqliteBackplane(path).start()


async def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """A file written by the first release keeps its outcomes and gains response
    content types (migration 2)."""
    path = tmp_path / "roost.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, upto=1)
    conn.execute("INSERT INTO outcomes (id, device, kind, name, outcome, at) "
                 "VALUES ('m1', 'd1', 'command', 'open', 'expired', 1.0)")
    conn.close()
    bp = SqliteBackplane(path)
    await bp.start()
    try:
        old, = await bp.outcome_read(0, 10)
        assert (old.id, old.outcome, old.content_type) == ("m1", "expired", None)
        await bp.outcome_put([Outcome("c1", "d1", "response", "", OutcomeKind.DELIVERED, 2.0,
                                      status=200, payload=b"{}", content_type="application/json")])
        new = (await bp.outcome_read(old.seq, 10))[0]
        assert (new.id, new.content_type) == ("c1", "application/json")
    finally:
        await bp.close()


def migrate(conn: sqlite3.Connection, upto: int) -> None:
    """Apply the first ``upto`` migrations, as an older Roost would have."""
    for number, script in enumerate(MIGRATIONS[:upto], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version={number}")


async def test_file_settings(backplane: SqliteBackplane, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "roost.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    conn.close()
    sync = await backplane._w().submit(lambda c: c.execute("PRAGMA synchronous").fetchone())
    assert sync == (2,)  # FULL


# --- schema choices -------------------------------------------------------------------------


async def test_expiry_is_an_index_range_scan(backplane: SqliteBackplane) -> None:
    def plans(conn: sqlite3.Connection) -> list[str]:
        return [
            conn.execute(f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE expires_at <= 1")
            .fetchone()[3]
            for table in ("mailbox", "group_log", "inquiries", "sessions")
        ]

    for plan in await backplane._w().submit(plans, atomic=False):
        assert plan.startswith("SEARCH") and "expires_at<" in plan, plan


async def test_expire_forgets_expired_sessions(backplane: SqliteBackplane) -> None:
    await backplane.session_put(Session("a", {}, 100.0))
    await backplane.session_put(Session("b", {}, None))
    await backplane.expire(200.0)
    assert await backplane.session_get("a") is None
    assert await backplane.session_get("b") is not None


async def test_import_of_100k_devices(backplane: SqliteBackplane) -> None:
    devices = [Device(f"dev-{i:06d}", "k", groups=(f"g{i % 7}",)) for i in range(100_000)]
    assert await backplane.device_import(devices) == 100_000
    assert await backplane.device_count() == 100_000
    in_g3 = await backplane.device_list(None, 100_000, group="g3")
    assert len(in_g3) == len(range(3, 100_000, 7))
    assert set(await backplane.group_cursors("dev-099999")) == {"*", "g4"}
