"""Group and broadcast logs, per-device cursors and sent marks.

Every group log is one subject ``<prefix>.grp.<group token>`` of one stream
(BROADCAST is the group ``*``, escaped by ``token``); a message is stored once
and each member reads it from its own cursor (fan-out on read). Storing wakes
the members' links through the stream's RePublish to ``<prefix>.wake.grp.<group>``.

A device's place in a group is KV bucket ``cursors``, key
``<device token>.<group token>`` → ``{"cursor": last acked seq, "mark": highest
seq sent}``. All of a device's entries come back in one batched Direct Get of
``$KV.<bucket>.<device token>.*``. Cursors and marks only move forward
(compare-and-set on the entry's revision, retried).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from roost.backplane.nats import expiry, messages
from roost.backplane.nats.buckets import Bucket, Conflict
from roost.backplane.nats.codec import dumps
from roost.backplane.nats.context import WRONG_LAST, Ctx, ensure_stream, write_headers
from roost.backplane.nats.names import token
from roost.errors import Unavailable
from roost.model import BROADCAST, MailboxMessage

CURSOR, MARK = "cursor", "mark"
MAX_RACES = 1000  # lost compare-and-sets before an update gives up


def _bucket(ctx: Ctx) -> Bucket:
    return Bucket(ctx, "cursors")


def _key(device_id: str, group: str) -> str:
    return f"{token(device_id)}.{token(group)}"


async def setup(ctx: Ctx) -> None:
    """Create or upgrade the groups stream and the cursors bucket; idempotent."""
    await ensure_stream(ctx, messages.log_stream_config(
        ctx, messages.group_stream(ctx), ctx.names.subject("grp", "*"), "grp"))
    await _bucket(ctx).ensure()


async def stop(ctx: Ctx) -> None:
    """Nothing to release: the module keeps no tasks or subscriptions."""


# --- the logs ---------------------------------------------------------------------------


async def put(ctx: Ctx, msg: MailboxMessage) -> MailboxMessage:
    """Append to the group's log (timer entry first, see ``expiry``); returns it with seq set."""
    group = msg.group or BROADCAST
    await expiry.schedule(ctx, expiry.GROUP, group, msg)
    msg.seq = await messages.store(ctx, messages.group_subject(ctx, group), msg.payload,
                                   messages.encode(msg))
    return msg


async def read(ctx: Ctx, group: str, after_seq: int, limit: int,
               now: float) -> list[MailboxMessage]:
    stored = await messages.read_live(ctx, messages.group_stream(ctx),
                                      messages.group_subject(ctx, group), after_seq, limit, now)
    return [messages.decode(m, "", group) for m in stored]


# --- cursors and marks --------------------------------------------------------------------


async def cursors(ctx: Ctx, device_id: str) -> dict[str, int]:
    return {group: entry.get(CURSOR, 0) for group, entry in (await _entries(ctx, device_id))}


async def marks(ctx: Ctx, device_id: str) -> dict[str, int]:
    return {group: entry.get(MARK, 0) for group, entry in (await _entries(ctx, device_id))}


async def _entries(ctx: Ctx, device_id: str) -> list[tuple[str, dict[str, int]]]:
    """The device's (group, value) pairs: one batched Direct Get over its keys."""
    return [(messages.last_token(key), json.loads(value))
            async for key, _, value in _bucket(ctx).scan(f"{token(device_id)}.*")]


async def mark_sent(ctx: Ctx, device_id: str, group: str, seq: int) -> None:
    await _advance(ctx, device_id, group, MARK, seq)


async def ack(ctx: Ctx, device_id: str, group: str, seq: int) -> None:
    await _advance(ctx, device_id, group, CURSOR, seq)


async def _advance(ctx: Ctx, device_id: str, group: str, field: str, seq: int) -> None:
    """Raise ``field`` of the device's entry in ``group`` to ``seq``; never lowers it.

    No entry (the device is not in the group) leaves things as they are.
    """
    bucket, key = _bucket(ctx), _key(device_id, group)
    for _ in range(MAX_RACES):
        entry = await bucket.entry(key)
        if entry is None or entry.value is None:
            return
        value: dict[str, int] = json.loads(entry.value)
        if value.get(field, 0) >= seq:
            return
        try:
            await bucket.cas(key, dumps({**value, field: seq}), entry.revision)
            return
        except Conflict:
            continue
    raise Unavailable(f"too many concurrent updates of {device_id!r} in {group!r}")


async def init_cursors(ctx: Ctx, device_id: str, groups: Sequence[str]) -> None:
    """Start the device at the head of each of ``groups`` and BROADCAST (entries that
    exist are kept)."""
    await init_cursors_many(ctx, [(device_id, groups)])


async def init_cursors_many(ctx: Ctx, items: Sequence[tuple[str, Sequence[str]]]) -> None:
    """``init_cursors`` for many devices (bulk import): the head read once, the entries
    created by pipelined publishes, all acks awaited.

    The head is the newest group message of any group: every stored message of a
    group is at or before it, every later one after it.
    """
    if not items:
        return
    head = await _head(ctx)
    value = dumps({CURSOR: head, MARK: 0})
    create = write_headers(last=0)  # an existing entry is kept
    bucket = _bucket(ctx)
    writes = [(bucket.subject(_key(device_id, group)), value, create)
              for device_id, groups in items
              for group in dict.fromkeys((*groups, BROADCAST))]
    for result in await messages.store_many(ctx, writes):
        if isinstance(result, Exception) and result.err_code not in WRONG_LAST:
            raise result


async def _head(ctx: Ctx) -> int:
    last = await ctx.last_msg(messages.group_stream(ctx), ctx.names.subject("grp", "*"))
    return 0 if last is None else last.seq


async def drop_cursors(ctx: Ctx, device_id: str, groups: Sequence[str] | None) -> None:
    """Forget the device's entries in ``groups`` (all of them if None); no marker is left,
    so a later ``init_cursors`` creates them afresh."""
    bucket = _bucket(ctx)
    if groups is None:
        await bucket.erase(f"{token(device_id)}.*")
        return
    await messages.bounded(bucket.erase(_key(device_id, group)) for group in set(groups))
