"""Telemetry consumer groups: one durable pull consumer per (group, partition), leases in KV.

The consumer hands out new records: each record of a partition to one fetch of
the group, however many nodes fetch at once. It is named after the group
(``g_<token>``, or ``h_<hash>`` for very long ids), acks explicitly, starts at
the oldest retained record (or the newest, ``from_latest``) and goes away by
itself after ``INACTIVE`` unused. A group's consumers are created on its first
fetch: all partitions at once, so ``from_latest`` means the same instant for all.

Leases are what a fetch hands out, stored in KV bucket ``tlm_leases`` under
``<group token>.<ack token>``: the deadline (in the caller's clock, ``now +
ack_timeout``) and the JetStream ack subject of each record (the common prefix
stored once per partition). So the ack token is a short random word that works
on every node, and redelivery follows the caller's clock: a fetch first takes
over the leases of its group that ran out (compare-and-set removal, so one
fetch wins), re-reads their records by Direct Get and tells JetStream the
records are still in progress (``+WPI``), then pulls new ones. An ack acks the
records in JetStream, then removes the lease (compare-and-set: a lease taken
over by a later fetch acks nothing more).

JetStream's own ``ack_wait`` (:func:`js_ack_wait`, far longer than a lease) and
the TTL of a lease entry (the same) are only the safety net for a node that
dies between pulling records and storing their lease: those records come back
after that time. A lease held longer than that (an ``ack_timeout`` above it)
may see its records delivered twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import APIError

from roost.backplane.nats import tlmrecords
from roost.backplane.nats.buckets import Bucket, Conflict, is_marker
from roost.backplane.nats.context import API_TIMEOUT, Ctx
from roost.backplane.nats.names import token
from roost.errors import Unavailable
from roost.model import TelemetryBatch, TelemetryRecord

log = logging.getLogger(__name__)

INACTIVE = 7 * 24 * 3600.0  # an unused group's consumers go away after this
MAX_ACK_PENDING = 1_000_000  # records a group may hold leased at once
MARKER_TTL = 60.0  # a removed lease's marker outlives racing writers by this
SAFETY_MIN = 600.0  # JetStream's ack_wait is at least this (see js_ack_wait)
_ACK_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXISTS = frozenset({10013, 10148})  # consumer name exists / exists with another config
_turns = itertools.count()  # which partition a fetch pulls first (fairness)


@dataclass(slots=True)
class Held:
    """One record of a lease: where it is, how to ack it, and (once read) the record."""

    part: int
    seq: int  # stream sequence in the partition
    reply: str  # JetStream ack subject
    record: TelemetryRecord | None = None


async def setup(ctx: Ctx) -> None:
    await _leases(ctx).ensure()


def js_ack_wait(ctx: Ctx) -> float:
    """JetStream's redelivery time: only a safety net, so far longer than a lease."""
    return max(SAFETY_MIN, 10 * ctx.options.telemetry_ack_timeout)


def _leases(ctx: Ctx) -> Bucket:
    return Bucket(ctx, "tlm_leases")


def consumer_name(group: str) -> str:
    """A consumer name for a group id: its token, or a hash of a very long one."""
    tok = token(group)
    if len(tok) <= 64:
        return f"g_{tok}"
    return "h_" + hashlib.sha256(group.encode()).hexdigest()[:40]


# --- fetch ------------------------------------------------------------------------------


async def fetch(ctx: Ctx, group: str, max_records: int, ack_timeout: float, now: float,
                from_latest: bool) -> TelemetryBatch:
    """Leases that ran out first, then new records; one lease for all of them."""
    if max_records <= 0:
        return TelemetryBatch([], None)
    gkey = token(group)
    again = await _take_over(ctx, gkey, max_records, now)
    fresh = await _pull(ctx, group, max_records - len(again), from_latest)
    fresh = _without(fresh, again)
    held = again + fresh
    if not held:
        return TelemetryBatch([], None)
    ack_token = secrets.token_urlsafe(12)
    await _leases(ctx).write(f"{gkey}.{ack_token}", _encode(now + ack_timeout, held),
                             ttl=js_ack_wait(ctx))
    return TelemetryBatch(_records(again) + _records(fresh), ack_token)


def _without(fresh: list[Held], again: list[Held]) -> list[Held]:
    """New deliveries of records that are being redelivered anyway (JetStream's own net)."""
    index = {(h.part, h.seq): h for h in again}
    out = []
    for h in fresh:
        if (h.part, h.seq) in index:
            index[(h.part, h.seq)].reply = h.reply  # the newest delivery is the one to ack
        else:
            out.append(h)
    return out


