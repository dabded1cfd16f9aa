"""Connected devices on this node: authentication, takeover, routing and mailbox delivery.

A device protocol (MQTT today) opens a :class:`DeviceLink` per connection and
gives it a :class:`DeviceSink` to push messages through. The link speaks in
domain terms: it never sees a packet, and the protocol never sees storage.

Delivery: the link reads the device's mailbox and its group logs after what
it has already sent, merges them by age, and hands the sink as many as the
sink has room for (the MQTT in-flight window). Acknowledgements are gathered
and written in one backplane call per loop turn.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from roost.backplane.base import Signal, SignalKind
from roost.errors import BadCredentials, Forbidden, InvalidInput
from roost.hub.auth import verify_key
from roost.hub.topics import DeviceTopics, Route, delivery_topic
from roost.metrics import MAILBOX_DELIVERED, REFUSED
from roost.model import BROADCAST, MailboxMessage, Session, TelemetryRecord
from roost.proto.mqtt.topics import topic_matches

if TYPE_CHECKING:
    from roost.hub.hub import Hub

log = logging.getLogger("roost.links")
_owner_ids = itertools.count(1)


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
        "_acks",
        "_ack_scheduled",
        "_wanted",
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
        self._mailbox_next = 0
        self._group_next: dict[str, int] = {}
        self._acks: list[MailboxMessage] = []
        self._ack_scheduled = False
        self._wanted = False
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
            await hub.messages.respond(self.device, args[0], status, payload)
        elif kind is Route.INQUIRY:
            await hub.inquiries.ask(
                self.device, args[0], args[1], payload, content_type=content_type, ttl=ttl
            )
        else:
            await hub.inquiries.cancel(self.device, args[0], args[1])

    # --- delivery -------------------------------------------------------------------

    def wake(self) -> None:
        """Something may be waiting: deliver what fits (one pump task at a time)."""
        self._wanted = True
        if not self._pumping and not self.closed:
            self._pumping = True
            self._links.spawn(self._pump())

    async def _pump(self) -> None:
        try:
            while self._wanted and not self.closed:
                self._wanted = False
                await self._deliver_some()
        except Exception:
            log.exception("delivery to %s failed", self.device)
        finally:
            self._pumping = False

    async def _deliver_some(self) -> None:
        free = self.sink.free_slots()
        if free <= 0:
            self._blocked = True
            return
        if not self.subscriptions:
            return
        batch = await self._read(free)
        if len(batch) == free:
            self._wanted = True  # there may be more
        sent: list[int] = []
        for msg in batch:
            if msg.group is None:
                self._mailbox_next = max(self._mailbox_next, msg.seq)
            else:
                self._group_next[msg.group] = max(self._group_next.get(msg.group, 0), msg.seq)
            topic = delivery_topic(msg, self.device)
            qos = self._qos_for(topic)
            if qos is None or self.closed:
                continue  # not subscribed: it waits in the mailbox for a later session
            self.sink.deliver(msg, topic, qos)
            if qos == 0:
                self.acked(msg)  # at most once: gone as soon as it is sent
            elif msg.group is None:
                sent.append(msg.seq)
        if sent:
            self._links.spawn(self._links.backplane.mailbox_mark_sent(self.device, sent))

    async def _read(self, limit: int) -> list[MailboxMessage]:
        bp = self._links.backplane
        now = time.time()
        batch = await bp.mailbox_read(self.device, self._mailbox_next, limit, now)
        for group, after in self._group_next.items():
            batch.extend(await bp.group_read(group, after, limit, now))
        if len(self._group_next) > 0:
            batch.sort(key=lambda m: m.created_at)
        return batch[:limit]

    async def regroup(self, groups: tuple[str, ...]) -> None:
        """The device's groups changed: read joined groups' logs from its new cursors,
        keep the place in groups it stays in (no redelivery), stop reading left ones."""
        self.groups = groups
        cursors = await self._links.backplane.group_cursors(self.device)
        keep = {*groups, BROADCAST}
        for group in list(self._group_next):
            if group not in keep:
                del self._group_next[group]
        for group in keep:
            self._group_next.setdefault(group, cursors.get(group, 0))
        self.wake()

    def acked(self, msg: MailboxMessage) -> None:
        """The device acknowledged ``msg``: remove it (batched with other acks)."""
        self._acks.append(msg)
        if not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)
        if self._blocked:
            self._blocked = False
            self.wake()

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

    async def start_delivery(self) -> None:
        """Load the device's group cursors; delivery starts at its first subscription."""
        self._group_next = await self._links.backplane.group_cursors(self.device)
        for group in (*self.groups, BROADCAST):
            self._group_next.setdefault(group, 0)
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


