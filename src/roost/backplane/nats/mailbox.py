"""Per-device mailboxes in sharded streams.

``mailbox_shards`` streams ``<PREFIX>_MBX_<s>``; a device's messages are subject
``<prefix>.mbx.<s>.<device token>`` of its shard's stream, so ``seq`` (the stream
sequence) increases per device. Reads are Direct Gets, an ack is a message
delete, storing wakes the device's link through the stream's RePublish to
``<prefix>.wake.mbx.<s>.<device>`` (headers only). Each message carries a
``Nats-TTL`` of its remaining time plus a grace: the sweep (``expiry``) records
EXPIRED first, the server cleans up if no node sweeps.

The depth limit holds across nodes: a put reads the mailbox, counts the
unexpired messages and stores with ``Nats-Expected-Last-Subject-Sequence`` set to
the last one it saw; a put that lost a race reads again.

Delivery attempts live in KV bucket ``attempts``: key = device token, value
``{seq: attempts}``, pruned of seqs below the oldest message still there.

Round trips: put 2 (device check ‖ mailbox read ‖ timer entry, then the store),
ack 2 (delete ‖, outcomes; plus a get ‖ first for a message this node has not
seen), read 1, mark_sent 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from nats.js.api import DiscardPolicy

from roost.backplane.nats import expiry, feedback, messages
from roost.backplane.nats.buckets import Bucket, Conflict
from roost.backplane.nats.codec import dumps
from roost.backplane.nats.context import (
    EXPECT_LAST,
    WRONG_LAST,
    ApiError,
    Ctx,
    StoredMsg,
    ensure_stream,
)
from roost.backplane.nats.names import token
from roost.errors import MailboxFull, Unavailable, UnknownDevice
from roost.model import MailboxMessage, Outcome, OutcomeKind

SUBJECT_FULL = 10077  # JetStream: "maximum messages per subject exceeded"
MAX_RACES = 1000  # lost store races before a put gives up (each loser lets one winner through)
RECENT = 20_000  # messages whose outcome fields this node keeps for acks


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the shard streams, the attempts bucket and the timers stream."""
    for shard in range(ctx.options.mailbox_shards):
        config = messages.log_stream_config(
            ctx, ctx.names.stream("mbx", shard), ctx.names.subject("mbx", shard, "*"), "mbx")
        # JetStream refuses a store beyond the cap (never drops a stored message for it)
        config.max_msgs_per_subject = ctx.options.mailbox_cap
        config.discard = DiscardPolicy.NEW
        config.discard_new_per_subject = True
        await ensure_stream(ctx, config)
    await Bucket(ctx, "attempts").ensure()
    await expiry.setup(ctx)  # the backplane does not list expiry among its modules


async def stop(ctx: Ctx) -> None:
    """Forget this backplane's state: recent messages, and the sweep position of ``expiry``."""
    _recent.drop(ctx)
    await expiry.stop(ctx)


# --- put --------------------------------------------------------------------------------


class _DeviceLocks:
    """One lock per device with puts in progress on this node, dropped when unused.

    Puts to one mailbox from this node take turns, so they do not lose store
    races to each other (each lost race costs a read and a store); races with
    other nodes are still settled by the expected last sequence.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


_turns = _DeviceLocks()


class _Recent:
    """The last messages this backplane stored or read, by (stream, seq): an ack of one
    of them needs no read before its delete. Facts only (a sequence never names another
    message while the stream lives), so the cache is never stale; it forgets the oldest."""

    def __init__(self, size: int = RECENT) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], messages.Brief] = OrderedDict()

    def add(self, stream: str, seq: int, known: messages.Brief) -> None:
        self._items[(stream, seq)] = known
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, stream: str, seq: int) -> messages.Brief | None:
        return self._items.pop((stream, seq), None)


_recent = messages.PerCtx(_Recent)


def _remember(ctx: Ctx, stream: str, subject: str, msg: MailboxMessage) -> None:
    _recent.get(ctx).add(stream, msg.seq, messages.Brief(subject, msg.id, msg.kind.value,
                                                         msg.name))


async def put(ctx: Ctx, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
    """Append to the device's mailbox unless it holds ``max_depth`` unexpired messages."""
    async with _turns.hold(f"{ctx.names.prefix}.{msg.device}"):
        return await _put(ctx, msg, max_depth)


