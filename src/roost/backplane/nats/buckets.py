"""KV buckets with raw compare-and-set, for every module that keeps records by key.

A bucket is a JetStream stream ``KV_<bucket>`` keeping one message per key
(``$KV.<bucket>.<key>``), readable by Direct Get on any node. nats-py's
``KeyValue`` hides the revision of delete markers, has no pipelined create,
and cannot put a per-message TTL on a write nor extra headers on a delete
marker; this thin wrapper works on the stream directly, so that

* every write can be a compare-and-set on the key's last revision
  (``Nats-Expected-Last-Subject-Sequence``; 0 means "no message"),
* every write and marker can carry a ``Nats-TTL``, so nothing piles up,
* deletes either leave a purge marker (seen by watchers: the device index; it
  may carry headers: ``inquiries`` keeps the revision it reflects there) or
  erase the key outright (no marker left behind, for buckets nobody watches),
* a bulk create can publish thousands of keys pipelined.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.js import api
from nats.js.errors import APIError

from roost.backplane.nats.context import (
    WRONG_LAST,
    Ctx,
    StoredMsg,
    ensure_stream,
    write_headers,
)

KV_OP = "KV-Operation"
DUPLICATE_WINDOW = 120.0


@dataclass(frozen=True, slots=True)
class Entry:
    """The last message of a key: ``value`` is None for a delete/purge marker."""

    revision: int
    value: bytes | None


class Conflict(Exception):
    """The key's last revision was not the expected one (another writer got there first)."""


class Bucket:
    """One KV bucket of this installation (named through ``ctx.names``)."""

    __slots__ = ("ctx", "name", "stream", "prefix")

    def __init__(self, ctx: Ctx, what: str) -> None:
        self.ctx = ctx
        self.name = ctx.names.bucket(what)
        self.stream = f"KV_{self.name}"
        self.prefix = f"$KV.{self.name}."

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
            duplicate_window=DUPLICATE_WINDOW,
            max_consumers=-1,
            max_msgs=-1,
            max_msgs_per_subject=1,
            num_replicas=self.ctx.options.replicas,
            storage=api.StorageType.FILE,
        )
        await ensure_stream(self.ctx, config)

    # --- reads --------------------------------------------------------------------------

    async def last(self, key: str) -> StoredMsg | None:
        """The key's last message, a removal marker included (see :func:`is_marker`)."""
        return await self.ctx.last_msg(self.stream, self.subject(key))

    async def entry(self, key: str) -> Entry | None:
        """The key's last message (a marker included); None if the key has none."""
        msg = await self.last(key)
        return None if msg is None else _entry(msg)

    async def get(self, key: str) -> bytes | None:
        """The key's value; None if it was never written or was deleted."""
        found = await self.entry(key)
        return None if found is None else found.value

    async def last_msgs(self, keys: str = ">") -> AsyncIterator[StoredMsg]:
        """The last message of every key matching ``keys``, markers included, in write order."""
        async for msg in self.ctx.scan(self.stream, self.subject(keys)):
            yield msg

    async def scan(self, keys: str = ">") -> AsyncIterator[tuple[str, int, bytes]]:
        """``(key, revision, value)`` of every live key matching ``keys`` (a subject filter)."""
        async for msg in self.last_msgs(keys):
            entry = _entry(msg)
            if entry.value is not None:
                yield self.key_of(msg), entry.revision, entry.value

    # --- writes -------------------------------------------------------------------------

    async def write(self, key: str, value: bytes, *, last: int | None = None,
                    ttl: float | None = None, msg_id: str | None = None) -> int:
        """Store ``value``; with ``last`` only if that is the key's revision (else ``Conflict``).

        ``ttl`` lets the value vanish later; ``msg_id`` deduplicates a retried
        publish (JetStream answers with the first ack).
        """
        return await self._publish(key, value, write_headers(last, ttl, msg_id))

    async def put(self, key: str, value: bytes) -> int:
        return await self.write(key, value)

    async def cas(self, key: str, value: bytes, last: int, msg_id: str | None = None) -> int:
        """Write if the key's last revision is ``last`` (0: none); raise ``Conflict``."""
        return await self.write(key, value, last=last, msg_id=msg_id)

    async def create(self, key: str, value: bytes, msg_id: str | None = None) -> int | None:
        """Write only if the key holds no value; its revision, or None if it has one."""
        last = 0
        while True:
            try:
                return await self.cas(key, value, last, msg_id)
            except Conflict:
                found = await self.entry(key)  # a delete marker may stand in the way
                if found is not None and found.value is not None:
                    return None
                last = 0 if found is None else found.revision

    async def remove(self, key: str, last: int | None = None, ttl: float | None = None,
                     extra: dict[str, str] | None = None) -> int:
        """Leave a purge marker (watchers see it) that rolls up the key's history.

        ``last`` makes it a compare-and-set (``Conflict``); ``ttl`` lets the
        marker itself vanish later, so removed keys do not pile up; ``extra``
        headers ride on the marker.
        """
        headers = write_headers(last, ttl)
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

    async def erase(self, key: str) -> int:
        """Remove the key, leaving nothing behind (for buckets nobody watches).

        Returns how many messages went: 0 if the key was gone already.
        """
        reply = await self.ctx.api(f"STREAM.PURGE.{self.stream}", {"filter": self.subject(key)})
        return int(reply.get("purged", 0))


def is_marker(headers: dict[str, str] | None) -> bool:
    """Whether a stored KV message is a delete or purge marker rather than a value."""
    if not headers:
        return False
    return headers.get(KV_OP) in ("DEL", "PURGE") or "Nats-Marker-Reason" in headers


def _entry(msg: StoredMsg) -> Entry:
    return Entry(msg.seq, None if is_marker(msg.headers) else msg.data)
