"""Feedback: the outcome log of service-to-device messages, read by cursor."""

from __future__ import annotations

import time

from roost.backplane.base import Backplane, Signal, SignalKind
from roost.config import Settings
from roost.errors import InvalidInput
from roost.hub.pulse import Pulse
from roost.model import Outcome

MAX_READ = 1000


class Feedback:
    def __init__(self, backplane: Backplane, settings: Settings) -> None:
        self._bp = backplane
        self._settings = settings
        self._pulse = Pulse()
        backplane.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        if signal.kind is SignalKind.OUTCOME:
            self._pulse.fire()

    async def read(self, after: int = 0, limit: int = 100, wait: float = 0.0) -> list[Outcome]:
        """Outcomes after cursor ``after`` (oldest retained first), waiting up to ``wait`` s."""
        if after < 0:
            raise InvalidInput("after must be a cursor from an earlier read (or 0)")
        if not 1 <= limit <= MAX_READ:
            raise InvalidInput(f"limit must be between 1 and {MAX_READ}")
        if not 0 <= wait <= self._settings.max_wait:
            raise InvalidInput(f"wait must be between 0 and {self._settings.max_wait:g} seconds")
        deadline = time.monotonic() + wait
        while True:
            ticket = self._pulse.arm()
            outcomes = await self._bp.outcome_read(after, limit)
            remaining = deadline - time.monotonic()
            if outcomes or remaining <= 0:
                return outcomes
            await Pulse.wait(ticket, remaining)
