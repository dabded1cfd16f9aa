"""What one backplane call costs: the NATS cluster backplane against the embedded SQLite one.

The calls of a command's life, one at a time (no concurrency, so each is its own round
trip), on 100 registered devices:

* ``put``: ``mailbox_put`` of a command (TTL 30 s);
* ``read``: ``mailbox_read`` of a device's mailbox, as a delivery does;
* ``outcome``: ``outcome_put`` of a response;
* ``ack``: ``mailbox_ack`` of one put message (delete + ``delivered`` outcome);
* ``device_get``: one registry lookup.

For each: wall milliseconds per call, and the CPU per call of the stores' processes (the three
nats-servers; for SQLite, this process, which runs the store's threads). The cluster is three
nats-servers on loopback with replicas 3 and ``sync_interval: always`` (docs/clustering.md).

Usage: python bench/bench_backplane_calls.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import Row, cpu_seconds, machine, print_table

from roost.backplane.base import Backplane
from roost.backplane.nats import NatsBackplane, NatsOptions
from roost.backplane.sqlite import SqliteBackplane
from roost.model import Device, MailboxMessage, MessageKind, Outcome, OutcomeKind
from roost.testing.nats import NatsCluster

DEVICES = 100


def command(device_id: str, i: int) -> MailboxMessage:
    now = time.time()
    return MailboxMessage(id=f"c{i}", device=device_id, kind=MessageKind.COMMAND, name="ping",
                          payload=b"ping", created_at=now, expires_at=now + 30.0, ref=f"c{i}")


def response(i: int) -> Outcome:
    return Outcome(id=f"r{i}", device="d0", kind="response", name="",
                   outcome=OutcomeKind.DELIVERED, at=time.time(), status=200, payload=b"ok")


async def measure(bp: Backplane, calls: int, pids: list[int]) -> dict[str, tuple[float, float]]:
    """{call: (wall ms per call, store CPU ms per call)}."""
    devices = [f"d{i}" for i in range(DEVICES)]
    for d in devices:
        await bp.device_create(Device(id=d, key_hash="sha256$00$11", created_at=time.time()))
    await asyncio.sleep(1.0)
    put: list[MailboxMessage] = []

    async def do_put(i: int) -> None:
        put.append(await bp.mailbox_put(command(devices[i % DEVICES], i), 1000))

    async def do_read(i: int) -> None:
        await bp.mailbox_read(devices[i % DEVICES], 0, 10, time.time())

    async def do_outcome(i: int) -> None:
        await bp.outcome_put([response(i)])

    async def do_ack(i: int) -> None:
        await bp.mailbox_ack(put[i].device, [put[i].seq], time.time())

    async def do_get(i: int) -> None:
        await bp.device_get(devices[i % DEVICES])

    steps: dict[str, Callable[[int], Awaitable[None]]] = {
        "put": do_put, "read": do_read, "outcome": do_outcome, "ack": do_ack,
        "device_get": do_get,
    }
    results = {}
    for name, step in steps.items():
        cpu0, wall0 = sum(map(cpu_seconds, pids)), time.perf_counter()
        for i in range(calls):
            await step(i)
        wall, cpu = time.perf_counter() - wall0, sum(map(cpu_seconds, pids)) - cpu0
        results[name] = (wall / calls * 1000, cpu / calls * 1000)
        print(f"  {name:10s} {results[name][0]:6.2f} ms/call, store CPU "
              f"{results[name][1]:5.2f} ms/call", flush=True)
    return results


async def on_cluster(calls: int) -> dict[str, tuple[float, float]]:
    cluster = NatsCluster(3, name="roost-calls")
    for server in cluster.servers:
        server.sync_interval = "always"
    cluster.start()
    try:
        pids = [s.proc.pid for s in cluster.servers if s.proc is not None]
        bp = NatsBackplane(NatsOptions(servers=tuple(cluster.urls), prefix="calls", replicas=3),
                           node="bench")
        await bp.start()
        try:
            return await measure(bp, calls, pids)
        finally:
            await bp.close()
    finally:
        cluster.cleanup()


async def on_sqlite(calls: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        bp = SqliteBackplane(Path(tmp) / "roost.db")
        await bp.start()
        try:
            return await measure(bp, calls, [os.getpid()])
        finally:
            await bp.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300, help="calls of each kind (default 300)")
    args = p.parse_args()
    print(f"one call at a time, {args.calls} of each; {machine()}")
    print("NATS cluster (3 servers, replicas 3, sync always):", flush=True)
    nats = asyncio.run(on_cluster(args.calls))
    print("embedded SQLite:", flush=True)
    sqlite = asyncio.run(on_sqlite(args.calls))
    print_table("Backplane calls, one at a time", [
        Row(name, {"NATS ms/call": f"{nats[name][0]:.2f}",
                   "nats-servers CPU ms/call": f"{nats[name][1]:.2f}",
                   "SQLite ms/call": f"{sqlite[name][0]:.2f}",
                   "SQLite CPU ms/call": f"{sqlite[name][1]:.2f}"})
        for name in nats])


if __name__ == "__main__":
    main()
