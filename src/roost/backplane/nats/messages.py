"""How mailbox and group messages are stored, shared by ``mailbox``, ``groups`` and ``expiry``.

A :class:`MailboxMessage` is one stream message: the payload as it is, the
other fields in ``Roost-*`` headers. Header values are percent-encoded when
they hold anything but plain printable ASCII, so no id, name or property can
break the header block (CR/LF) or be mangled by header parsing (spaces, UTF-8).
The device or group is not stored: it is the last token of the subject.

Also the raw write and stream helpers these modules share: a publish that
returns the stream sequence and raises :class:`ApiError` (so callers can tell
"wrong last sequence" apart), pipelined publishes for bulk writes and reads that
stop early. (KV buckets: ``buckets.Bucket``; create-or-update of streams:
``context.ensure_stream``.)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote, unquote

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, RePublish, StreamConfig

from roost.backplane.nats import signals
from roost.backplane.nats.context import API_TIMEOUT, ApiError, Ctx, StoredMsg
from roost.backplane.nats.names import shard_of, token, untoken
from roost.errors import Unavailable
from roost.model import MailboxMessage, MessageKind, Outcome, OutcomeKind

TTL_GRACE = 600  # seconds a message outlives its expiry (the sweep records EXPIRED first)
PARALLEL = 64  # concurrent requests one call keeps in flight
PIPELINE = 4096  # publishes one bulk write keeps in flight

H_ID, H_KIND, H_NAME, H_REF = "Roost-Id", "Roost-Kind", "Roost-Name", "Roost-Ref"
H_CREATED, H_EXPIRES = "Roost-Created", "Roost-Expires"
H_TYPE, H_PROPS = "Roost-Type", "Roost-Props"
_PLAIN = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%"}

T = TypeVar("T")


class PerCtx(Generic[T]):
    """State a module keeps for each running backplane (``Ctx`` has fixed slots).

    Keyed by the ctx's id, checked by identity, dropped by the module's ``stop``.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: dict[int, tuple[Ctx, T]] = {}

    def get(self, ctx: Ctx) -> T:
        found = self._items.get(id(ctx))
        if found is None or found[0] is not ctx:
            found = self._items[id(ctx)] = (ctx, self._factory())
        return found[1]

    def drop(self, ctx: Ctx) -> None:
        self._items.pop(id(ctx), None)

# --- names ----------------------------------------------------------------------------


def mailbox_stream(ctx: Ctx, device_id: str) -> str:
    return ctx.names.stream("mbx", shard_of(device_id, ctx.options.mailbox_shards))


def mailbox_subject(ctx: Ctx, device_id: str) -> str:
    shard = shard_of(device_id, ctx.options.mailbox_shards)
    return ctx.names.subject("mbx", shard, token(device_id))


def group_stream(ctx: Ctx) -> str:
    return ctx.names.stream("groups")


def group_subject(ctx: Ctx, group: str) -> str:
    return ctx.names.subject("grp", token(group))


def log_stream_config(ctx: Ctx, name: str, subjects: str, kind: str) -> StreamConfig:
    """A mailbox shard or the group log: per-message TTLs, kept an hour past the longest,
    every store re-published headers only to ``<prefix>.wake.<kind>.…`` to wake links."""
    return StreamConfig(
        name=name,
        subjects=[subjects],
        allow_msg_ttl=True,
        max_age=ctx.options.ttl_max + 3600.0,
        discard=DiscardPolicy.OLD,
        duplicate_window=120.0,
        republish=RePublish(src=ctx.names.subject(kind, ">"),
                            dest=signals.wake_subject(ctx, f"{kind}.>"), headers_only=True),
    )


def last_token(subject: str) -> str:
    """The id a subject or KV key ends with (a device or a group)."""
    return untoken(subject.rsplit(".", 1)[-1])


# --- message <-> headers ----------------------------------------------------------------


def header_value(value: str) -> str:
    """A header value that survives the NATS header block unchanged (see module doc)."""
    if value and all(c in _PLAIN for c in value):
        return value
    return quote(value, safe="")


def _dec(value: str) -> str:
    return unquote(value) if "%" in value else value


def encode(msg: MailboxMessage) -> dict[str, str]:
    """The headers that carry every field of ``msg`` but the payload, device, group and seq."""
    headers = {
        H_ID: header_value(msg.id),
        H_KIND: msg.kind.value,
        H_NAME: header_value(msg.name),
        H_CREATED: repr(msg.created_at),
        H_EXPIRES: repr(msg.expires_at),
        "Nats-Msg-Id": header_value(msg.id),
        "Nats-TTL": str(ttl_seconds(msg.expires_at)),
    }
    if msg.ref:
        headers[H_REF] = header_value(msg.ref)
    if msg.content_type is not None:
        headers[H_TYPE] = header_value(msg.content_type)
    if msg.props:
        headers[H_PROPS] = header_value(json.dumps(msg.props, separators=(",", ":")))
    return headers


