"""KV buckets of the registry and presence modules, with raw compare-and-set.

A bucket is a JetStream stream ``KV_<bucket>`` keeping one message per key
(``$KV.<bucket>.<key>``), readable by Direct Get on any node. nats-py's
``KeyValue`` hides the revision of delete markers and has no pipelined create;
this thin wrapper works on the stream directly, so that

* every write can be a compare-and-set on the key's last revision
  (``Nats-Expected-Last-Subject-Sequence``; 0 means "no message"),
* deletes either leave a purge marker (seen by watchers: the device index) or
  erase the key outright (no marker left behind, for buckets nobody watches),
* a bulk create can publish thousands of keys pipelined.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.js import api
from nats.js.errors import APIError

from roost.backplane.nats.context import Ctx, StoredMsg

KV_OP = "KV-Operation"
EXPECT_LAST = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST = frozenset({10071, 10164})  # JetStream: wrong last subject sequence
IN_USE = 10058  # stream name already in use with a different configuration
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
        try:
            await self.ctx.jsm.add_stream(config)
        except APIError as exc:
            if exc.err_code != IN_USE:
                raise
            await self.ctx.jsm.update_stream(config)

    # --- reads --------------------------------------------------------------------------

    async def entry(self, key: str) -> Entry | None:
        """The key's last message (a marker included); None if the key has none."""
        msg = await self.ctx.last_msg(self.stream, self.subject(key))
        return None if msg is None else _entry(msg)

    async def get(self, key: str) -> bytes | None:
        """The key's value; None if it was never written or was deleted."""
        found = await self.entry(key)
        return None if found is None else found.value

    async def scan(self, keys: str = ">") -> AsyncIterator[tuple[str, int, bytes]]:
        """``(key, revision, value)`` of every live key matching ``keys`` (a subject filter)."""
        async for msg in self.ctx.scan(self.stream, self.subject(keys)):
            entry = _entry(msg)
            if entry.value is not None:
                yield msg.subject[len(self.prefix):], entry.revision, entry.value

    # --- writes -------------------------------------------------------------------------

    async def put(self, key: str, value: bytes) -> int:
        ack = await self.ctx.js.publish(self.subject(key), value)
        return ack.seq

    async def cas(self, key: str, value: bytes, last: int, msg_id: str | None = None) -> int:
        """Write if the key's last revision is ``last`` (0: none); raise ``Conflict``.

        ``msg_id`` deduplicates a retried publish (JetStream answers with the first ack).
        """
        headers = {EXPECT_LAST: str(last)}
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        try:
            ack = await self.ctx.js.publish(self.subject(key), value, headers=headers)
        except APIError as exc:
            if exc.err_code in WRONG_LAST:
                raise Conflict(key) from exc
            raise
        return ack.seq

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

    async def remove(self, key: str, last: int | None = None, ttl: float | None = None) -> int:
        """Leave a purge marker (watchers see it) that rolls up the key's history.

        ``last`` makes it a compare-and-set (``Conflict``); ``ttl`` lets the
        marker itself vanish later, so removed keys do not pile up.
        """
        headers = {KV_OP: "PURGE", "Nats-Rollup": "sub"}
        if last is not None:
            headers[EXPECT_LAST] = str(last)
        if ttl is not None:
            headers["Nats-TTL"] = f"{int(ttl)}s"
        try:
            ack = await self.ctx.js.publish(self.subject(key), b"", headers=headers)
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
