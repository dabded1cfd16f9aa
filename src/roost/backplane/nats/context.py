"""What every resource module of the NATS backplane works with: one :class:`Ctx`.

It holds the connection, the JetStream contexts, the names and the options, and
the few raw JetStream requests nats-py does not wrap (batched Direct Get, message
delete that tells "gone already" apart from failure).

Also what both kinds of storage share (KV buckets in ``buckets``, message
streams in ``messages``): create-or-update of a stream and the write headers
JetStream acts on (expected last sequence, per-message TTL). They live here,
below both, so a bucket does not depend on how mailbox messages are encoded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import APIError
from nats.js.manager import JetStreamManager

from roost.backplane.base import SignalBus
from roost.backplane.nats.names import Names
from roost.errors import Unavailable

API_TIMEOUT = 5.0  # seconds for one JetStream API request
DIRECT_BATCH = 256  # messages per batched Direct Get request

EXPECT_LAST = "Nats-Expected-Last-Subject-Sequence"  # 0 means "the subject has no message"
WRONG_LAST = frozenset({10071, 10164})  # JetStream err_code: wrong last subject sequence
STREAM_IN_USE = 10058  # JetStream err_code: stream exists with another configuration


@dataclass(slots=True)
class NatsOptions:
    """How the cluster backplane lays out its streams (fixed when they are created)."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    prefix: str = "roost"
    replicas: int = 1  # 3 on a 3-server cluster (see docs/clustering.md)
    mailbox_shards: int = 4  # mailbox streams ROOST_MBX_0..n-1
    # The server's own bound on one mailbox, under the node's depth check: a safety net
    # (expired messages not yet swept count too, so it sits well above the depth limit)
    mailbox_cap: int = 1100
    telemetry_partitions: int = 4  # telemetry streams ROOST_TLM_0..n-1
    ttl_max: float = 48 * 3600.0  # longest message TTL (mailbox and group streams keep this)
    telemetry_retention: float = 24 * 3600.0
    telemetry_max_records: int = 10_000_000
    telemetry_ack_timeout: float = 30.0
    feedback_retention: float = 24 * 3600.0
    inquiry_lease: float = 30.0
    name: str = "roost"  # connection name, shown by nats-server


@dataclass(slots=True)
class StoredMsg:
    """One message read back from a stream."""

    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]


