"""Partitioned telemetry streams, one durable pull consumer per consumer group. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import TelemetryBatch, TelemetryRecord


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def append(ctx: Ctx, records: Sequence[TelemetryRecord]) -> None:
    raise NotImplementedError


async def fetch(ctx: Ctx, group: str, max_records: int, ack_timeout: float, now: float, from_latest: bool) -> TelemetryBatch:
    raise NotImplementedError


async def ack(ctx: Ctx, group: str, ack: str) -> int:
    raise NotImplementedError


async def trim(ctx: Ctx, before: float, keep_max: int) -> int:
    raise NotImplementedError
