"""Sweeping expired mailbox and group messages into EXPIRED outcomes. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import Outcome


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def expire_messages(ctx: Ctx, now: float) -> list[Outcome]:
    raise NotImplementedError
