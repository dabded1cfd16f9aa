"""Partitioned telemetry streams; consumer groups live in :mod:`tlmgroups`.

``telemetry_partitions`` streams ``<PREFIX>_TLM_<p>`` with subjects
``<prefix>.tlm.<p>.<device token>``; a device's records all go to partition
``shard_of(device, P)``, so they keep their order. A record is one message: the
payload as it is, the path, content type and reception time in ``Roost-*``
headers (percent-encoded, so no CR/LF or odd byte can break the header block).

``seq`` of a record is ``stream_seq * P + p``: unique across partitions (the
partition is ``seq % P``), increasing per partition and so per device, and never
reused, because JetStream keeps counting after purges. Across partitions it
says nothing of order; reads merge partitions by reception time.

Append is the hot path: every record is published at once, acks coming back to
one inbox, then every ack is awaited, so the batch is durable when the call
returns (30,000-50,000 records/s in batches of 500 on loopback, 2 cores shared
with nats-server). Each record carries a ``Nats-Msg-Id`` made of one random
batch id and its index, so a retried publish is deduplicated. Stream limits
(``telemetry_retention``, ``telemetry_max_records``) drop old records without
anyone asking; :func:`trim` does the same on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import secrets
from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.js import api

from roost.backplane.base import Signal, SignalKind
from roost.backplane.nats import signals, tlmgroups, tlmrecords
from roost.backplane.nats.context import API_TIMEOUT, Ctx, StoredMsg, ensure_stream
from roost.backplane.nats.names import shard_of, token
from roost.errors import Unavailable
from roost.model import TelemetryBatch, TelemetryRecord

log = logging.getLogger(__name__)

RETRIES = 3  # publishes of one record before an append gives up
TRIM_PROBE = 32  # records per Direct Get while looking for the first one to keep
_SIGNAL = Signal(SignalKind.TELEMETRY, "")


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the partition streams and the consumer groups' lease bucket."""
    parts = ctx.options.telemetry_partitions
    for part in range(parts):
        await ensure_stream(ctx, api.StreamConfig(
            name=tlmrecords.stream(ctx, part),
            subjects=[tlmrecords.partition_subject(ctx, part)],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            max_age=ctx.options.telemetry_retention,
            max_msgs=max(1, ctx.options.telemetry_max_records // parts),
            duplicate_window=120.0,
            allow_direct=True,
            num_replicas=ctx.options.replicas,
            storage=api.StorageType.FILE,
        ))
    await tlmgroups.setup(ctx)


async def stop(ctx: Ctx) -> None:
    """Nothing runs in the background."""


# --- append -----------------------------------------------------------------------------


async def append(ctx: Ctx, records: Sequence[TelemetryRecord]) -> None:
    """Publish every record pipelined, await every ack, set the seqs, then signal once."""
    parts = ctx.options.telemetry_partitions
    batch = secrets.token_hex(8)
    sends = []
    for i, record in enumerate(records):
        part = shard_of(record.device, parts)
        subject = ctx.names.subject("tlm", part, token(record.device))
        sends.append((part, subject, tlmrecords.headers(record, f"{batch}.{i}")))
    stream_seqs = await _publish_all(ctx, records, sends)
    for record, (part, _, _), stream_seq in zip(records, sends, stream_seqs, strict=True):
        record.seq = stream_seq * parts + part
    await signals.announce(ctx, _SIGNAL)


async def _publish_all(ctx: Ctx, records: Sequence[TelemetryRecord],
                       sends: list[tuple[int, str, dict[str, str]]]) -> list[int]:
    """Stream sequences of the records, in order; publishes not acked in time are retried.

    All publishes go out at once with replies to one inbox (``<inbox>.<index>``),
    then the acks are awaited together: twice the records/s of ``publish_async``,
    which keeps a future, a token and a semaphore per message.
    """
    pipe = _Pipeline(len(records))
    sub = await ctx.nc.subscribe(f"{pipe.inbox(ctx)}.*", cb=pipe.on_ack)
    try:
        for i, (record, (_, subject, headers)) in enumerate(zip(records, sends, strict=True)):
            await ctx.nc.publish(subject, record.payload, reply=f"{pipe.prefix}.{i}",
                                 headers=headers)
        await pipe.wait(API_TIMEOUT)
    finally:
        await sub.unsubscribe()
    seqs = pipe.seqs
    for i, seq in enumerate(seqs):
        if seq <= 0:
            _, subject, headers = sends[i]
            seqs[i] = await _publish_again(ctx, subject, records[i].payload, headers)
    return seqs


class _Pipeline:
    """The acks of one append: stream seq per record index (0 while unacked or failed)."""

    __slots__ = ("prefix", "seqs", "left", "done")

    def __init__(self, count: int) -> None:
        self.prefix = ""
        self.seqs = [0] * count
        self.left = count
        self.done = asyncio.Event()
        if count == 0:
            self.done.set()

    def inbox(self, ctx: Ctx) -> str:
        self.prefix = ctx.nc.new_inbox()
        return self.prefix

    async def on_ack(self, msg: Msg) -> None:
        index = int(msg.subject.rsplit(".", 1)[1])
        if msg.data:  # else a status (no responders): left for the retry
            reply = json.loads(msg.data)
            if "error" in reply:
                log.warning("telemetry publish rejected: %s", reply["error"])
            elif self.seqs[index] == 0:
                self.seqs[index] = int(reply["seq"])
        self.left -= 1
        if self.left <= 0:
            self.done.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)


