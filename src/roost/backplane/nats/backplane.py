"""The cluster backplane: NATS JetStream streams and KV buckets, signals over NATS.

Stateless: everything lives in JetStream, so any node can serve any device and
a node that dies loses nothing. Each method delegates to one resource module;
each module owns its streams/buckets (``setup``) and announces its own signals
after the write is acknowledged by JetStream (see ``signals``):

* ``registry``  — devices, API tokens, meta (KV buckets)
* ``presence``  — presence with compare-and-set, MQTT sessions (KV buckets)
* ``mailbox``   — sharded mailbox streams: per-subject limits, per-message TTL,
  RePublish wake-ups, Direct Get reads, delete to ack
* ``groups``    — group/broadcast logs and per-device cursors and marks
* ``expiry``    — expired-message sweep (exactly one EXPIRED outcome per message,
  however many nodes sweep)
* ``feedback``  — the outcomes stream
* ``telemetry`` — partitioned streams, one durable pull consumer per consumer group
* ``inquiries`` — inquiry records and the take/lease queue
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from roost.backplane.base import Backplane, SignalBus
from roost.backplane.nats import (
    expiry,
    feedback,
    groups,
    inquiries,
    mailbox,
    presence,
    registry,
    signals,
    telemetry,
)
from roost.backplane.nats.context import API_TIMEOUT, Ctx, NatsOptions
from roost.backplane.nats.names import Names
from roost.errors import InvalidInput, RoostError, Unavailable
from roost.model import (
    ApiToken,
    Device,
    Inquiry,
    InquiryState,
    MailboxMessage,
    Outcome,
    Presence,
    Session,
    TelemetryBatch,
    TelemetryRecord,
)

log = logging.getLogger(__name__)

# Seconds to reach one NATS server, at start and on every reconnect: short, because a
# reconnect that tries a dead server first waits this long before the next one
CONNECT_TIMEOUT = 3.0
FIRST_CONNECT_TIMEOUT = 15.0  # seconds for the first connection to any of the servers
OFFLINE_GRACE = 2.0  # seconds without any NATS server before calls fail at once
CLOSE_TIMEOUT = 10.0  # seconds close() may take before it leaves the rest behind
JETSTREAM_READY_TIMEOUT = 60.0  # seconds for a starting cluster to elect its leaders
P = ParamSpec("P")
T = TypeVar("T")
NatsBackplaneT = TypeVar("NatsBackplaneT", bound=Backplane)
_MODULES = (registry, presence, mailbox, groups, feedback, telemetry, inquiries)


def _guarded(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn NATS failures (timeouts, no responders, a closed connection) into ``Unavailable``.

    So the API answers 503 and MQTT a "server unavailable" reason while JetStream
    cannot serve, never a 500; Roost's own errors pass through. Once the node has
    been cut off from every NATS server for ``OFFLINE_GRACE``, calls fail at once
    instead of each waiting out its timeout; within the grace (a server failover)
    nats-py holds them until it has reconnected.
    """

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        offline = args[0]._offline_for()  # type: ignore[attr-defined]
        if offline > OFFLINE_GRACE:
            raise Unavailable(f"no NATS server reachable for {offline:.0f} s")
        try:
            return await method(*args, **kwargs)
        except RoostError:
            raise
        except (nats.errors.Error, TimeoutError, ConnectionError) as exc:
            raise Unavailable(f"the NATS backplane cannot serve: {exc!r}") from exc

    return guarded


def _guard_all(cls: type[NatsBackplaneT]) -> type[NatsBackplaneT]:
    for name, value in list(vars(cls).items()):
        if not name.startswith("_") and name not in ("start", "close") and (
            inspect.iscoroutinefunction(value)
        ):
            setattr(cls, name, _guarded(value))
    return cls


