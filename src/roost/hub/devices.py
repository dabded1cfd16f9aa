"""The device registry: register, import, change, rotate keys, remove, list."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from roost.backplane.base import Backplane
from roost.errors import InvalidInput, UnknownDevice
from roost.hub.auth import hash_key, new_secret
from roost.hub.views import DeviceSpec, DeviceView
from roost.model import BROADCAST, Device, check_id

MAX_GROUPS = 64
MAX_PAGE = 1000
VIEWS_AT_ONCE = 100  # devices of a page whose presence and depth are read concurrently
IMPORT_CHUNK = 5000


def check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated group ids in their given order."""
    if isinstance(groups, str):
        raise InvalidInput("groups must be a list of group ids")
    result = tuple(dict.fromkeys(check_id(g, "group id") for g in groups))
    if BROADCAST in result:
        raise InvalidInput(f"{BROADCAST!r} is reserved for broadcast")
    if len(result) > MAX_GROUPS:
        raise InvalidInput(f"a device may be in at most {MAX_GROUPS} groups")
    return result


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object")
    return dict(metadata)


class DeviceRegistry:
    def __init__(self, backplane: Backplane) -> None:
        self._bp = backplane

    async def register(
        self,
        device_id: str,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> tuple[Device, str]:
        """Create a device; return it and its key (the only time the key is shown)."""
        key = key or new_secret()
        device = Device(
            id=check_id(device_id),
            key_hash=hash_key(key),
            groups=check_groups(groups),
            metadata=check_metadata(metadata),
            created_at=time.time(),
        )
        await self._bp.device_create(device)
        return device, key

    async def import_devices(
        self,
        specs: Iterable[DeviceSpec],
        progress: Callable[[int], None] | None = None,
    ) -> list[tuple[str, str]]:
        """Register many devices, skipping existing ids; return ``(id, key)`` of those created.

        Rows are validated before anything is written, then written in chunks
        (one durable write each) so a progress bar can move.
        """
        now = time.time()
        rows: list[tuple[Device, str]] = []
        for spec in specs:
            key = spec.key or new_secret()
            rows.append(
                (
                    Device(
                        id=check_id(spec.id),
                        key_hash=hash_key(key),
                        groups=check_groups(spec.groups),
                        metadata=check_metadata(spec.metadata),
                        created_at=now,
                    ),
                    key,
                )
            )
        created: list[tuple[str, str]] = []
        for start in range(0, len(rows), IMPORT_CHUNK):
            chunk = rows[start : start + IMPORT_CHUNK]
            count = await self._bp.device_import([d for d, _ in chunk])
            skipped: set[str] = set()
            if count != len(chunk):
                # Existing ids were skipped and keep their old key: find them by
                # their stored hash (ours is freshly salted, so it cannot match).
                skipped = {d.id for d, _ in chunk if not await self._stored_as(d)}
            created.extend((d.id, k) for d, k in chunk if d.id not in skipped)
            if progress is not None:
                progress(len(chunk))
        return created

    async def _stored_as(self, device: Device) -> bool:
        stored = await self._bp.device_get(device.id)
        return stored is not None and stored.key_hash == device.key_hash

    async def get(self, device_id: str) -> Device:
        device = await self._bp.device_get(device_id)
        if device is None:
            raise UnknownDevice(f"no device {device_id!r}")
        return device

    async def view(self, device: Device) -> DeviceView:
        presence, depth = await asyncio.gather(
            self._bp.presence_get(device.id), self._bp.mailbox_depth(device.id, time.time()))
        connected = bool(presence and presence.connected)
        last_seen = presence.last_seen if presence and presence.last_seen else device.last_seen
        if connected:
            last_seen = time.time()
        node = presence.node if presence and connected else None
        return DeviceView(device, connected, last_seen, depth, node)

    async def show(self, device_id: str) -> DeviceView:
        return await self.view(await self.get(device_id))

    async def update(
        self,
        device_id: str,
        *,
        groups: Iterable[str] | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> DeviceView:
        device = await self.get(device_id)
        if groups is not None:
            device.groups = check_groups(groups)
        if enabled is not None:
            if not isinstance(enabled, bool):
                raise InvalidInput("enabled must be true or false")
            device.enabled = enabled
        if metadata is not None:
            device.metadata = check_metadata(metadata)
        await self._bp.device_update(device)
        return await self.view(device)

    async def rotate_key(self, device_id: str) -> str:
        """Give the device a new key; the old one stops working at once."""
        device = await self.get(device_id)
        key = new_secret()
        device.key_hash = hash_key(key)
        await self._bp.device_update(device)
        return key

    async def remove(self, device_id: str) -> None:
        """Remove the device; what waited in its mailbox ends as ``purged``."""
        await self._bp.mailbox_purge(device_id, time.time())
        if not await self._bp.device_delete(device_id):
            raise UnknownDevice(f"no device {device_id!r}")

    async def list(
        self, after: str | None = None, limit: int = 100, group: str | None = None
    ) -> list[DeviceView]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        devices = await self._bp.device_list(after, limit, group)
        views: list[DeviceView] = []
        for start in range(0, len(devices), VIEWS_AT_ONCE):  # a page's reads overlap
            chunk = devices[start:start + VIEWS_AT_ONCE]
            views += await asyncio.gather(*(self.view(d) for d in chunk))
        return views
