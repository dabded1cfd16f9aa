"""The outcomes stream. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import Outcome


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def record(ctx: Ctx, outcomes: Sequence[Outcome]) -> list[Outcome]:
    raise NotImplementedError


async def read(ctx: Ctx, after_seq: int, limit: int) -> list[Outcome]:
    raise NotImplementedError


async def trim(ctx: Ctx, before: float) -> int:
    raise NotImplementedError
