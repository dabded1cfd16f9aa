"""Group and broadcast logs, per-device cursors and sent marks. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import MailboxMessage


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def put(ctx: Ctx, msg: MailboxMessage) -> MailboxMessage:
    raise NotImplementedError


async def read(ctx: Ctx, group: str, after_seq: int, limit: int, now: float) -> list[MailboxMessage]:
    raise NotImplementedError


async def cursors(ctx: Ctx, device_id: str) -> dict[str, int]:
    raise NotImplementedError


async def marks(ctx: Ctx, device_id: str) -> dict[str, int]:
    raise NotImplementedError


async def mark_sent(ctx: Ctx, device_id: str, group: str, seq: int) -> None:
    raise NotImplementedError


async def ack(ctx: Ctx, device_id: str, group: str, seq: int) -> None:
    raise NotImplementedError


async def init_cursors(ctx: Ctx, device_id: str, groups: Sequence[str]) -> None:
    raise NotImplementedError


async def drop_cursors(ctx: Ctx, device_id: str, groups: Sequence[str] | None) -> None:
    raise NotImplementedError
