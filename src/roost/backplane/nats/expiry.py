"""Sweeping expired mailbox and group messages into EXPIRED outcomes.

A timers stream indexes what may expire when: before a message is stored, its
put stores a small timer entry ``m <device>`` or ``g <group>`` on subject
``<prefix>.tmr.<bucket>``, where the bucket is the message's expiry in 5-second
steps. A sweep takes the buckets that lie wholly in the past, reads each named
mailbox or group log once (however many entries name it), deletes its expired
messages and purges the entries it read.

Exactly one EXPIRED outcome per message however many nodes sweep at once: only
the node whose delete removed a message records it (``ctx.delete_msg`` is the
gate). An outcome comes at most one bucket (5 s) plus one sweep interval after
the expiry. Each node remembers the next bucket to look at; the first sweep,
and one every ``RESCAN`` seconds, reads the whole timers stream instead, which
also finds entries that a node with a slow clock wrote into a passed bucket.

One entry per target and bucket is enough (the sweep reads the target whole), so a
node skips the entry when it wrote the same one itself, provided that bucket lies
at least ``SAFE_AHEAD`` buckets ahead of its clock: no sweep can have purged it yet
unless the sweeping node's clock runs 10 s or more ahead; and only for a minute
after writing it (by the monotonic clock), so a wall clock stepped back cannot make
a node trust an entry from the past. A device that gets several commands a second
with the same TTL then costs one timer write per 5 s, not one per command.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from nats.js.api import StreamConfig

from roost.backplane.nats import feedback, messages
from roost.backplane.nats.context import Ctx, StoredMsg, ensure_stream
from roost.model import MailboxMessage, Outcome, OutcomeKind

STEP = 5  # seconds per timer bucket
RESCAN = 600.0  # seconds between full reads of the timers stream
MAX_STEPS = 120  # a gap of more buckets than this is read as one full scan
MAILBOX, GROUP = "m", "g"
SAFE_AHEAD = 2  # buckets ahead of the clock from which an entry this node wrote is reused
REMEMBERED = 50_000  # entries a node remembers having written
REUSE_FOR = 60.0  # seconds (monotonic) a written entry may be reused

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Sweeper:
    """What one node remembers between sweeps."""

    next_bucket: int | None = None
    last_rescan: float = float("-inf")


@dataclass(slots=True)
class _Due:
    """The passed buckets a sweep handles: their targets and the last entry read of each."""

    targets: set[tuple[str, str]] = field(default_factory=set)
    last_seq: dict[int, int] = field(default_factory=dict)

    def add(self, bucket: int, entry: StoredMsg) -> None:
        kind, _, key = entry.data.decode().partition(" ")
        if kind in (MAILBOX, GROUP):
            self.targets.add((kind, key))
        self.last_seq[bucket] = max(self.last_seq.get(bucket, 0), entry.seq)


_sweepers = messages.PerCtx(_Sweeper)


class _Written:
    """The timer entries this node wrote lately, as (kind, target, bucket) -> monotonic
    time written; forgets the oldest."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, int], float] = {}

    def fresh(self, entry: tuple[str, str, int]) -> bool:
        """Written by this node within ``REUSE_FOR`` seconds."""
        written = self._entries.get(entry)
        return written is not None and time.monotonic() - written < REUSE_FOR

    def add(self, entry: tuple[str, str, int]) -> None:
        self._entries.pop(entry, None)
        self._entries[entry] = time.monotonic()
        if len(self._entries) > REMEMBERED:
            del self._entries[next(iter(self._entries))]


_written = messages.PerCtx(_Written)


