"""Store telemetry and mailbox messages as fast as possible, forever.

Each item is printed only after the awaited call that stored it returned, i.e.
after its commit. ``test_sqlite.py`` kills this process with SIGKILL and then
checks that every printed item is in the database.

Usage: python crash_writer.py DB_PATH
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from roost.backplane.sqlite import SqliteBackplane
from roost.model import Device, MailboxMessage, MessageKind, TelemetryRecord

DEVICES = 20


def say(lines: list[str]) -> None:
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


async def telemetry(bp: SqliteBackplane, device: str) -> None:
    while True:
        now = time.time()
        records = [TelemetryRecord(device, "p", b"x" * 50, now) for _ in range(5)]
        await bp.telemetry_append(records)
        say([f"T {r.seq}\n" for r in records])


async def mailbox(bp: SqliteBackplane, device: str) -> None:
    while True:
        now = time.time()
        msg = MailboxMessage(uuid.uuid4().hex, device, MessageKind.COMMAND, "c", b"y" * 50,
                             now, now + 3600)
        stored = await bp.mailbox_put(msg, max_depth=1_000_000)
        say([f"M {device} {stored.id}\n"])


async def main(path: str) -> None:
    bp = SqliteBackplane(path)
    await bp.start()
    await bp.device_import([Device(f"dev-{i}", "k") for i in range(DEVICES)])
    say(["ready\n"])
    await asyncio.gather(
        *(telemetry(bp, f"dev-{i}") for i in range(DEVICES)),
        *(mailbox(bp, f"dev-{i}") for i in range(DEVICES)),
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
