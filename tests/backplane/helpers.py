"""Builders and a signal recorder shared by the backplane contract suite."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from roost.backplane.base import Backplane, Signal, SignalKind
from roost.backplane.sqlite import SqliteBackplane
from roost.model import (
    Device,
    Inquiry,
    MailboxMessage,
    MessageKind,
    Outcome,
    OutcomeKind,
    TelemetryRecord,
)

_counter = itertools.count(1)


def uid(prefix: str) -> str:
    """A fresh id, so that tests never depend on what another test stored."""
    return f"{prefix}-{next(_counter)}-{time.monotonic_ns() % 1_000_000}"


def device(device_id: str, groups: tuple[str, ...] = (), **fields: object) -> Device:
    fields.setdefault("key_hash", "sha256$00$11")
    return Device(id=device_id, groups=groups, created_at=time.time(),
                  **fields)  # type: ignore[arg-type]


def message(
    device_id: str = "",
    *,
    ttl: float = 60.0,
    group: str | None = None,
    kind: MessageKind = MessageKind.NOTIFICATION,
    payload: bytes = b"hello",
    name: str = "alerts/weather",
    **fields: object,
) -> MailboxMessage:
    now = time.time()
    return MailboxMessage(id=uid("msg"), device=device_id, kind=kind, name=name,
                          payload=payload, created_at=now, expires_at=now + ttl, group=group,
                          **fields)  # type: ignore[arg-type]


def record(device_id: str, n: int, at: float | None = None) -> TelemetryRecord:
    return TelemetryRecord(device=device_id, path=f"sensors/{n}", payload=b"t%d" % n,
                           received_at=time.time() if at is None else at)


def inquiry(device_id: str, *, ttl: float = 60.0, rid: str = "r1", name: str = "route",
            created_at: float | None = None) -> Inquiry:
    at = time.time() if created_at is None else created_at
    return Inquiry(id=uid("inq"), device=device_id, name=name, rid=rid, payload=b"?",
                   created_at=at, expires_at=at + ttl, content_type="text/plain")


def outcome(message_id: str, result: OutcomeKind = OutcomeKind.DELIVERED,
            **fields: object) -> Outcome:
    fields.setdefault("kind", "command")
    return Outcome(id=message_id, device="d", name="unlock", outcome=result, at=time.time(),
                   **fields)  # type: ignore[arg-type]


async def registered(backplane: Backplane, *groups: str) -> str:
    """Register a fresh device in ``groups``; return its id."""
    device_id = uid("dev")
    await backplane.device_create(device(device_id, groups))
    return device_id


class Recorder:
    """Collects the signals a backplane emits, optionally running a probe on each."""

    def __init__(self, backplane: Backplane,
                 probe: Callable[[Signal], None] | None = None) -> None:
        self.signals: list[Signal] = []
        self._probe = probe
        backplane.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        self.signals.append(signal)
        if self._probe is not None:
            self._probe(signal)

    def of(self, kind: SignalKind) -> list[Signal]:
        return [s for s in self.signals if s.kind is kind]

    async def wait_for(self, kind: SignalKind, count: int = 1, timeout: float = 10.0) -> None:
        """Signals may cross nodes on a cluster backplane: give them a moment."""
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


@asynccontextmanager
async def held(bp: SqliteBackplane) -> AsyncIterator[None]:
    """Hold the writer thread inside a batch, so that what is submitted meanwhile
    lands in the next batch together (deterministic group commit)."""
    inside, release = threading.Event(), threading.Event()

    def block(_: sqlite3.Connection) -> None:
        inside.set()
        release.wait(10)

    blocker = bp._w().submit(block, atomic=False)
    await asyncio.to_thread(inside.wait, 10)
    try:
        yield
    finally:
        release.set()
        await blocker
