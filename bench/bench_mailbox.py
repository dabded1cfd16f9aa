"""Durable writes through the SQLite backplane, against a commit-per-message peer.

Prints, for the same disk and the same PRAGMAs (WAL, synchronous=FULL):

* telemetry: N concurrent producers, each appending batches of 10 records
  (what one socket read of QoS 1 PUBLISHes gives the MQTT edge), and the latency
  of a mailbox_read meanwhile (on the read connection, beside the writer);
* mailbox_put: N concurrent producers over 1,000 devices;
* the peer: the same rows inserted with one commit per message;
* device_import of 100,000 devices;
* bytes vs bytearray payload binding (in memory), which the telemetry hot path relies on.

Usage: python bench/bench_mailbox.py [--producers 50] [--seconds 3] [--dir DIR] [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from roost.backplane.sqlite import SqliteBackplane
from roost.backplane.sqlite.schema import V1
from roost.model import Device, MailboxMessage, MessageKind, TelemetryRecord

PAYLOAD = b"x" * 100
DEVICES = 1000


async def telemetry_rate(
    bp: SqliteBackplane, producers: int, seconds: float, read_latencies: list[float]
) -> float:
    """Records/s; meanwhile one reader samples mailbox_read latency under that load."""
    stored = 0
    deadline = time.perf_counter() + seconds

    async def read() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await bp.mailbox_read("dev-0", 0, 10, time.time())
            read_latencies.append(time.perf_counter() - start)

    async def produce(n: int) -> None:
        nonlocal stored
        device = f"dev-{n}"
        while time.perf_counter() < deadline:
            now = time.time()
            await bp.telemetry_append([TelemetryRecord(device, "t", PAYLOAD, now)
                                       for _ in range(10)])
            stored += 10

    start = time.perf_counter()
    await asyncio.gather(read(), *(produce(n) for n in range(producers)))
    return stored / (time.perf_counter() - start)


async def mailbox_rate(bp: SqliteBackplane, producers: int, seconds: float) -> float:
    stored = 0
    deadline = time.perf_counter() + seconds

    async def produce(n: int) -> None:
        nonlocal stored
        i = n
        while time.perf_counter() < deadline:
            now = time.time()
            msg = MailboxMessage(f"m{i}", f"dev-{i % DEVICES}",
                                 MessageKind.NOTIFICATION, "alerts", PAYLOAD, now, now + 3600)
            await bp.mailbox_put(msg, max_depth=1_000_000)
            stored += 1
            i += producers

    start = time.perf_counter()
    await asyncio.gather(*(produce(n) for n in range(producers)))
    return stored / (time.perf_counter() - start)


def naive_rate(path: Path, seconds: float, mailbox: bool) -> float:
    """One INSERT and one COMMIT per message: what a store without group commit does."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    if not mailbox:
        conn.executescript(V1)
    sql, stored = (
        ("INSERT INTO mailbox (device, id, kind, name, payload, created_at, expires_at, ref)"
         " VALUES (?, ?, 'notification', 'alerts', ?, ?, ?, '')")
        if mailbox else
        "INSERT INTO telemetry (device, path, payload, received_at, content_type)"
        " VALUES (?, 't', ?, ?, '')"
    ), 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        now = time.time()
        args = ((f"dev-{stored % DEVICES}", f"m{stored}", PAYLOAD, now, now + 3600)
                if mailbox else (f"dev-{stored % 50}", PAYLOAD, now))
        conn.execute("BEGIN")
        conn.execute(sql, args)
        conn.execute("COMMIT")
        stored += 1
    rate = stored / (time.perf_counter() - start)
    conn.close()
    return rate


def binding_rates(rows: int = 100_000) -> tuple[float, float]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (payload BLOB)")
    rates = []
    for make in (bytes, bytearray):
        values = [(make(PAYLOAD),) for _ in range(rows)]
        start = time.perf_counter()
        conn.executemany("INSERT INTO t VALUES (?)", values)
        rates.append(rows / (time.perf_counter() - start))
    return rates[0], rates[1]


async def run(args: argparse.Namespace, workdir: Path) -> None:
    bp = SqliteBackplane(workdir / "roost.db")
    await bp.start()
    start = time.perf_counter()
    await bp.device_import([Device(f"imp-{i:06d}", "sha256$00$11", groups=(f"g{i % 10}",))
                            for i in range(100_000)])
    import_s = time.perf_counter() - start
    await bp.device_import([Device(f"dev-{i}", "sha256$00$11") for i in range(DEVICES)])

    commits, ops = bp.stats.commits, bp.stats.ops
    reads: list[float] = []
    tele = await telemetry_rate(bp, args.producers, args.seconds, reads)
    reads.sort()
    tele_batch = (bp.stats.ops - ops) / max(bp.stats.commits - commits, 1)
    commits, ops = bp.stats.commits, bp.stats.ops
    mbx = await mailbox_rate(bp, args.producers, args.seconds)
    mbx_batch = (bp.stats.ops - ops) / max(bp.stats.commits - commits, 1)
    await bp.close()

    naive_tele = naive_rate(workdir / "naive.db", args.seconds / 2, mailbox=False)
    naive_mbx = naive_rate(workdir / "naive.db", args.seconds / 2, mailbox=True)
    as_bytes, as_bytearray = binding_rates()

    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, loop {args.loop}, {args.producers} producers, {workdir}")
    print(f"device_import 100,000 devices        {import_s:8.2f} s")
    print(f"telemetry, batches of 10 (records/s) {tele:10,.0f}   ops per commit {tele_batch:6.1f}")
    print(f"mailbox_read under that load (ms)    p50 {reads[len(reads) // 2] * 1e3:.2f}"
          f"  p99 {reads[len(reads) * 99 // 100] * 1e3:.2f}")
    print(f"mailbox_put (messages/s)             {mbx:10,.0f}   ops per commit {mbx_batch:6.1f}")
    print(f"peer: commit per telemetry record    {naive_tele:10,.0f}")
    print(f"peer: commit per mailbox message     {naive_mbx:10,.0f}")
    print(f"ratio telemetry / peer               {tele / naive_tele:10.1f} x")
    print(f"ratio mailbox_put / peer             {mbx / naive_mbx:10.1f} x")
    print(f"binding bytes / bytearray (rows/s)   {as_bytes:10,.0f} / {as_bytearray:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (disk!)")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    args.loop = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
            args.loop = "uvloop"
        except ImportError:
            pass
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