def ttl_seconds(expires_at: float, now: float | None = None) -> int:
    """The server-side TTL: the remaining time plus a grace, so the sweep normally comes first."""
    remaining = expires_at - (time.time() if now is None else now)
    return max(0, math.ceil(remaining)) + TTL_GRACE


def decode(stored: StoredMsg, device: str, group: str | None) -> MailboxMessage:
    h = stored.headers
    props = h.get(H_PROPS)
    content_type = h.get(H_TYPE)
    return MailboxMessage(
        id=_dec(h.get(H_ID, "")),
        device=device,
        kind=MessageKind(h.get(H_KIND, MessageKind.NOTIFICATION.value)),
        name=_dec(h.get(H_NAME, "")),
        payload=stored.data,
        created_at=float(h.get(H_CREATED, "0")),
        expires_at=expires_at(stored),
        ref=_dec(h.get(H_REF, "")),
        content_type=None if content_type is None else _dec(content_type),
        props=json.loads(_dec(props)) if props else {},
        group=group,
        seq=stored.seq,
    )


def expires_at(stored: StoredMsg) -> float:
    return float(stored.headers.get(H_EXPIRES, "0"))


@dataclass(frozen=True, slots=True)
class Brief:
    """What an outcome needs of a stored message (kept by ``mailbox`` so an ack can skip
    reading the message back: a stream sequence never names another message)."""

    subject: str
    id: str
    kind: str
    name: str

    def outcome(self, kind: OutcomeKind, at: float, device: str | None,
                group: str | None = None) -> Outcome:
        return Outcome(id=self.id, device=device, kind=self.kind, name=self.name,
                       outcome=kind, at=at, group=group)


def brief(stored: StoredMsg) -> Brief:
    h = stored.headers
    return Brief(stored.subject, _dec(h.get(H_ID, "")), h.get(H_KIND, ""),
                 _dec(h.get(H_NAME, "")))


def outcome_of(stored: StoredMsg, kind: OutcomeKind, at: float, device: str | None,
               group: str | None = None) -> Outcome:
    """The outcome of a stored message, read from its headers alone."""
    return brief(stored).outcome(kind, at, device, group)


# --- reads ------------------------------------------------------------------------------


async def read_all(ctx: Ctx, stream: str, subject: str, after_seq: int = 0) -> list[StoredMsg]:
    return [m async for m in ctx.scan(stream, subject, after_seq)]


CATCH_UP_DELAYS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1)  # seconds; ~0.2 s in all


async def read_live(ctx: Ctx, stream: str, subject: str, after_seq: int, limit: int,
                    now: float) -> list[StoredMsg]:
    """Up to ``limit`` unexpired messages after ``after_seq``.

    If a wake-up announced a message this read does not see yet (a follower
    replica answered the Direct Get before applying it), read again a few times;
    if it never shows (acknowledged or purged meanwhile), forget the wake-up.
    """
    for delay in (*CATCH_UP_DELAYS, None):
        highest = after_seq

        def keep(m: StoredMsg) -> bool:
            nonlocal highest
            highest = max(highest, m.seq)
            return expires_at(m) > now

        out = await read_some(ctx, stream, subject, after_seq, limit, keep)
        woken = ctx.woken.get(subject, 0)
        if len(out) >= limit or highest >= woken:
            if woken and highest >= woken:
                ctx.woken.pop(subject, None)
            return out
        if delay is None:
            ctx.woken.pop(subject, None)
            return out
        await asyncio.sleep(delay)
    return out


async def read_some(ctx: Ctx, stream: str, subject: str, after_seq: int, limit: int,
                    keep: Callable[[StoredMsg], bool] | None = None) -> list[StoredMsg]:
    """Up to ``limit`` messages after ``after_seq`` (those ``keep`` accepts), asking the
    server for batches no larger than ``limit``."""
    out: list[StoredMsg] = []
    if limit <= 0:
        return out
    async with aclosing(scan(ctx, stream, subject, after_seq, min(limit, 256))) as messages:
        async for m in messages:
            if keep is None or keep(m):
                out.append(m)
                if len(out) >= limit:
                    break
    return out


async def first(ctx: Ctx, stream: str, subject: str) -> StoredMsg | None:
    """The oldest message of ``subject`` (one Direct Get of one message)."""
    async with aclosing(scan(ctx, stream, subject, 0, 1)) as messages:
        async for m in messages:
            return m
    return None


def scan(ctx: Ctx, stream: str, subject: str, after_seq: int,
          batch: int) -> AsyncGenerator[StoredMsg, None]:
    """``ctx.scan`` typed as the async generator it is, for ``aclosing`` when leaving early."""
    return cast(AsyncGenerator[StoredMsg, None], ctx.scan(stream, subject, after_seq, batch))


# --- writes -----------------------------------------------------------------------------


