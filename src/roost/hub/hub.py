"""The hub: the four interaction patterns, mailbox rules, access control and presence.

The same code runs on one node and on a cluster; only the backplane differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from roost.backplane.base import Backplane
from roost.config import Settings
from roost.hub.devices import DeviceRegistry
from roost.hub.feedback import Feedback
from roost.hub.inquiries import Inquiries
from roost.hub.links import DeviceLinks
from roost.hub.messages import Messages
from roost.hub.telemetry import Telemetry
from roost.hub.tokens import Tokens

log = logging.getLogger("roost.hub")


class Hub:
    def __init__(self, backplane: Backplane, settings: Settings) -> None:
        self.backplane = backplane
        self.settings = settings
        self.devices = DeviceRegistry(backplane)
        self.messages = Messages(backplane, settings)
        self.telemetry = Telemetry(backplane, settings)
        self.inquiries = Inquiries(backplane, settings, self.messages)
        self.feedback = Feedback(backplane, settings)
        self.tokens = Tokens(backplane)
        self.links = DeviceLinks(self)
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.backplane.start()
        await self.messages.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="roost-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.links.close_all()
        await self.backplane.close()

    async def check(self) -> None:
        """Raise ``Unavailable`` unless this node can serve."""
        await self.backplane.check()

    async def sweep(self) -> None:
        """Expire messages (→ ``expired`` outcomes) and trim old telemetry and feedback."""
        now = time.time()
        await self.backplane.expire(now)
        await self.backplane.telemetry_trim(
            now - self.settings.telemetry_retention, self.settings.telemetry_max_records
        )
        await self.backplane.outcome_trim(now - self.settings.feedback_retention)

    async def _sweep_forever(self) -> None:
        # DESIGN: an expired message gets its outcome within 15 s of expiry.
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.sweep()
            except Exception:  # keep sweeping; one bad round must not stop expiry
                log.exception("sweep failed")
