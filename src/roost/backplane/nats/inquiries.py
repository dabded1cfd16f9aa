"""Inquiry records and the take/lease queue. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import Inquiry, InquiryState


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def put(ctx: Ctx, inquiry: Inquiry) -> None:
    raise NotImplementedError


async def take(ctx: Ctx, max_items: int, lease: float, now: float) -> list[Inquiry]:
    raise NotImplementedError


async def get(ctx: Ctx, inquiry_id: str) -> Inquiry | None:
    raise NotImplementedError


async def find(ctx: Ctx, device_id: str, name: str, rid: str) -> Inquiry | None:
    raise NotImplementedError


async def set_state(ctx: Ctx, inquiry_id: str, state: InquiryState) -> None:
    raise NotImplementedError


async def expire_inquiries(ctx: Ctx, now: float) -> None:
    raise NotImplementedError