class DeviceLinks:
    """Every device connection on this node, keyed by device id."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.backplane = hub.backplane
        self.node = hub.settings.node
        self._by_device: dict[str, DeviceLink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        hub.backplane.signals.subscribe(self._on_signal)

    def __len__(self) -> int:
        return len(self._by_device)

    def get(self, device: str) -> DeviceLink | None:
        return self._by_device.get(device)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background write; keep a reference so it is not collected, log failures."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background write failed", exc_info=task.exception())

    async def open(
        self,
        device_id: str,
        key: str | bytes | None,
        sink: DeviceSink,
        *,
        clean: bool,
        session_expiry: float | None,
    ) -> tuple[DeviceLink, bool]:
        """Authenticate and take over the device's session; return the link and session_present.

        ``session_expiry``: seconds the session outlives the connection (None:
        forever, 0: ends with the connection). A later connection with the same
        id wins; the earlier one, on this node or another, is kicked.
        """
        device = await self.backplane.device_get(device_id)
        if device is None or not verify_key(key, device.key_hash):
            REFUSED.labels("connect").inc()
            log.warning("device %r failed to authenticate", device_id)
            raise BadCredentials("unknown device or wrong key")
        if not device.enabled:
            log.warning("disabled device %r refused", device_id)
            raise Forbidden("device is disabled")
        link = DeviceLink(self, device_id, device.groups, sink)
        link.key_hash = device.key_hash
        link.persistent = session_expiry != 0
        link.session_expiry = session_expiry
        previous = self._by_device.get(device_id)
        self._by_device[device_id] = link
        if previous is not None:
            previous.sink.kick("session taken over")
        await self.backplane.presence_claim(device_id, link.owner, self.node, time.time())
        session_present = await self._restore_session(link, clean)
        return link, session_present

    async def _restore_session(self, link: DeviceLink, clean: bool) -> bool:
        if clean:
            await self.backplane.session_delete(link.device)
            return False
        session = await self.backplane.session_get(link.device)
        if session is None or (session.expires_at is not None and session.expires_at < time.time()):
            return False
        link.subscriptions.update(session.subscriptions)
        return True

    async def close(self, link: DeviceLink) -> None:
        """The connection ended: release presence and keep or end the session."""
        if link.closed:
            return
        link.closed = True
        if self._by_device.get(link.device) is link:
            del self._by_device[link.device]
        now = time.time()
        await self.backplane.presence_release(link.device, link.owner, now)
        if link.persistent and self._by_device.get(link.device) is None:
            expires = None if link.session_expiry is None else now + link.session_expiry
            await self.backplane.session_put(Session(link.device, link.subscriptions, expires))
        elif not link.persistent and self._by_device.get(link.device) is None:
            await self.backplane.session_delete(link.device)

    async def close_all(self) -> None:
        for link in list(self._by_device.values()):
            link.sink.kick("server shutting down")
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- signals from the backplane -------------------------------------------------

    def _on_signal(self, signal: Signal) -> None:
        handler = self._handlers.get(signal.kind)
        if handler is not None:
            handler(self, signal)

    def _on_mailbox(self, signal: Signal) -> None:
        link = self._by_device.get(signal.key)
        if link is not None:
            link.wake()

    def _on_group(self, signal: Signal) -> None:
        for link in list(self._by_device.values()):
            if signal.key == BROADCAST or signal.key in link.groups:
                link.wake()

    def _on_kick(self, signal: Signal) -> None:
        link = self._by_device.get(signal.key)
        if link is not None and link.owner != signal.data:
            del self._by_device[signal.key]
            link.sink.kick("session taken over")

    def _on_device(self, signal: Signal) -> None:
        link = self._by_device.get(signal.key)
        if link is not None:
            self.spawn(self._refresh(link))

    async def _refresh(self, link: DeviceLink) -> None:
        device = await self.backplane.device_get(link.device)
        if device is None:
            link.sink.kick("device removed")
        elif not device.enabled:
            link.sink.kick("device disabled")
        elif device.key_hash != link.key_hash:
            link.sink.kick("key rotated")
        elif device.groups != link.groups:
            await link.regroup(device.groups)

    _handlers: dict[SignalKind, Callable[[DeviceLinks, Signal], None]] = {
        SignalKind.MAILBOX: _on_mailbox,
        SignalKind.GROUP: _on_group,
        SignalKind.KICK: _on_kick,
        SignalKind.DEVICE: _on_device,
    }