async def _put(ctx: Ctx, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
    stream, subject = messages.mailbox_stream(ctx, msg.device), messages.mailbox_subject(
        ctx, msg.device)
    # The timer entry must be stored before the message; it is harmless if the put fails.
    known, held, _ = await asyncio.gather(
        _registered(ctx, msg.device),
        messages.read_all(ctx, stream, subject),
        expiry.schedule(ctx, expiry.MAILBOX, msg.device, msg),
    )
    if not known:
        raise UnknownDevice(f"no device {msg.device!r}")
    headers = messages.encode(msg)
    for _ in range(MAX_RACES):
        _check_room(msg.device, held, max_depth)
        seq = await _store_after(ctx, subject, msg.payload, headers, held)
        if seq is not None:
            msg.seq = seq
            _remember(ctx, stream, subject, msg)
            return msg
        held = await messages.read_all(ctx, stream, subject)
    raise Unavailable(f"too many concurrent puts to the mailbox of {msg.device!r}")


async def _registered(ctx: Ctx, device_id: str) -> bool:
    """Whether the device is registered (one Direct Get on the registry's bucket)."""
    return await Bucket(ctx, "devices").get(token(device_id)) is not None


def _check_room(device_id: str, held: list[StoredMsg], max_depth: int) -> None:
    """Raise ``MailboxFull`` if ``held`` has ``max_depth`` unexpired messages (by the clock)."""
    now = time.time()
    if sum(1 for m in held if messages.expires_at(m) > now) >= max_depth:
        raise MailboxFull(f"the mailbox of {device_id!r} holds {max_depth} messages")


async def _store_after(ctx: Ctx, subject: str, payload: bytes, headers: dict[str, str],
                       held: list[StoredMsg]) -> int | None:
    """Store only if the subject's last message is still the last of ``held``; None if not."""
    expect = {**headers, EXPECT_LAST: str(held[-1].seq if held else 0)}
    try:
        return await messages.store(ctx, subject, payload, expect)
    except ApiError as exc:
        if exc.err_code in WRONG_LAST:
            return None
        if exc.err_code == SUBJECT_FULL:
            raise MailboxFull(f"the mailbox of {messages.last_token(subject)!r} is at "
                              f"JetStream's cap of {ctx.options.mailbox_cap} messages") from exc
        raise


# --- read -------------------------------------------------------------------------------


async def read(ctx: Ctx, device_id: str, after_seq: int, limit: int,
               now: float) -> list[MailboxMessage]:
    stream, subject = messages.mailbox_stream(ctx, device_id), messages.mailbox_subject(
        ctx, device_id)
    stored, (attempts, _) = await asyncio.gather(
        messages.read_live(ctx, stream, subject, after_seq, limit, now),
        _attempts(ctx, device_id),
    )
    out = [messages.decode(m, device_id, None) for m in stored]
    for m in out:
        m.attempts = attempts.get(str(m.seq), 0)
        _remember(ctx, stream, subject, m)
    return out


async def depth(ctx: Ctx, device_id: str, now: float) -> int:
    stored = await messages.read_all(ctx, messages.mailbox_stream(ctx, device_id),
                                     messages.mailbox_subject(ctx, device_id))
    return sum(1 for m in stored if messages.expires_at(m) > now)


# --- delivery attempts --------------------------------------------------------------------


async def _attempts(ctx: Ctx, device_id: str) -> tuple[dict[str, int], int]:
    """The device's ``{seq: attempts}`` and the entry's revision (0: none)."""
    entry = await Bucket(ctx, "attempts").entry(token(device_id))
    if entry is None:
        return {}, 0
    counts: dict[str, int] = json.loads(entry.value) if entry.value else {}
    return counts, entry.revision


async def mark_sent(ctx: Ctx, device_id: str, seqs: Sequence[int]) -> None:
    """One more attempt for each seq (compare-and-set on the device's attempts, retried)."""
    if not seqs:
        return
    stream, subject = messages.mailbox_stream(ctx, device_id), messages.mailbox_subject(
        ctx, device_id)
    bucket = Bucket(ctx, "attempts")
    for _ in range(MAX_RACES):
        (counts, revision), oldest = await asyncio.gather(
            _attempts(ctx, device_id), messages.first(ctx, stream, subject))
        kept = {k: n for k, n in counts.items() if oldest is not None and int(k) >= oldest.seq}
        for seq in seqs:
            kept[str(seq)] = kept.get(str(seq), 0) + 1
        try:
            await bucket.cas(token(device_id), dumps(kept), revision)
            return
        except Conflict:
            continue
    raise Unavailable(f"too many concurrent updates of {device_id!r}'s attempts")


# --- ack, purge, drop -----------------------------------------------------------------------


async def ack(ctx: Ctx, device_id: str, seqs: Sequence[int], at: float) -> list[Outcome]:
    """Delete the device's messages among ``seqs``; DELIVERED for each this call deleted.

    A message this node stored or read recently is known without reading it back.
    """
    stream, subject = messages.mailbox_stream(ctx, device_id), messages.mailbox_subject(
        ctx, device_id)
    wanted = sorted(set(seqs))
    recent = _recent.get(ctx)
    known = {seq: recent.pop(stream, seq) for seq in wanted}
    unknown = [seq for seq, k in known.items() if k is None]
    for stored in await messages.bounded(ctx.get_msg(stream, seq) for seq in unknown):
        if stored is not None:
            known[stored.seq] = messages.brief(stored)
    mine = [(seq, k) for seq, k in known.items() if k is not None and k.subject == subject]
    return await _settle(ctx, stream, mine, device_id, OutcomeKind.DELIVERED, at)


async def purge(ctx: Ctx, device_id: str, at: float) -> list[Outcome]:
    """Delete every message of the mailbox; PURGED for each this call deleted."""
    stream, subject = messages.mailbox_stream(ctx, device_id), messages.mailbox_subject(
        ctx, device_id)
    held = await messages.read_all(ctx, stream, subject)
    briefs = [(m.seq, messages.brief(m)) for m in held]
    return await _settle(ctx, stream, briefs, device_id, OutcomeKind.PURGED, at)


async def _settle(ctx: Ctx, stream: str, targets: list[tuple[int, messages.Brief]],
                  device_id: str, kind: OutcomeKind, at: float) -> list[Outcome]:
    """Delete messages one by one (the exactly-once gate against a racing ack, purge or
    sweep) and record an outcome for each that this call removed."""
    gone = await messages.bounded(ctx.delete_msg(stream, seq) for seq, _ in targets)
    return await feedback.record(ctx, [
        known.outcome(kind, at, device_id)
        for (_, known), deleted in zip(targets, gone, strict=True) if deleted])


async def drop(ctx: Ctx, device_id: str, at: float) -> None:
    """Remove the mailbox and its attempts without outcomes (the device is being deleted)."""
    await asyncio.gather(
        messages.purge(ctx, messages.mailbox_stream(ctx, device_id),
                       messages.mailbox_subject(ctx, device_id)),
        Bucket(ctx, "attempts").erase(token(device_id)),
    )