def bucket_of(expires_at: float) -> int:
    return int(expires_at // STEP)


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the timers stream; idempotent (``mailbox.setup`` calls it)."""
    await ensure_stream(ctx, StreamConfig(
        name=ctx.names.stream("timers"),
        subjects=[ctx.names.subject("tmr", "*")],
        max_age=ctx.options.ttl_max + 3600.0,
        duplicate_window=120.0,
    ))


async def stop(ctx: Ctx) -> None:
    """Forget this node's sweep position and the entries it wrote."""
    _sweepers.drop(ctx)
    _written.drop(ctx)


async def schedule(ctx: Ctx, kind: str, key: str, msg: MailboxMessage) -> None:
    """Store the timer entry of ``msg`` (before ``msg`` itself).

    An expiry in a bucket that has already passed goes to the current bucket, which
    no sweep has taken yet, so the entry cannot land behind a finished sweep.
    ``Nats-Msg-Id`` is per message, so only a retried put collapses: an id per
    target and bucket would make JetStream drop, as a duplicate, an entry written
    after a sweep purged the bucket (a sweeping node's clock running ahead).
    """
    current = bucket_of(time.time())
    bucket = max(bucket_of(msg.expires_at), current)
    entry = (kind, key, bucket)
    reusable = bucket >= current + SAFE_AHEAD
    written = _written.get(ctx)
    if reusable and written.fresh(entry):
        return
    headers = {"Nats-Msg-Id": messages.header_value(f"tmr:{kind}:{msg.id}")}
    await messages.store(ctx, ctx.names.subject("tmr", bucket), f"{kind} {key}".encode(),
                         headers)
    if reusable:
        written.add(entry)


async def expire_messages(ctx: Ctx, now: float) -> list[Outcome]:
    """Delete the messages expired at ``now`` and record their EXPIRED outcomes (see module doc).

    A target that fails (say, its stream is briefly unavailable) does not stop the
    others; the buckets are then kept and read again by the next sweep.
    """
    sweeper = _sweepers.get(ctx)
    resume_at = sweeper.next_bucket
    due = await _due(ctx, sweeper, bucket_of(now), now)
    found = await messages.bounded(_expire_safely(ctx, kind, key, now)
                                   for kind, key in sorted(due.targets))
    outcomes = await feedback.record(ctx, [o for batch in found if batch for o in batch])
    if any(batch is None for batch in found):
        sweeper.next_bucket = resume_at
        return outcomes
    stream = ctx.names.stream("timers")
    await messages.bounded(
        messages.purge(ctx, stream, ctx.names.subject("tmr", b), seq + 1)
        for b, seq in due.last_seq.items())
    return outcomes


async def _due(ctx: Ctx, sweeper: _Sweeper, current: int, now: float) -> _Due:
    """The timer entries of buckets before ``current`` (the buckets wholly in the past)."""
    due = _Due()
    stream = ctx.names.stream("timers")
    start = sweeper.next_bucket
    if start is None or current - start > MAX_STEPS or now - sweeper.last_rescan >= RESCAN:
        async for entry in ctx.scan(stream, ctx.names.subject("tmr", "*")):
            bucket = int(entry.subject.rsplit(".", 1)[-1])
            if bucket < current:
                due.add(bucket, entry)
        sweeper.last_rescan = now
    else:
        for bucket in range(start, current):
            for entry in await messages.read_all(ctx, stream, ctx.names.subject("tmr", bucket)):
                due.add(bucket, entry)
    sweeper.next_bucket = current
    return due


async def _expire_safely(ctx: Ctx, kind: str, key: str, now: float) -> list[Outcome] | None:
    try:
        return await _expire_target(ctx, kind, key, now)
    except Exception:  # one target must not stop the sweep of the others
        log.exception("expiring the messages of %s %r failed", kind, key)
        return None


async def _expire_target(ctx: Ctx, kind: str, key: str, now: float) -> list[Outcome]:
    """Delete the expired messages of one mailbox or group log; outcomes of those this call
    deleted (one per message; a group message's has ``device=None``)."""
    if kind == MAILBOX:
        stream, subject = messages.mailbox_stream(ctx, key), messages.mailbox_subject(ctx, key)
    else:
        stream, subject = messages.group_stream(ctx), messages.group_subject(ctx, key)
    expired = [m for m in await messages.read_all(ctx, stream, subject)
               if messages.expires_at(m) <= now]
    gone = await messages.delete_each(ctx, stream, expired)
    if kind == MAILBOX:
        return _outcomes(gone, now, key, None)
    return _outcomes(gone, now, None, key)


def _outcomes(gone: Iterable[StoredMsg], at: float, device: str | None,
              group: str | None) -> list[Outcome]:
    return [messages.outcome_of(m, OutcomeKind.EXPIRED, at, device, group) for m in gone]

