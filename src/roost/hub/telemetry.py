"""Telemetry: devices append to a durable log; back-end apps read it in consumer groups."""

from __future__ import annotations

import time
from collections.abc import Sequence

from roost.backplane.base import Backplane, Signal, SignalKind
from roost.config import Settings
from roost.errors import InvalidInput
from roost.hub.pulse import Pulse
from roost.metrics import TELEMETRY_RECORDS
from roost.model import TelemetryBatch, TelemetryRecord, check_id

MAX_FETCH = 1000


class Telemetry:
    def __init__(self, backplane: Backplane, settings: Settings) -> None:
        self._bp = backplane
        self._settings = settings
        self._pulse = Pulse()
        backplane.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        if signal.kind is SignalKind.TELEMETRY:
            self._pulse.fire()

    async def ingest(self, records: Sequence[TelemetryRecord]) -> None:
        """Append durably; returns after the write that holds them (so a PUBACK may follow)."""
        await self._bp.telemetry_append(records)
        TELEMETRY_RECORDS.inc(len(records))

    async def fetch(
        self,
        group: str,
        max_records: int = 100,
        wait: float = 0.0,
        from_latest: bool = False,
    ) -> TelemetryBatch:
        """Lease up to ``max_records`` for consumer group ``group``, waiting up to ``wait`` s."""
        check_id(group, "consumer group")
        if not 1 <= max_records <= MAX_FETCH:
            raise InvalidInput(f"max must be between 1 and {MAX_FETCH}")
        if not 0 <= wait <= self._settings.max_wait:
            raise InvalidInput(f"wait must be between 0 and {self._settings.max_wait:g} seconds")
        deadline = time.monotonic() + wait
        while True:
            ticket = self._pulse.arm()
            batch = await self._bp.telemetry_fetch(
                group, max_records, self._settings.telemetry_ack_timeout, time.time(), from_latest
            )
            remaining = deadline - time.monotonic()
            if batch.records or remaining <= 0:
                return batch
            # Wake on new records, but also re-check when leases may have run out.
            await Pulse.wait(ticket, min(remaining, 1.0))

    async def ack(self, group: str, ack: str) -> int:
        check_id(group, "consumer group")
        if not ack or not isinstance(ack, str):
            raise InvalidInput("ack must be the token of a fetch")
        return await self._bp.telemetry_ack(group, ack)
