"""Compare-and-set records in a KV bucket, for telemetry leases and inquiries.

A bucket is the JetStream stream ``KV_<bucket>`` keeping the last message of
each key (``$KV.<bucket>.<key>``). nats-py's ``KeyValue`` cannot put a
per-message TTL on a write nor extra headers on a delete marker, which these
modules need, so this works on the stream directly:

* every write can be a compare-and-set on the key's last revision
  (``Nats-Expected-Last-Subject-Sequence``; 0 means "the key has no message"),
* every write and marker can carry a ``Nats-TTL``, so nothing piles up,
* a removal is a purge marker that may carry headers (``inquiries`` keeps the
  revision of the record it reflects there),
* reads are Direct Gets, so any node reads the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.js import api
from nats.js.errors import APIError

from roost.backplane.nats.context import Ctx, StoredMsg

EXPECT_LAST = "Nats-Expected-Last-Subject-Sequence"
KV_OP = "KV-Operation"
WRONG_LAST = frozenset({10071, 10164})  # JetStream: wrong last subject sequence
IN_USE = 10058  # stream name already in use with a different configuration


class Conflict(Exception):
    """The key's last revision was not the expected one: another writer got there first."""


class KvStore:
    """One KV bucket of this installation, named through ``ctx.names``."""

    __slots__ = ("ctx", "stream", "prefix")

    def __init__(self, ctx: Ctx, what: str) -> None:
        self.ctx = ctx
        name = ctx.names.bucket(what)
        self.stream = f"KV_{name}"
        self.prefix = f"$KV.{name}."

    def subject(self, key: str) -> str:
        return self.prefix + key

    def key_of(self, msg: StoredMsg) -> str:
        return msg.subject[len(self.prefix):]

    async def ensure(self) -> None:
        """Create the bucket's stream, or bring an existing one to this config."""
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}>"],
            allow_direct=True,
            allow_rollup_hdrs=True,
            allow_msg_ttl=True,
            deny_delete=True,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=120.0,
            max_msgs_per_subject=1,
            num_replicas=self.ctx.options.replicas,
            storage=api.StorageType.FILE,
        )
        await ensure_stream(self.ctx, config)

    async def last(self, key: str) -> StoredMsg | None:
        """The key's last message, a removal marker included (see :func:`is_marker`)."""
        return await self.ctx.last_msg(self.stream, self.subject(key))

    async def scan(self, keys: str = ">") -> AsyncIterator[StoredMsg]:
        """The last message of every key matching ``keys``, markers included, in write order."""
        async for msg in self.ctx.scan(self.stream, self.subject(keys)):
            yield msg

    async def write(self, key: str, value: bytes, *, last: int | None = None,
                    ttl: float | None = None) -> int:
        """Store ``value``; with ``last`` only if that is the key's revision (else ``Conflict``)."""
        return await self._publish(key, value, _headers(last, ttl))

    async def remove(self, key: str, *, last: int | None = None, ttl: float | None = None,
                     extra: dict[str, str] | None = None) -> int:
        """Leave a purge marker that rolls up the key's history; ``ttl`` lets it vanish later."""
        headers = _headers(last, ttl)
        headers.update({KV_OP: "PURGE", "Nats-Rollup": "sub", **(extra or {})})
        return await self._publish(key, b"", headers)

    async def _publish(self, key: str, value: bytes, headers: dict[str, str]) -> int:
        try:
            ack = await self.ctx.js.publish(self.subject(key), value, headers=headers or None)
        except APIError as exc:
            if exc.err_code in WRONG_LAST:
                raise Conflict(key) from exc
            raise
        return ack.seq


async def ensure_stream(ctx: Ctx, config: api.StreamConfig) -> None:
    """Create the stream, or bring an existing one to ``config``; safe when nodes race."""
    try:
        await ctx.jsm.add_stream(config)
    except APIError as exc:
        if exc.err_code != IN_USE:
            raise
        await ctx.jsm.update_stream(config)


def is_marker(msg: StoredMsg) -> bool:
    """Whether a stored KV message is a delete or purge marker rather than a value."""
    return msg.headers.get(KV_OP) in ("DEL", "PURGE") or "Nats-Marker-Reason" in msg.headers


def ttl_header(seconds: float) -> str:
    """A ``Nats-TTL`` value: whole seconds, at least one."""
    return f"{max(1, int(seconds + 0.999))}s"


def _headers(last: int | None, ttl: float | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if last is not None:
        headers[EXPECT_LAST] = str(last)
    if ttl is not None:
        headers["Nats-TTL"] = ttl_header(ttl)
    return headers
