"""The embedded backplane: one SQLite file, a writer and a reader thread, signals in process.

Every write hands a function of the resource modules to the :class:`Writer`
and awaits the commit of the batch it rides in. ``atomic=False`` marks the
operations that need no SAVEPOINT: writes that check first and then write
with one statement (see ``Writer.submit``), and the few reads that stay with
the writer so they follow the device's own queued writes (sessions, group
cursors and marks, read when a device connects). Other reads go to the
:class:`Reader`, which never waits for a commit. The two hot paths,
``mailbox_put`` and ``telemetry_append``, are merged: all of them in a batch
run as one multi-row INSERT.

Objects handed in to be stored (messages, records, outcomes) get their ``seq``
set in place; methods that return them return the same objects.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterable, Sequence
from functools import partial

from roost.backplane.base import Backplane, Signal, SignalBus, SignalKind
from roost.backplane.sqlite import (
    feedback,
    inquiries,
    mailbox,
    registry,
    schema,
    sessions,
    telemetry,
)
from roost.backplane.sqlite.reader import Reader
from roost.backplane.sqlite.writer import Writer, WriterStats
from roost.errors import InvalidInput, Unavailable
from roost.model import (
    ApiToken,
    Device,
    Inquiry,
    InquiryState,
    MailboxMessage,
    Outcome,
    Presence,
    Session,
    TelemetryBatch,
    TelemetryRecord,
)

_TELEMETRY = (Signal(SignalKind.TELEMETRY, ""),)
_INQUIRY = (Signal(SignalKind.INQUIRY, ""),)
CHECK_TIMEOUT = 5.0  # seconds; a health check must answer even if the disk hangs


def _outcome_signals(outcomes: list[Outcome]) -> Iterable[Signal]:
    return [Signal(SignalKind.OUTCOME, o.id, o) for o in outcomes]


class SqliteBackplane(Backplane):
    """The default backplane; ``path`` is the database file (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, node: str = "local") -> None:
        self.path = path
        self.node = node
        self.signals = SignalBus()
        self.stats = WriterStats()
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._starting = asyncio.Lock()

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        async with self._starting:
            if self._writer is not None and self._writer.alive:
                return
            writer = Writer(partial(schema.connect, self.path), self.signals.emit, self.stats)
            await writer.start()  # first: it creates the database and its schema
            reader = Reader(partial(schema.connect_reader, self.path))
            try:
                await reader.start()
            except BaseException:
                await writer.close()
                raise
            self._writer, self._reader = writer, reader

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._writer.close()

    async def check(self) -> None:
        if not self._w().alive:
            raise Unavailable("the SQLite backplane's database thread is not running")
        try:
            await asyncio.wait_for(
                self._w().submit(lambda c: c.execute("SELECT COUNT(*) FROM meta").fetchone(),
                                 atomic=False),
                CHECK_TIMEOUT,
            )
        except (sqlite3.Error, TimeoutError) as exc:
            raise Unavailable(f"the SQLite backplane cannot serve: {exc}") from exc

    def _w(self) -> Writer:
        if self._writer is None:
            raise Unavailable("the SQLite backplane was not started")
        return self._writer

    def _r(self) -> Reader:
        if self._reader is None:
            raise Unavailable("the SQLite backplane was not started")
        return self._reader

    # --- small settings ---------------------------------------------------------------

    async def meta_get(self, key: str) -> str | None:
        return await self._r().submit(lambda c: registry.meta_get(c, key))

    async def meta_put_if_absent(self, key: str, value: str) -> str:
        return await self._w().submit(
            lambda c: registry.meta_put_if_absent(c, key, value), atomic=False
        )

    # --- registry ---------------------------------------------------------------------

    async def device_create(self, device: Device) -> None:
        await self._w().submit(lambda c: registry.device_create(c, device))

    async def device_import(self, devices: Sequence[Device]) -> int:
        return await self._w().submit(lambda c: registry.device_import(c, devices))

    async def device_get(self, device_id: str) -> Device | None:
        return await self._r().submit(lambda c: registry.device_get(c, device_id))

    async def device_update(self, device: Device) -> None:
        await self._w().submit(
            lambda c: registry.device_update(c, device),
            signals=lambda _: (Signal(SignalKind.DEVICE, device.id),),
        )

    async def device_delete(self, device_id: str) -> bool:
        return await self._w().submit(
            lambda c: registry.device_delete(c, device_id),
            signals=lambda gone: (Signal(SignalKind.DEVICE, device_id),
                                  Signal(SignalKind.MAILBOX, device_id)) if gone else (),
        )

    async def device_list(
        self, after: str | None, limit: int, group: str | None = None
    ) -> list[Device]:
        return await self._r().submit(lambda c: registry.device_list(c, after, limit, group))

    async def device_count(self) -> int:
        return await self._r().submit(registry.device_count)

    async def device_touch(self, device_id: str, last_seen: float) -> None:
        await self._w().submit(
            lambda c: registry.device_touch(c, device_id, last_seen), atomic=False
        )

    # --- API tokens -------------------------------------------------------------------

    async def token_create(self, token: ApiToken) -> None:
        await self._w().submit(lambda c: registry.token_create(c, token), atomic=False)

    async def token_find(self, token_hash: str) -> ApiToken | None:
        return await self._r().submit(lambda c: registry.token_find(c, token_hash))

    async def token_list(self) -> list[ApiToken]:
        return await self._r().submit(registry.token_list)

    async def token_delete(self, token_id: str) -> bool:
        return await self._w().submit(lambda c: registry.token_delete(c, token_id), atomic=False)

    # --- mailboxes --------------------------------------------------------------------

    async def mailbox_put(self, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
        return await self._w().submit_merged(
            mailbox.put_merged, (msg, max_depth),
            signals=lambda m: (Signal(SignalKind.MAILBOX, m.device, m),),
        )

    async def mailbox_read(
        self, device_id: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        return await self._r().submit(
            lambda c: mailbox.mailbox_read(c, device_id, after_seq, limit, now)
        )

    async def mailbox_depth(self, device_id: str, now: float) -> int:
        return await self._r().submit(lambda c: mailbox.mailbox_depth(c, device_id, now))

    async def mailbox_mark_sent(self, device_id: str, seqs: Sequence[int]) -> None:
        await self._w().submit(
            lambda c: mailbox.mailbox_mark_sent(c, device_id, seqs), atomic=False
        )

    async def mailbox_ack(self, device_id: str, seqs: Sequence[int], at: float) -> list[Outcome]:
        return await self._w().submit(
            lambda c: mailbox.mailbox_ack(c, device_id, seqs, at), signals=_outcome_signals
        )

    async def mailbox_purge(self, device_id: str, at: float) -> list[Outcome]:
        return await self._w().submit(
            lambda c: mailbox.mailbox_purge(c, device_id, at),
            signals=lambda outs: (*_outcome_signals(outs), Signal(SignalKind.MAILBOX, device_id)),
        )

    # --- group logs -------------------------------------------------------------------

    async def group_put(self, msg: MailboxMessage) -> MailboxMessage:
        if not msg.group:
            raise InvalidInput("a group message needs its group set")
        return await self._w().submit(
            lambda c: mailbox.group_put(c, msg),
            atomic=False,
            signals=lambda m: (Signal(SignalKind.GROUP, m.group or ""),),
        )

    async def group_read(
        self, group: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        return await self._r().submit(lambda c: mailbox.group_read(c, group, after_seq, limit, now))

    async def group_cursors(self, device_id: str) -> dict[str, int]:
        return await self._w().submit(lambda c: mailbox.group_cursors(c, device_id), atomic=False)

    async def group_marks(self, device_id: str) -> dict[str, int]:
        return await self._w().submit(lambda c: mailbox.group_marks(c, device_id), atomic=False)

    async def group_mark_sent(self, device_id: str, group: str, seq: int) -> None:
        await self._w().submit(
            lambda c: mailbox.group_mark_sent(c, device_id, group, seq), atomic=False
        )

    async def group_ack(self, device_id: str, group: str, seq: int) -> None:
        await self._w().submit(
            lambda c: mailbox.group_ack(c, device_id, group, seq), atomic=False
        )

    # --- expiry -----------------------------------------------------------------------

    async def expire(self, now: float) -> list[Outcome]:
        return await self._w().submit(lambda c: _expire(c, now), signals=_outcome_signals)

    # --- telemetry --------------------------------------------------------------------

    async def telemetry_append(self, records: Sequence[TelemetryRecord]) -> None:
        if records:
            await self._w().submit_merged(
                telemetry.append_merged, records, signals=lambda _: _TELEMETRY
            )

    async def telemetry_fetch(
        self,
        group: str,
        max_records: int,
        ack_timeout: float,
        now: float,
        from_latest: bool = False,
    ) -> TelemetryBatch:
        return await self._w().submit(
            lambda c: telemetry.fetch(c, group, max_records, ack_timeout, now, from_latest)
        )

    async def telemetry_ack(self, group: str, ack: str) -> int:
        return await self._w().submit(lambda c: telemetry.ack(c, group, ack), atomic=False)

    async def telemetry_trim(self, before: float, keep_max: int) -> int:
        return await self._w().submit(lambda c: telemetry.trim(c, before, keep_max))

    # --- inquiries --------------------------------------------------------------------

    async def inquiry_put(self, inquiry: Inquiry) -> None:
        await self._w().submit(
            lambda c: inquiries.inquiry_put(c, inquiry), atomic=False, signals=lambda _: _INQUIRY
        )

    async def inquiry_take(self, max_items: int, lease: float, now: float) -> list[Inquiry]:
        return await self._w().submit(lambda c: inquiries.inquiry_take(c, max_items, lease, now))

    async def inquiry_get(self, inquiry_id: str) -> Inquiry | None:
        return await self._r().submit(lambda c: inquiries.inquiry_get(c, inquiry_id))

    async def inquiry_find(self, device_id: str, name: str, rid: str) -> Inquiry | None:
        return await self._r().submit(lambda c: inquiries.inquiry_find(c, device_id, name, rid))

    async def inquiry_set_state(self, inquiry_id: str, state: InquiryState) -> None:
        await self._w().submit(
            lambda c: inquiries.inquiry_set_state(c, inquiry_id, state), atomic=False
        )

    # --- feedback ---------------------------------------------------------------------

    async def outcome_put(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        return await self._w().submit(
            lambda c: feedback.outcome_put(c, outcomes), signals=_outcome_signals
        )

    async def outcome_read(self, after_seq: int, limit: int) -> list[Outcome]:
        return await self._r().submit(lambda c: feedback.outcome_read(c, after_seq, limit))

    async def outcome_trim(self, before: float) -> int:
        return await self._w().submit(lambda c: feedback.outcome_trim(c, before), atomic=False)

    # --- MQTT sessions ----------------------------------------------------------------

    async def session_get(self, device_id: str) -> Session | None:
        return await self._w().submit(lambda c: sessions.session_get(c, device_id), atomic=False)

    async def session_put(self, session: Session) -> None:
        await self._w().submit(lambda c: sessions.session_put(c, session), atomic=False)

    async def session_delete(self, device_id: str) -> None:
        await self._w().submit(lambda c: sessions.session_delete(c, device_id), atomic=False)

    # --- presence ---------------------------------------------------------------------

    async def presence_claim(self, device_id: str, owner: str, node: str, at: float) -> str | None:
        def kick(previous: str | None) -> Iterable[Signal]:
            if previous is None or previous == owner:
                return ()
            return (Signal(SignalKind.KICK, device_id, owner),)

        return await self._w().submit(
            lambda c: sessions.presence_claim(c, device_id, owner, node, at),
            atomic=False,
            signals=kick,
        )

    async def presence_release(self, device_id: str, owner: str, at: float) -> None:
        await self._w().submit(lambda c: sessions.presence_release(c, device_id, owner, at))

    async def presence_get(self, device_id: str) -> Presence | None:
        return await self._r().submit(lambda c: sessions.presence_get(c, device_id))


def _expire(conn: sqlite3.Connection, now: float) -> list[Outcome]:
    """Everything ``expire`` does, in one atomic operation."""
    outcomes = mailbox.expire_messages(conn, now)
    inquiries.expire_inquiries(conn, now)
    sessions.expire_sessions(conn, now)
    return outcomes