def _records(held: list[Held]) -> list[TelemetryRecord]:
    """Held records in partition order, partitions merged by reception time."""
    by_part: dict[int, list[Held]] = defaultdict(list)
    for h in held:
        by_part[h.part].append(h)
    lists = [[h.record for h in sorted(items, key=lambda h: h.seq) if h.record is not None]
             for items in by_part.values()]
    return tlmrecords.merge(lists)


# --- leases that ran out ------------------------------------------------------------------


async def _take_over(ctx: Ctx, gkey: str, budget: int, now: float) -> list[Held]:
    """Claim the group's leases that ran out (up to ``budget`` records) and read them."""
    store = _leases(ctx)
    expired = []
    async for msg in store.last_msgs(f"{gkey}.*"):
        if not is_marker(msg.headers):
            deadline, items = _decode(msg.data)
            if deadline <= now:
                expired.append((deadline, msg.seq, store.key_of(msg), items))
    out: list[Held] = []
    for _, revision, key, items in sorted(expired, key=lambda e: (e[0], e[1])):
        room = budget - len(out)
        if room <= 0:
            break
        try:
            await store.remove(key, last=revision, ttl=MARKER_TTL)
        except Conflict:
            continue  # another fetch took it over, or it was acked
        out += items[:room]
        if len(items) > room:  # the rest stays leased-out-and-expired, under a new token
            await store.write(f"{gkey}.{secrets.token_urlsafe(12)}", _encode(0.0, items[room:]),
                              ttl=js_ack_wait(ctx))
    if not out:
        return out
    await _read(ctx, out)
    await _touch(ctx, out)
    return [h for h in out if h.record is not None]


async def _read(ctx: Ctx, held: list[Held]) -> None:
    """Fill in the records by batched Direct Get (a lease's seqs are mostly contiguous)."""
    by_part: dict[int, list[Held]] = defaultdict(list)
    for h in held:
        by_part[h.part].append(h)

    async def one(part: int, items: list[Held]) -> None:
        low, high = min(h.seq for h in items), max(h.seq for h in items)
        msgs = await ctx.read(tlmrecords.stream(ctx, part),
                              tlmrecords.partition_subject(ctx, part), low - 1, high - low + 1)
        found = {m.seq: m for m in msgs}
        parts = ctx.options.telemetry_partitions
        for h in items:
            m = found.get(h.seq)
            if m is not None:  # else trimmed meanwhile: nothing to redeliver
                h.record = tlmrecords.to_record(m.subject, m.data, m.headers, h.seq * parts + part)

    await asyncio.gather(*(one(p, items) for p, items in by_part.items()))


async def _touch(ctx: Ctx, held: list[Held]) -> None:
    """Restart JetStream's ack_wait of redelivered records, so its net does not fire."""
    for h in held:
        await ctx.nc.publish(h.reply, b"+WPI")


# --- new records ------------------------------------------------------------------------


async def _pull(ctx: Ctx, group: str, budget: int, from_latest: bool) -> list[Held]:
    """Up to ``budget`` new records from the group's consumers, partition by partition."""
    parts = ctx.options.telemetry_partitions
    first = next(_turns) % parts
    out: list[Held] = []
    for part in [(first + i) % parts for i in range(parts)]:
        if len(out) >= budget:
            break
        got = await _pull_part(ctx, group, part, budget - len(out))
        if got is None:  # the group is new here (or went away unused): create, then pull
            await _create(ctx, group, from_latest)
            got = await _pull_part(ctx, group, part, budget - len(out))
            if got is None:
                raise Unavailable(f"no telemetry consumer for group {group!r}")
        out += got
    return out


async def _pull_part(ctx: Ctx, group: str, part: int, batch: int) -> list[Held] | None:
    """One no-wait pull request; None if the consumer does not exist."""
    stream = tlmrecords.stream(ctx, part)
    replies = _Replies(batch)
    sub = await ctx.nc.subscribe(ctx.nc.new_inbox(), cb=replies.on_msg)
    try:
        request = json.dumps({"batch": batch, "no_wait": True}).encode()
        await ctx.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer_name(group)}",
                             request, reply=sub.subject)
        await replies.wait()
    finally:
        await sub.unsubscribe()
    if replies.status == "503":
        return None
    if replies.status not in (None, "404", "408", "409"):  # no more now / request done
        raise Unavailable(f"telemetry pull failed: {replies.status}")
    return [_held(ctx, part, msg) for msg in replies.msgs]