async def store(ctx: Ctx, subject: str, payload: bytes, headers: dict[str, str]) -> int:
    """Publish to a stream and wait for its ack; returns the sequence (raises ``ApiError``)."""
    try:
        msg = await ctx.nc.request(subject, payload, timeout=API_TIMEOUT, headers=headers)
    except nats.errors.NoRespondersError as exc:
        raise Unavailable(f"no stream stores {subject}") from exc
    except nats.errors.TimeoutError as exc:
        raise Unavailable(f"JetStream did not acknowledge {subject} in time") from exc
    return _seq_of(json.loads(msg.data or b"{}"))


def _seq_of(reply: dict[str, Any]) -> int:
    error = reply.get("error")
    if error:
        raise ApiError(error.get("code", 0), error.get("err_code", 0),
                       error.get("description", ""))
    return int(reply["seq"])


async def store_many(ctx: Ctx, items: Sequence[tuple[str, bytes, dict[str, str]]]
                     ) -> list[int | ApiError]:
    """Pipelined publishes: a sequence, or the JetStream error, for each item, in order.

    All acks come to one inbox subscription and up to ``PIPELINE`` publishes are
    in flight. (Not ``js.publish_async``: nats-py 2.16 raises a JetStream error in
    its reply handler instead of failing the future, which then never completes.)
    """
    if len(items) == 1:  # the common case (one outcome): a plain request, no inbox to set up
        try:
            return [await store(ctx, *items[0])]
        except ApiError as exc:
            return [exc]
    acks = _Acks(len(items))
    inbox = ctx.nc.new_inbox()
    sub = await ctx.nc.subscribe(f"{inbox}.*", cb=acks.on_reply)
    try:
        for i, (subject, payload, headers) in enumerate(items):
            await acks.slot()
            await ctx.nc.publish(subject, payload, reply=f"{inbox}.{i}", headers=headers)
        await acks.all_in()
    finally:
        await sub.unsubscribe()
    return acks.results()


class _Acks:
    """The acks of one ``store_many``: a window of free slots and a result per item."""

    def __init__(self, count: int) -> None:
        self._results: list[int | ApiError | None] = [None] * count
        self._missing = count
        self._free = asyncio.Semaphore(PIPELINE)
        self._done = asyncio.Event()
        if count == 0:
            self._done.set()

    async def slot(self) -> None:
        if not self._free.locked():
            # returns without yielding, so nats-py sends the publishes in large writes
            await self._free.acquire()
            return
        try:
            await asyncio.wait_for(self._free.acquire(), API_TIMEOUT)
        except TimeoutError as exc:
            raise Unavailable("JetStream stopped acknowledging writes") from exc

    async def on_reply(self, msg: Msg) -> None:
        i = int(msg.subject.rsplit(".", 1)[-1])
        if self._results[i] is not None:
            return
        status = (msg.headers or {}).get("Status")
        if status is not None and not msg.data:
            self._results[i] = ApiError(int(status), 0, "no stream stores this subject")
        else:
            try:
                self._results[i] = _seq_of(json.loads(msg.data or b"{}"))
            except ApiError as exc:
                self._results[i] = exc
        self._missing -= 1
        self._free.release()
        if self._missing == 0:
            self._done.set()

    async def all_in(self) -> None:
        try:
            await asyncio.wait_for(self._done.wait(), API_TIMEOUT)
        except TimeoutError as exc:
            raise Unavailable("JetStream did not acknowledge the writes in time") from exc

    def results(self) -> list[int | ApiError]:
        if self._missing:
            raise Unavailable("JetStream did not acknowledge every write")
        return cast(list[int | ApiError], self._results)


async def purge(ctx: Ctx, stream: str, subject: str, before_seq: int | None = None) -> int:
    """Remove every message of ``subject`` (below ``before_seq`` if given); returns how many."""
    request: dict[str, Any] = {"filter": subject}
    if before_seq is not None:
        request["seq"] = before_seq
    reply = await ctx.api(f"STREAM.PURGE.{stream}", request)
    return int(reply.get("purged", 0))


async def delete_each(ctx: Ctx, stream: str, messages: Sequence[StoredMsg]) -> list[StoredMsg]:
    """Delete the messages; returns those this call deleted (the exactly-once gate)."""
    gone = await bounded(ctx.delete_msg(stream, m.seq) for m in messages)
    return [m for m, deleted in zip(messages, gone, strict=True) if deleted]


async def bounded(calls: Iterable[Awaitable[T]], parallel: int = PARALLEL) -> list[T]:
    """Await ``calls`` concurrently, at most ``parallel`` at a time, results in order.

    A fixed pool of workers pulls from ``calls``, so 100k calls cost ``parallel``
    tasks, not 100k. The first failure cancels the rest and is raised.
    """
    pending = list(calls)
    results: list[T | None] = [None] * len(pending)
    cursor = iter(range(len(pending)))

    async def worker() -> None:
        for i in cursor:
            results[i] = await pending[i]

    workers = [asyncio.ensure_future(worker()) for _ in range(min(parallel, len(pending)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        for i in cursor:  # never started: close them so none is left un-awaited
            call = pending[i]
            if asyncio.iscoroutine(call):
                call.close()
        raise
    return cast(list[T], results)

