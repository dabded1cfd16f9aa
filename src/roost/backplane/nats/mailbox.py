"""Per-device mailboxes in sharded streams. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import MailboxMessage, Outcome


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def put(ctx: Ctx, msg: MailboxMessage, max_depth: int) -> MailboxMessage:
    raise NotImplementedError


async def read(ctx: Ctx, device_id: str, after_seq: int, limit: int, now: float) -> list[MailboxMessage]:
    raise NotImplementedError


async def depth(ctx: Ctx, device_id: str, now: float) -> int:
    raise NotImplementedError


async def mark_sent(ctx: Ctx, device_id: str, seqs: Sequence[int]) -> None:
    raise NotImplementedError


async def ack(ctx: Ctx, device_id: str, seqs: Sequence[int], at: float) -> list[Outcome]:
    raise NotImplementedError


async def purge(ctx: Ctx, device_id: str, at: float) -> list[Outcome]:
    raise NotImplementedError


async def drop(ctx: Ctx, device_id: str, at: float) -> None:
    raise NotImplementedError
