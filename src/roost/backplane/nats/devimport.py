"""Bulk device registration: 100,000 creates pipelined, not 100,000 round trips.

Each record is a publish to its KV subject with
``Nats-Expected-Last-Subject-Sequence: 0`` (create semantics: JetStream refuses
it if the key holds a message). Thousands are in flight at once, their acks
collected by one reply subscription per window; the call returns after every
ack arrived. A ``Nats-Msg-Id`` made of the key and the record makes a retried
import (after a lost ack) count the device as created instead of skipped. Keys
refused because a purge marker of a removed device stands in the way take the
slow, exact path.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import PubAck

from roost.backplane.nats import groups
from roost.backplane.nats.buckets import Bucket
from roost.backplane.nats.context import WRONG_LAST, ApiError, Ctx, write_headers
from roost.errors import Unavailable

WINDOW = 10_000  # publishes in flight together
ACK_TIMEOUT = 30.0  # seconds for one window's acks
CONCURRENCY = 256  # parallel requests on the slow paths


def msg_id(key: str, value: bytes) -> str:
    """Deduplication id of one create: the same record published twice is one write."""
    return f"{key}:{hashlib.blake2b(value, digest_size=12).hexdigest()}"


async def create_all(bucket: Bucket, items: Sequence[tuple[str, bytes]]) -> list[int | None]:
    """Create each ``(key, value)``; per item its revision, or None if the key is taken."""
    out: list[int | None] = [None] * len(items)
    refused: list[int] = []
    writes = [(bucket.subject(key), value, write_headers(last=0, msg_id=msg_id(key, value)))
              for key, value in items]
    for i, ack in enumerate(await publish_many(bucket.ctx, writes)):
        if isinstance(ack, PubAck):
            out[i] = ack.seq
        elif ack.err_code in WRONG_LAST:
            refused.append(i)
        else:
            raise ack
    for start in range(0, len(refused), CONCURRENCY):
        chunk = refused[start:start + CONCURRENCY]
        got = await asyncio.gather(*(bucket.create(*items[i], msg_id(*items[i])) for i in chunk))
        for i, revision in zip(chunk, got, strict=True):
            out[i] = revision
    return out


async def publish_many(ctx: Ctx, items: Sequence[tuple[str, bytes, dict[str, str]]]
                       ) -> list[PubAck | ApiError]:
    """JetStream publishes of ``(subject, payload, headers)``, pipelined: each one's ack or error.

    Returns once every ack arrived (raises ``Unavailable`` if some never did).
    """
    out: list[PubAck | ApiError] = []
    for start in range(0, len(items), WINDOW):
        out += await _publish_window(ctx, items[start:start + WINDOW])
    return out


async def _publish_window(ctx: Ctx, window: Sequence[tuple[str, bytes, dict[str, str]]]
                          ) -> list[PubAck | ApiError]:
    """Publish every item with reply subject ``<inbox>.<i>``; the ack or error of each.

    Not ``js.publish_async``: nats-py 2.16 raises a JetStream error (such as
    "wrong last sequence", which here just means "exists") inside its reply
    handler instead of failing the future, which then never completes. And
    one reply subscription costs less per message than a request each.
    """
    nc = ctx.nc
    inbox = nc.new_inbox()
    results: list[PubAck | ApiError | None] = [None] * len(window)
    left = [len(window)]
    done = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        i = int(msg.subject[len(inbox) + 1:])
        if results[i] is None:
            results[i] = _ack(msg)
            left[0] -= 1
            if not left[0]:
                done.set()

    sub = await nc.subscribe(f"{inbox}.*", cb=on_reply)
    try:
        for i, (subject, payload, headers) in enumerate(window):
            await nc.publish(subject, payload, reply=f"{inbox}.{i}", headers=headers)
        if window:
            await asyncio.wait_for(done.wait(), ACK_TIMEOUT)
    except TimeoutError as exc:
        raise Unavailable("JetStream did not acknowledge every publish in time") from exc
    finally:
        await sub.unsubscribe()
    return [r for r in results if r is not None]


def _ack(msg: Msg) -> PubAck | ApiError:
    if msg.headers and msg.headers.get("Status") == "503":
        return ApiError(503, 0, "no JetStream stream answered")
    reply: dict[str, Any] = json.loads(msg.data)
    error = reply.get("error")
    if error:
        return ApiError(error.get("code", 0), error.get("err_code", 0),
                        error.get("description", ""))
    return PubAck.from_response(reply)


async def init_cursors(ctx: Ctx, items: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Start each device's group cursors at the log heads (bulk if ``groups`` offers it)."""
    many: Any = getattr(groups, "init_cursors_many", None)
    if many is not None:
        await many(ctx, list(items))
        return
    for start in range(0, len(items), CONCURRENCY):
        chunk = items[start:start + CONCURRENCY]
        await asyncio.gather(*(groups.init_cursors(ctx, d, g) for d, g in chunk))