@_guard_all
class NatsBackplane(Backplane):
    """The cluster backplane; ``options.servers`` are the NATS URLs to connect to."""

    def __init__(self, options: NatsOptions, *, node: str = "local") -> None:
        self.options = options
        self.node = node
        self.names = Names(options.prefix)
        self.signals = SignalBus()
        self._nc: Client | None = None
        self._ctx: Ctx | None = None
        self._subs: list[Subscription] = []
        self._starting = asyncio.Lock()
        self._last_error = ""
        self._offline_since: float | None = None  # loop time the connection was lost
        self._connection = 0  # which start() the connection callbacks belong to

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        async with self._starting:
            if self._ctx is not None:
                return
            self._offline_since = None
            self._connection += 1
            connection = self._connection
            try:
                # nats-py retries a first connect forever when reconnects are
                # unlimited; a node that cannot reach NATS at start should say so
                nc = await asyncio.wait_for(nats.connect(
                    list(self.options.servers),
                    name=f"{self.options.name}:{self.node}",
                    connect_timeout=CONNECT_TIMEOUT,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    allow_reconnect=True,
                    error_cb=self._log_error,
                    disconnected_cb=functools.partial(self._on_disconnected, connection),
                    reconnected_cb=functools.partial(self._on_reconnected, connection),
                ), FIRST_CONNECT_TIMEOUT)
            except Exception as exc:  # nats-py raises several unrelated types here
                raise Unavailable(
                    f"cannot reach NATS at {', '.join(self.options.servers)}: "
                    f"{str(exc) or 'no server answered in time'}"
                ) from exc
            ctx = Ctx(nc, self.names, self.options, self.signals, self.node)
            try:
                await _wait_for_jetstream(ctx)
                for module in _MODULES:
                    await module.setup(ctx)
                self._subs = await signals.listen(ctx)
                await nc.flush(int(API_TIMEOUT))
            except BaseException:
                await nc.close()
                raise
            self._nc, self._ctx = nc, ctx

    async def close(self) -> None:
        """Flush what is pending and disconnect; never fails, and never takes longer
        than ``CLOSE_TIMEOUT`` (with NATS gone, what could not be written is logged)."""
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        subs, self._subs = self._subs, []
        closing = asyncio.ensure_future(_close(ctx, subs))
        # asyncio.wait, not wait_for: nats-py swallows the cancellation wait_for relies on
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT)
        if not done:
            log.warning("closing the NATS connection took over %.0f s; closing it now, "
                        "unflushed", CLOSE_TIMEOUT)
            closing.add_done_callback(_retrieve)
            # what the flush waits on fails once the connection is closed, so the process
            # can exit (asyncio waits for leftover tasks)
            await asyncio.wait({asyncio.ensure_future(ctx.nc.close())}, timeout=CLOSE_TIMEOUT)
        elif closing.exception() is not None:
            log.warning("closing the NATS connection: %s", closing.exception())

    async def check(self) -> None:
        ctx = self._c()
        if not ctx.nc.is_connected:
            raise Unavailable("the NATS backplane is not connected")
        try:
            await ctx.api("INFO")
        except Exception as exc:
            raise Unavailable(f"JetStream cannot serve: {exc}") from exc

    async def _log_error(self, exc: Exception) -> None:
        """Log a connection error once, not on every reconnect attempt."""
        text = str(exc) or type(exc).__name__
        if text != self._last_error:
            self._last_error = text
            log.warning("NATS connection: %s", text)

    async def _on_disconnected(self, connection: int) -> None:
        if connection == self._connection and self._ctx is not None and (
                self._offline_since is None):
            self._offline_since = asyncio.get_running_loop().time()

    async def _on_reconnected(self, connection: int) -> None:
        if connection != self._connection:
            return
        self._offline_since = None
        self._last_error = ""
        log.warning("NATS connection: reconnected to %s", self._nc.connected_url.netloc
                    if self._nc is not None and self._nc.connected_url else "a server")

    def _offline_for(self) -> float:
        """Seconds since the connection to NATS was lost (0 while connected)."""
        if self._offline_since is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._offline_since

    def _c(self) -> Ctx:
        if self._ctx is None:
            raise Unavailable("the NATS backplane was not started")
        return self._ctx

    @property
    def ctx(self) -> Ctx:
        """The shared state (for the ``roost cluster`` commands and tests)."""
        return self._c()

    # --- small settings ---------------------------------------------------------------

    async def meta_get(self, key: str) -> str | None:
        return await registry.meta_get(self._c(), key)

    async def meta_put_if_absent(self, key: str, value: str) -> str:
        return await registry.meta_put_if_absent(self._c(), key, value)

    # --- registry ---------------------------------------------------------------------

    async def device_create(self, device: Device) -> None:
        await registry.device_create(self._c(), device)

    async def device_import(self, devices: Sequence[Device]) -> int:
        return await registry.device_import(self._c(), devices)

    async def device_get(self, device_id: str) -> Device | None:
        return await registry.device_get(self._c(), device_id)

    async def device_update(self, device: Device) -> None:
        await registry.device_update(self._c(), device)

    async def device_delete(self, device_id: str) -> bool:
        return await registry.device_delete(self._c(), device_id)

    async def device_list(
        self, after: str | None, limit: int, group: str | None = None
    ) -> list[Device]:
        return await registry.device_list(self._c(), after, limit, group)

    async def device_count(self) -> int:
        return await registry.device_count(self._c())

    async def device_touch(self, device_id: str, last_seen: float) -> None:
        await presence.device_touch(self._c(), device_id, last_seen)

    # --- API tokens -------------------------------------------------------------------

    async def token_create(self, token: ApiToken) -> None:
        await registry.token_create(self._c(), token)

    async def token_find(self, token_hash: str) -> ApiToken | None:
        return await registry.token_find(self._c(), token_hash)

    async def token_list(self) -> list[ApiToken]:
        return await registry.token_list(self._c())

    async def token_delete(self, token_id: str) -> bool:
        return await registry.token_delete(self._c(), token_id)

    # --- mailboxes --------------------------------------------------------------------

    async def mailbox_put(self, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
        return await mailbox.put(self._c(), msg, max_depth)

    async def mailbox_read(
        self, device_id: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        return await mailbox.read(self._c(), device_id, after_seq, limit, now)

    async def mailbox_depth(self, device_id: str, now: float) -> int:
        return await mailbox.depth(self._c(), device_id, now)

    async def mailbox_mark_sent(self, device_id: str, seqs: Sequence[int]) -> None:
        await mailbox.mark_sent(self._c(), device_id, seqs)

    async def mailbox_ack(self, device_id: str, seqs: Sequence[int], at: float) -> list[Outcome]:
        return await mailbox.ack(self._c(), device_id, seqs, at)

    async def mailbox_purge(self, device_id: str, at: float) -> list[Outcome]:
        return await mailbox.purge(self._c(), device_id, at)

    # --- group logs -------------------------------------------------------------------

    async def group_put(self, msg: MailboxMessage) -> MailboxMessage:
        if not msg.group:
            raise InvalidInput("a group message needs its group set")
        return await groups.put(self._c(), msg)

    async def group_read(
        self, group: str, after_seq: int, limit: int, now: float
    ) -> list[MailboxMessage]:
        return await groups.read(self._c(), group, after_seq, limit, now)

    async def group_cursors(self, device_id: str) -> dict[str, int]:
        return await groups.cursors(self._c(), device_id)

    async def group_marks(self, device_id: str) -> dict[str, int]:
        return await groups.marks(self._c(), device_id)

    async def group_mark_sent(self, device_id: str, group: str, seq: int) -> None:
        await groups.mark_sent(self._c(), device_id, group, seq)

    async def group_ack(self, device_id: str, group: str, seq: int) -> None:
        await groups.ack(self._c(), device_id, group, seq)

    # --- expiry -----------------------------------------------------------------------

    async def expire(self, now: float) -> list[Outcome]:
        ctx = self._c()
        outcomes = await expiry.expire_messages(ctx, now)
        await inquiries.expire_inquiries(ctx, now)
        await presence.expire_sessions(ctx, now)
        return outcomes

    # --- telemetry --------------------------------------------------------------------

    async def telemetry_append(self, records: Sequence[TelemetryRecord]) -> None:
        if records:
            await telemetry.append(self._c(), records)

    async def telemetry_fetch(
        self,
        group: str,
        max_records: int,
        ack_timeout: float,
        now: float,
        from_latest: bool = False,
    ) -> TelemetryBatch:
        return await telemetry.fetch(self._c(), group, max_records, ack_timeout, now,
                                     from_latest)

    async def telemetry_ack(self, group: str, ack: str) -> int:
        return await telemetry.ack(self._c(), group, ack)

    async def telemetry_trim(self, before: float, keep_max: int) -> int:
        return await telemetry.trim(self._c(), before, keep_max)

    # --- inquiries --------------------------------------------------------------------

    async def inquiry_put(self, inquiry: Inquiry) -> None:
        await inquiries.put(self._c(), inquiry)

    async def inquiry_take(self, max_items: int, lease: float, now: float) -> list[Inquiry]:
        return await inquiries.take(self._c(), max_items, lease, now)

    async def inquiry_get(self, inquiry_id: str) -> Inquiry | None:
        return await inquiries.get(self._c(), inquiry_id)

    async def inquiry_find(self, device_id: str, name: str, rid: str) -> Inquiry | None:
        return await inquiries.find(self._c(), device_id, name, rid)

    async def inquiry_set_state(self, inquiry_id: str, state: InquiryState) -> None:
        await inquiries.set_state(self._c(), inquiry_id, state)

    # --- feedback ---------------------------------------------------------------------

    async def outcome_put(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        return await feedback.record(self._c(), outcomes)

    async def outcome_read(self, after_seq: int, limit: int) -> list[Outcome]:
        return await feedback.read(self._c(), after_seq, limit)

    async def outcome_trim(self, before: float) -> int:
        return await feedback.trim(self._c(), before)

    # --- MQTT sessions ----------------------------------------------------------------

    async def session_get(self, device_id: str) -> Session | None:
        return await presence.session_get(self._c(), device_id)

    async def session_put(self, session: Session) -> None:
        await presence.session_put(self._c(), session)

    async def session_delete(self, device_id: str) -> None:
        await presence.session_delete(self._c(), device_id)

    # --- presence ---------------------------------------------------------------------

    async def presence_claim(self, device_id: str, owner: str, node: str, at: float) -> str | None:
        return await presence.claim(self._c(), device_id, owner, node, at)

    async def presence_release(self, device_id: str, owner: str, at: float) -> None:
        await presence.release(self._c(), device_id, owner, at)

    async def presence_get(self, device_id: str) -> Presence | None:
        return await presence.get(self._c(), device_id)


async def _close(ctx: Ctx, subs: list[Subscription]) -> None:
    for module in _MODULES:
        try:
            await module.stop(ctx)
        except Exception as exc:
            log.warning("closing %s: %s", module.__name__, exc)
    for sub in subs:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    try:
        await ctx.nc.drain()
    except Exception:
        with contextlib.suppress(Exception):
            await ctx.nc.close()


def _retrieve(task: asyncio.Future[None]) -> None:
    """Read a left-behind task's outcome, so asyncio does not report it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _wait_for_jetstream(ctx: Ctx) -> None:
    """Wait until JetStream answers (a fresh cluster elects its meta leader first)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + JETSTREAM_READY_TIMEOUT
    while True:
        try:
            await ctx.api("INFO")
            return
        except Exception as exc:  # timeouts, "JetStream not enabled/ready" (503)
            if loop.time() >= deadline:
                raise Unavailable(f"JetStream is not ready after "
                                  f"{JETSTREAM_READY_TIMEOUT:.0f} s: {exc}") from exc
            log.info("waiting for JetStream: %s", exc)
            await asyncio.sleep(0.25)



