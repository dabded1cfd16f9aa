"""Connected devices on this node: authentication, takeover, and backplane signals.

A device protocol (MQTT today) opens a :class:`~roost.hub.link.DeviceLink` per
connection through :meth:`DeviceLinks.open`, giving it a ``DeviceSink`` to push
messages through. The link speaks in domain terms: it never sees a packet, and
the protocol never sees storage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from roost.backplane.base import Signal, SignalKind
from roost.errors import BadCredentials, Forbidden
from roost.hub.auth import verify_key
from roost.hub.link import MAILBOX, DeviceLink, DeviceSink
from roost.metrics import REFUSED
from roost.model import BROADCAST, MailboxMessage, Session

if TYPE_CHECKING:
    from roost.hub.hub import Hub

log = logging.getLogger("roost.links")


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
        await link.mark_unacked()
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
        if link is None:
            return
        if isinstance(signal.data, MailboxMessage) and link.offer(signal.data):
            return  # handed over as it was stored, no read needed
        link.wake(MAILBOX)

    def _on_group(self, signal: Signal) -> None:
        for link in list(self._by_device.values()):
            if signal.key == BROADCAST or signal.key in link.groups:
                link.wake(signal.key)

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