class _Replies:
    """Messages to one inbox, collected by callback (``next_msg`` costs a task per message).

    Done after ``expect`` messages, or at a status message (no data, a
    ``Status`` header), which is kept in ``status``. An empty message without
    one counts (a record with no payload; an ack confirmation).
    """

    __slots__ = ("msgs", "expect", "status", "done")

    def __init__(self, expect: int) -> None:
        self.msgs: list[Msg] = []
        self.expect = expect
        self.status: str | None = None
        self.done = asyncio.Event()

    async def on_msg(self, msg: Msg) -> None:
        status = None if msg.data else (msg.headers or {}).get("Status")
        if status is not None:
            self.status = status
            self.done.set()
            return
        self.msgs.append(msg)
        if len(self.msgs) >= self.expect:
            self.done.set()

    async def wait(self) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), API_TIMEOUT)
        except TimeoutError as exc:
            raise Unavailable("JetStream did not answer in time") from exc


def _held(ctx: Ctx, part: int, msg: Msg) -> Held:
    seq = msg.metadata.sequence.stream
    parts = ctx.options.telemetry_partitions
    record = tlmrecords.to_record(msg.subject, msg.data, dict(msg.headers or {}),
                                  seq * parts + part)
    return Held(part, seq, msg.reply, record)


async def _create(ctx: Ctx, group: str, from_latest: bool) -> None:
    """Create the group's consumer on every partition (an existing one is kept as it is)."""
    policy = api.DeliverPolicy.NEW if from_latest else api.DeliverPolicy.ALL
    for part in range(ctx.options.telemetry_partitions):
        config = api.ConsumerConfig(
            durable_name=consumer_name(group),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=js_ack_wait(ctx),
            max_ack_pending=MAX_ACK_PENDING,
            max_deliver=-1,
            deliver_policy=policy,
            inactive_threshold=INACTIVE,
            description=f"telemetry group {group}"[:200],
        )
        try:
            await ctx.jsm.add_consumer(tlmrecords.stream(ctx, part), config)
        except APIError as exc:
            if exc.err_code not in _EXISTS:
                raise Unavailable(f"cannot create telemetry group {group!r}: {exc}") from exc


# --- ack --------------------------------------------------------------------------------


async def ack(ctx: Ctx, group: str, ack_token: str) -> int:
    """Ack the lease's records in JetStream, then remove it; 0 if it is gone or taken over."""
    if not _ACK_TOKEN.fullmatch(ack_token):
        return 0
    store = _leases(ctx)
    key = f"{token(group)}.{ack_token}"
    msg = await store.last(key)
    if msg is None or is_marker(msg.headers):
        return 0
    _, items = _decode(msg.data)
    await _ack_all(ctx, [h.reply for h in items])
    try:
        await store.remove(key, last=msg.seq, ttl=MARKER_TTL)
    except Conflict:
        return 0  # taken over by a fetch meanwhile: those records are out again
    return len(items)


async def _ack_all(ctx: Ctx, replies: list[str]) -> None:
    """Ack each record with a reply (JetStream confirms), all pipelined to one inbox."""
    if not replies:
        return
    confirms = _Replies(len(replies))
    sub = await ctx.nc.subscribe(ctx.nc.new_inbox(), cb=confirms.on_msg)
    try:
        for reply in replies:
            await ctx.nc.publish(reply, b"+ACK", reply=sub.subject)
        await confirms.wait()
    finally:
        await sub.unsubscribe()
    if confirms.status is not None:
        raise Unavailable(f"telemetry acks not confirmed: {confirms.status}")


# --- lease values -----------------------------------------------------------------------


def _encode(deadline: float, held: list[Held]) -> bytes:
    """``{"d": deadline, "p": [[part, ack prefix, [ack tails], [seqs]], ...]}``."""
    by_part: dict[int, list[Held]] = defaultdict(list)
    for h in held:
        by_part[h.part].append(h)
    parts = []
    for part, items in by_part.items():
        replies = [h.reply for h in items]
        prefix = os.path.commonprefix(replies)
        prefix = prefix[: prefix.rfind(".") + 1]
        cut = len(prefix)
        parts.append([part, prefix, [r[cut:] for r in replies], [h.seq for h in items]])
    return json.dumps({"d": deadline, "p": parts}, separators=(",", ":")).encode()


def _decode(data: bytes) -> tuple[float, list[Held]]:
    value = json.loads(data)
    held = [Held(part, seq, prefix + tail)
            for part, prefix, tails, seqs in value["p"]
            for tail, seq in zip(tails, seqs, strict=True)]
    return float(value["d"]), held