class Ctx:
    """Shared state of one NATS backplane instance (one per node)."""

    __slots__ = ("nc", "js", "jsm", "names", "options", "signals", "node", "woken")

    def __init__(self, nc: Client, names: Names, options: NatsOptions, signals: SignalBus,
                 node: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=API_TIMEOUT)
        self.jsm: JetStreamManager = nc.jsm(timeout=API_TIMEOUT)
        self.names = names
        self.options = options
        self.signals = signals
        self.node = node
        # stream subject -> highest sequence a RePublish wake-up announced for it: with
        # replicas, Direct Get may be answered by a follower that has not applied that
        # message yet, so a read after a wake-up retries until it sees it (messages.read_live)
        self.woken: dict[str, int] = {}

    # --- raw JetStream requests -----------------------------------------------------

    async def api(self, subject: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
        """One ``$JS.API.<subject>`` request; raise ``Unavailable`` on a JetStream error."""
        payload = b"" if request is None else json.dumps(request).encode()
        msg = await self.nc.request(f"$JS.API.{subject}", payload, timeout=API_TIMEOUT)
        reply: dict[str, Any] = json.loads(msg.data or b"{}")
        error = reply.get("error")
        if error:
            raise ApiError(error.get("code", 0), error.get("err_code", 0),
                           error.get("description", ""))
        return reply

    async def delete_msg(self, stream: str, seq: int) -> bool:
        """Delete one message; True if this call deleted it, False if it was gone already."""
        try:
            await self.api(f"STREAM.MSG.DELETE.{stream}", {"seq": seq, "no_erase": True})
        except ApiError as exc:
            if exc.err_code in (10043, 10057):  # sequence not found / delete failed (gone)
                return False
            raise
        return True

    async def get_msg(self, stream: str, seq: int) -> StoredMsg | None:
        """Direct Get of one message by sequence; None if there is none."""
        return await self._direct_one(stream, {"seq": seq})

    async def last_msg(self, stream: str, subject: str) -> StoredMsg | None:
        return await self._direct_one(stream, {"last_by_subj": subject})

    async def _direct_one(self, stream: str, request: dict[str, Any]) -> StoredMsg | None:
        msg = await self.nc.request(f"$JS.API.DIRECT.GET.{stream}",
                                    json.dumps(request).encode(), timeout=API_TIMEOUT)
        return _stored(msg)

    async def read(self, stream: str, subject: str, after_seq: int,
                   limit: int) -> list[StoredMsg]:
        """Messages of ``subject`` (may hold wildcards) with seq > ``after_seq``, in order.

        Uses batched Direct Get (one request per ``DIRECT_BATCH`` messages), so it
        needs no consumer and works on any node.
        """
        out: list[StoredMsg] = []
        async for msg in self.scan(stream, subject, after_seq):
            out.append(msg)
            if len(out) >= limit:
                break
        return out

    async def scan(self, stream: str, subject: str, after_seq: int = 0,
                   batch: int = DIRECT_BATCH) -> AsyncIterator[StoredMsg]:
        """Every message of ``subject`` with seq > ``after_seq``, in seq order, lazily."""
        seq = after_seq + 1
        while True:
            got = await self._direct_batch(stream, subject, seq, batch)
            for msg in got:
                yield msg
            if len(got) < batch:
                return
            seq = got[-1].seq + 1

    async def _direct_batch(self, stream: str, subject: str, seq: int,
                            batch: int) -> list[StoredMsg]:
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        out: list[StoredMsg] = []
        try:
            request = {"seq": seq, "next_by_subj": subject, "batch": batch}
            await self.nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(),
                                  reply=inbox)
            while True:
                msg = await sub.next_msg(timeout=API_TIMEOUT)
                stored = _stored(msg)
                if stored is None:  # 404 (nothing) or 204 (end of batch)
                    return out
                out.append(stored)
                if len(out) >= batch:
                    # the server still sends the end-of-batch marker; don't wait for it
                    return out
        finally:
            await sub.unsubscribe()


# --- streams and write headers ------------------------------------------------------


async def ensure_stream(ctx: Ctx, config: api.StreamConfig) -> None:
    """Create the stream, or bring its configuration up to date; safe when nodes race.

    Every Roost stream is file-backed, replicated as configured and readable by
    Direct Get on any node, so those three are set here.
    """
    config.storage = api.StorageType.FILE
    config.num_replicas = ctx.options.replicas
    config.allow_direct = True
    try:
        await ctx.jsm.add_stream(config)
    except APIError as exc:
        if exc.err_code != STREAM_IN_USE:
            raise
        await ctx.jsm.update_stream(config)


def write_headers(last: int | None = None, ttl: float | None = None,
                  msg_id: str | None = None) -> dict[str, str]:
    """Headers of a write: compare-and-set on ``last``, a ``Nats-TTL``, a dedup id."""
    headers: dict[str, str] = {}
    if last is not None:
        headers[EXPECT_LAST] = str(last)
    if ttl is not None:
        headers["Nats-TTL"] = ttl_header(ttl)
    if msg_id is not None:
        headers["Nats-Msg-Id"] = msg_id
    return headers


def ttl_header(seconds: float) -> str:
    """A ``Nats-TTL`` value: whole seconds, at least one."""
    return f"{max(1, int(seconds + 0.999))}s"


class ApiError(Unavailable):
    """A JetStream API request failed (``status`` is HTTP-like, ``err_code`` is NATS's own)."""

    def __init__(self, status: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream error {status}/{err_code}: {description}")
        self.status = status
        self.err_code = err_code
        self.description = description


def _stored(msg: Msg) -> StoredMsg | None:
    headers = dict(msg.headers or {})
    status = headers.get("Status")
    if status is not None and not msg.data:
        if status in ("404", "204", "408"):
            return None
        raise ApiError(int(status), 0, headers.get("Description", ""))
    return StoredMsg(
        subject=headers.get("Nats-Subject", ""),
        seq=int(headers.get("Nats-Sequence", "0")),
        data=msg.data or b"",
        headers=headers,
    )
