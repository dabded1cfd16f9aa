"""One live device connection as the hub sees it: subscriptions, routing, delivery.

Delivery reads the device's mailbox and its group logs after what this
connection has already read, merges them by age, and hands the sink as many
as it has room for (the MQTT in-flight window). A link that has caught up with its
mailbox takes a newly stored message straight from the store's announcement
(:meth:`DeviceLink.offer`, on the embedded store) instead of reading it back.
Acknowledgements are gathered
and written in one backplane call per loop turn. A new subscription rewinds
the read positions, so nothing queued before it is skipped; messages already
in flight are not sent twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Protocol

from roost.errors import Forbidden, InvalidInput
from roost.hub.topics import DeviceTopics, Route, delivery_topic
from roost.metrics import MAILBOX_DELIVERED, REFUSED
from roost.model import BROADCAST, MailboxMessage, Session, TelemetryRecord
from roost.proto.mqtt.topics import topic_matches

if TYPE_CHECKING:
    from roost.hub.links import DeviceLinks

log = logging.getLogger("roost.links")
_owner_ids = itertools.count(1)

InFlight = tuple[str | None, int]  # (group or None for the mailbox, seq)
Source = str | None  # a group log, or MAILBOX (None) for the device's own mailbox
MAILBOX: Source = None


class ALL:
    """Marker for :meth:`DeviceLink.wake`: every source may hold something new."""


class DeviceSink(Protocol):
    """What a device protocol offers the hub for one connection."""

    def free_slots(self) -> int:
        """How many more acknowledged (QoS 1) messages may be in flight now."""

    def deliver(self, msg: MailboxMessage, topic: str, qos: int) -> None:
        """Send one message now; for QoS 1 the protocol later calls ``link.acked(msg)``."""

    def kick(self, reason: str) -> None:
        """Close the connection (session taken over, device disabled or removed)."""


class DeviceLink:
    """One live device connection, as the hub sees it."""

    __slots__ = (
        "_links",
        "device",
        "groups",
        "key_hash",
        "topics",
        "owner",
        "sink",
        "subscriptions",
        "persistent",
        "session_expiry",
        "_mailbox_next",
        "_group_next",
        "_group_cursor",
        "_group_sent",
        "_inflight",
        "_acks",
        "_ack_scheduled",
        "_dirty",
        "_caught_up",
        "_rewinds",
        "_pumping",
        "_blocked",
        "closed",
    )

    def __init__(self, links: DeviceLinks, device: str, groups: tuple[str, ...], sink: DeviceSink):
        self._links = links
        self.device = device
        self.groups = groups
        self.key_hash = ""
        self.topics = DeviceTopics(device)
        self.owner = f"{links.node}/{next(_owner_ids)}"
        self.sink = sink
        self.subscriptions: dict[str, int] = {}
        self.persistent = False
        self.session_expiry: float | None = 0.0
        self._mailbox_next = 0  # read position in the mailbox
        self._group_next: dict[str, int] = {}  # read position per group log
        self._group_cursor: dict[str, int] = {}  # acknowledged position per group log
        self._group_sent: dict[str, int] = {}  # highest seq ever sent, per group (for DUP)
        self._inflight: set[InFlight] = set()  # sent at QoS 1, ack not yet written
        self._acks: list[MailboxMessage] = []
        self._ack_scheduled = False
        self._dirty: set[Source] = set()  # sources that may hold undelivered messages
        self._caught_up = False  # the last mailbox read found all there was (see offer)
        self._rewinds = 0  # how many times the read positions were reset
        self._pumping = False
        self._blocked = False
        self.closed = False

    # --- subscriptions -------------------------------------------------------------

    def subscribe(self, requests: list[tuple[str, int]]) -> list[int | None]:
        """Grant each ``(filter, qos)`` (QoS capped at 1) or refuse it (None)."""
        granted: list[int | None] = []
        for topic_filter, qos in requests:
            if not self.topics.may_subscribe(topic_filter):
                REFUSED.labels("subscribe").inc()
                log.warning("device %s refused subscription to %r", self.device, topic_filter)
                granted.append(None)
                continue
            self.subscriptions[topic_filter] = min(qos, 1)
            granted.append(min(qos, 1))
        if any(g is not None for g in granted):
            self._save_session()
            self._rewind()
            self.wake()
        return granted

    def unsubscribe(self, filters: list[str]) -> list[bool]:
        removed = [self.subscriptions.pop(f, None) is not None for f in filters]
        self._save_session()
        return removed

    def _qos_for(self, topic: str) -> int | None:
        best: int | None = None
        for topic_filter, qos in self.subscriptions.items():
            if topic_matches(topic_filter, topic) and (best is None or qos > best):
                best = qos
        return best

    def _save_session(self) -> None:
        if self.persistent:
            session = Session(self.device, dict(self.subscriptions), None)
            self._links.spawn(self._links.backplane.session_put(session))

    # --- what the device sends ------------------------------------------------------

    def telemetry_path(self, topic: str) -> str | None:
        return self.topics.telemetry_path(topic)

    async def telemetry(self, records: list[TelemetryRecord]) -> None:
        """Store telemetry durably (returns after the commit, so PUBACKs may follow)."""
        await self._links.hub.telemetry.ingest(records)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        props: dict[str, str] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Act on a publish that is not telemetry; ``Forbidden`` outside the device's space."""
        route = self.topics.classify(topic)
        if route is None:
            REFUSED.labels("publish").inc()
            log.warning("device %s refused publish to %r", self.device, topic)
            raise Forbidden(f"device {self.device} may not publish to {topic!r}")
        kind, args = route
        hub = self._links.hub
        if kind is Route.TELEMETRY:
            record = TelemetryRecord(self.device, args[0], payload, time.time(), content_type)
            await self.telemetry([record])
        elif kind is Route.RESPONSE:
            status = _status(args[1] if len(args) > 1 else (props or {}).get("status"))
            await hub.messages.respond(self.device, args[0], status, payload, content_type)
        elif kind is Route.INQUIRY:
            await hub.inquiries.ask(
                self.device, args[0], args[1], payload, content_type=content_type, ttl=ttl
            )
        else:
            await hub.inquiries.cancel(self.device, args[0], args[1])

    # --- delivery -------------------------------------------------------------------

    def wake(self, source: Source | type[ALL] = ALL) -> None:
        """``source`` (the mailbox, a group log, or ALL) may hold something new: deliver."""
        if source is ALL:
            self._dirty.update((MAILBOX, *self._group_next))
        elif source is MAILBOX or source in self._group_next:
            self._dirty.add(source)
        if MAILBOX in self._dirty:
            self._caught_up = False
        self._start_pump()

    def offer(self, msg: MailboxMessage) -> bool:
        """A message just stored in this device's mailbox, as the backplane announced it:
        deliver it without reading the mailbox back, if that keeps the order.

        True when handled (delivered, or already read). False when a read must decide:
        the link is not caught up with its mailbox (a read is due or running, or the last
        one hit its limit), is delivering from a group, or has no room in flight. Caught
        up means every message stored before the last read was in it, and every one stored
        since is announced here, in the order stored, so handing this one over keeps the
        mailbox's order.
        """
        if msg.seq <= self._mailbox_next:
            return True  # a read already saw it
        now = time.time()
        if (not self._caught_up or self._pumping or self._dirty or self.closed
                or not self.subscriptions or msg.expires_at <= now
                or self.sink.free_slots() <= 0):
            return False
        self._mailbox_next = msg.seq
        self._send([msg])
        return True

    def _start_pump(self) -> None:
        if not self._pumping and not self.closed:
            self._pumping = True
            self._links.spawn(self._pump())

    async def _pump(self) -> None:
        try:
            while self._dirty and self.subscriptions and not self.closed:
                free = self.sink.free_slots()
                if free <= 0:
                    self._blocked = True  # an ack restarts us
                    return
                await self._deliver_some(free)
        except Exception:
            log.exception("delivery to %s failed", self.device)
            self._caught_up = False  # the next announcement must read, from where we are
        finally:
            self._pumping = False

    async def _deliver_some(self, free: int) -> None:
        self._send(await self._read(free))

    def _send(self, batch: list[MailboxMessage]) -> None:
        for msg in batch:
            topic = delivery_topic(msg, self.device)
            qos = self._qos_for(topic)
            if qos is None or self.closed:
                continue  # not subscribed: it waits for a later subscription or session
            self.sink.deliver(msg, topic, qos)
            self._inflight.add((msg.group, msg.seq))
            if qos == 0:
                self.acked(msg)  # at most once: gone as soon as it is sent

    async def _read(self, limit: int) -> list[MailboxMessage]:
        """Up to ``limit`` unsent messages from the sources marked dirty, oldest first.

        A source that filled the limit stays dirty (there may be more).
        """
        bp = self._links.backplane
        now = time.time()
        sources, self._dirty = self._dirty, set()
        rewinds = self._rewinds
        # In flight now: an ack written while we read takes its message out of _inflight,
        # but a read that began before the ack's commit may still return it. Nothing joins
        # _inflight meanwhile (only this pump sends while it runs), so this copy covers it.
        sent = set(self._inflight)
        batch: list[MailboxMessage] = []
        mailbox_complete = False
        # the mailbox first, then groups by name: the same order every time
        for source in sorted(sources, key=lambda s: (s is not None, s or "")):
            if source is None:  # MAILBOX
                got = await bp.mailbox_read(self.device, self._mailbox_next, limit, now)
                mailbox_complete = len(got) < limit
            elif source in self._group_next:
                got = await bp.group_read(source, self._group_next[source], limit, now)
                sent_mark = self._group_sent.get(source, 0)
                for msg in got:
                    msg.attempts = 1 if msg.seq <= sent_mark else 0
            else:
                continue  # the device left the group
            if len(got) == limit:
                self._dirty.add(source)
            batch.extend(got)
        if rewinds != self._rewinds:
            return []  # a new subscription rewound the positions meanwhile: read again
        batch = [m for m in batch if m.group is None or m.group in self._group_next]
        if len(sources) > 1:
            batch.sort(key=lambda m: m.created_at)
        if len(batch) > limit:
            self._dirty.update(m.group or MAILBOX for m in batch[limit:])
            batch = batch[:limit]
        if MAILBOX in sources:
            self._caught_up = mailbox_complete and MAILBOX not in self._dirty  # see offer()
        for msg in batch:  # advance past everything read, sent or not
            if msg.group is None:
                self._mailbox_next = max(self._mailbox_next, msg.seq)
            else:
                self._group_next[msg.group] = max(self._group_next[msg.group], msg.seq)
        return [m for m in batch if (m.group, m.seq) not in sent]

    async def mark_unacked(self) -> None:
        """The connection ended: remember what was sent and not acknowledged, so the
        next connection redelivers it with DUP set (one write, off the hot path)."""
        bp = self._links.backplane
        direct = sorted(seq for group, seq in self._inflight if group is None)
        if direct:
            await bp.mailbox_mark_sent(self.device, direct)
        marks: dict[str, int] = {}
        for group, seq in self._inflight:
            if group is not None:
                marks[group] = max(marks.get(group, 0), seq)
        for group, seq in marks.items():
            await bp.group_mark_sent(self.device, group, seq)

    def _rewind(self) -> None:
        """Read again from the acknowledged positions (after a new subscription)."""
        self._rewinds += 1  # a read under way when this happens must not move positions
        self._mailbox_next = 0
        self._group_next = dict(self._group_cursor)
        self._dirty.update((MAILBOX, *self._group_next))

    async def regroup(self, groups: tuple[str, ...]) -> None:
        """The device's groups changed: read joined groups' logs from its new cursors,
        keep the place in groups it stays in (no redelivery), stop reading left ones."""
        self.groups = groups
        await self._load_positions()
        self.wake()

    async def _load_positions(self) -> None:
        bp = self._links.backplane
        cursors = await bp.group_cursors(self.device)
        marks = await bp.group_marks(self.device)
        keep = {*self.groups, BROADCAST}
        for table in (self._group_next, self._group_cursor):
            for group in [g for g in table if g not in keep]:
                del table[group]
        for group in keep:
            self._group_cursor.setdefault(group, cursors.get(group, 0))
            self._group_next.setdefault(group, self._group_cursor[group])
            self._group_sent[group] = max(self._group_sent.get(group, 0), marks.get(group, 0))

    def acked(self, msg: MailboxMessage) -> None:
        """The device acknowledged ``msg``: remove it (batched with other acks)."""
        self._acks.append(msg)
        if not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)
        if self._blocked:
            self._blocked = False
            self._start_pump()

    def _flush_acks(self) -> None:
        self._ack_scheduled = False
        acks, self._acks = self._acks, []
        self._links.spawn(self._write_acks(acks))

    async def _write_acks(self, acks: list[MailboxMessage]) -> None:
        MAILBOX_DELIVERED.inc(len(acks))
        bp = self._links.backplane
        direct = [m.seq for m in acks if m.group is None]
        if direct:
            await bp.mailbox_ack(self.device, direct, time.time())
        cursors: dict[str, int] = {}
        for m in acks:
            if m.group is not None:
                cursors[m.group] = max(cursors.get(m.group, 0), m.seq)
        for group, seq in cursors.items():
            await bp.group_ack(self.device, group, seq)
            self._group_cursor[group] = max(self._group_cursor.get(group, 0), seq)
        # Only now, with the ack durable, may a rewind not find these again.
        self._inflight.difference_update((m.group, m.seq) for m in acks)

    async def start_delivery(self) -> None:
        """Load the device's group positions; delivery starts at its first subscription."""
        await self._load_positions()
        self.wake()


def _status(value: str | None) -> int:
    if value is None or value == "":
        return 200
    try:
        status = int(value)
    except ValueError:
        raise InvalidInput(f"response status must be an integer, not {value!r}") from None
    if not 0 <= status <= 999:
        raise InvalidInput(f"response status must be between 0 and 999, not {status}")
    return status
