"""Devices, API tokens and meta in KV buckets. (STUB: to be written.)"""

from __future__ import annotations

from collections.abc import Sequence  # noqa: F401

from roost.backplane.nats.context import Ctx
from roost.model import ApiToken, Device


async def setup(ctx: Ctx) -> None:
    """Create or upgrade this module's streams/buckets; idempotent."""


async def stop(ctx: Ctx) -> None:
    """Release what ``setup`` started (tasks, subscriptions)."""


async def meta_get(ctx: Ctx, key: str) -> str | None:
    raise NotImplementedError


async def meta_put_if_absent(ctx: Ctx, key: str, value: str) -> str:
    raise NotImplementedError


async def device_create(ctx: Ctx, device: Device) -> None:
    raise NotImplementedError


async def device_import(ctx: Ctx, devices: Sequence[Device]) -> int:
    raise NotImplementedError


async def device_get(ctx: Ctx, device_id: str) -> Device | None:
    raise NotImplementedError


async def device_update(ctx: Ctx, device: Device) -> None:
    raise NotImplementedError


async def device_delete(ctx: Ctx, device_id: str) -> bool:
    raise NotImplementedError


async def device_list(ctx: Ctx, after: str | None, limit: int, group: str | None) -> list[Device]:
    raise NotImplementedError


async def device_count(ctx: Ctx) -> int:
    raise NotImplementedError


async def token_create(ctx: Ctx, token: ApiToken) -> None:
    raise NotImplementedError


async def token_find(ctx: Ctx, token_hash: str) -> ApiToken | None:
    raise NotImplementedError


async def token_list(ctx: Ctx) -> list[ApiToken]:
    raise NotImplementedError


async def token_delete(ctx: Ctx, token_id: str) -> bool:
    raise NotImplementedError