async def _publish_again(ctx: Ctx, subject: str, payload: bytes,
                         headers: dict[str, str]) -> int:
    """One more try (same ``Nats-Msg-Id``, so a first publish that did land counts once)."""
    for attempt in range(RETRIES):
        try:
            return (await ctx.js.publish(subject, payload, headers=headers)).seq
        except Exception as exc:  # nats-py raises timeouts and API errors alike here
            log.warning("telemetry publish to %s failed (try %d): %s", subject, attempt + 1, exc)
            error = exc
    raise Unavailable(f"telemetry not stored: {error}") from error


# --- consumer groups (see tlmgroups) -----------------------------------------------------


async def fetch(ctx: Ctx, group: str, max_records: int, ack_timeout: float, now: float,
                from_latest: bool) -> TelemetryBatch:
    return await tlmgroups.fetch(ctx, group, max_records, ack_timeout, now, from_latest)


async def ack(ctx: Ctx, group: str, ack: str) -> int:
    return await tlmgroups.ack(ctx, group, ack)


# --- trim -------------------------------------------------------------------------------


async def trim(ctx: Ctx, before: float, keep_max: int) -> int:
    """Drop records received before ``before``, then all but the newest ``keep_max``.

    Records of a partition are stored in the order they were received, so those
    to drop are a prefix of each stream: finding its end reads only what goes
    (a record stamped out of order waits for the ones before it). The stream
    limits do this on their own in production; trim is for smaller settings.
    """
    parts = range(ctx.options.telemetry_partitions)
    cuts = await asyncio.gather(*(_first_since(ctx, p, before) for p in parts))
    dropped = sum(await asyncio.gather(*(_purge_below(ctx, p, c) for p, c in enumerate(cuts))))
    counts = await asyncio.gather(*(_count(ctx, p) for p in parts))
    excess = sum(counts) - max(keep_max, 0)
    if excess > 0:
        cuts = await _oldest_cuts(ctx, excess)
        dropped += sum(await asyncio.gather(*(_purge_below(ctx, p, c)
                                              for p, c in enumerate(cuts))))
    return dropped


async def _first_since(ctx: Ctx, part: int, before: float) -> int | None:
    """The stream seq of the partition's first record received at or after ``before``."""
    stream = tlmrecords.stream(ctx, part)
    last = 0
    async for msg in ctx.scan(stream, tlmrecords.partition_subject(ctx, part), batch=TRIM_PROBE):
        if tlmrecords.received_at(msg.headers) >= before:
            return msg.seq
        last = msg.seq
    return last + 1 if last else None


async def _count(ctx: Ctx, part: int) -> int:
    info = await ctx.api(f"STREAM.INFO.{tlmrecords.stream(ctx, part)}")
    return int(info.get("state", {}).get("messages", 0))


async def _oldest_cuts(ctx: Ctx, excess: int) -> list[int | None]:
    """Per partition, the seq to purge below so that the ``excess`` oldest records go."""
    parts = range(ctx.options.telemetry_partitions)
    heads = await asyncio.gather(*(
        ctx.read(tlmrecords.stream(ctx, p), tlmrecords.partition_subject(ctx, p), 0, excess)
        for p in parts))

    def keyed(part: int, msgs: list[StoredMsg]) -> list[tuple[float, int, int]]:
        return [(tlmrecords.received_at(m.headers), part, m.seq) for m in msgs]

    cuts: list[int | None] = [None] * len(heads)
    oldest = heapq.merge(*(keyed(p, msgs) for p, msgs in enumerate(heads)),
                         key=lambda item: item[0])
    for _, (_, part, seq) in zip(range(excess), oldest, strict=False):
        cuts[part] = seq + 1
    return cuts


async def _purge_below(ctx: Ctx, part: int, seq: int | None) -> int:
    if seq is None:
        return 0
    reply = await ctx.api(f"STREAM.PURGE.{tlmrecords.stream(ctx, part)}", {"seq": seq})
    return int(reply.get("purged", 0))
