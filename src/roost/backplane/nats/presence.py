"""Presence (compare-and-set claims, takeover KICKs), last seen, MQTT sessions. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import Presence, Session


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def device_touch(ctx: Ctx, device_id: str, last_seen: float) -> None:
    raise NotImplementedError


async def claim(ctx: Ctx, device_id: str, owner: str, node: str, at: float) -> str | None:
    raise NotImplementedError


async def release(ctx: Ctx, device_id: str, owner: str, at: float) -> None:
    raise NotImplementedError


async def get(ctx: Ctx, device_id: str) -> Presence | None:
    raise NotImplementedError


async def session_get(ctx: Ctx, device_id: str) -> Session | None:
    raise NotImplementedError


async def session_put(ctx: Ctx, session: Session) -> None:
    raise NotImplementedError


async def session_delete(ctx: Ctx, device_id: str) -> None:
    raise NotImplementedError


async def expire_sessions(ctx: Ctx, now: float) -> None:
    raise NotImplementedError


async def drop(ctx: Ctx, device_id: str) -> None:
    raise NotImplementedError
