"""What the hub hands to the service layer: domain objects plus live state."""

from __future__ import annotations

from dataclasses import dataclass

from roost.model import Device


@dataclass(slots=True)
class DeviceView:
    device: Device
    connected: bool
    last_seen: float | None
    mailbox_depth: int
    node: str | None = None


@dataclass(slots=True)
class CommandResult:
    """A sent command and, when the caller waited and the device answered, its response."""

    id: str
    status: int | None = None
    payload: bytes | None = None
    content_type: str | None = None

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass(slots=True)
class DeviceSpec:
    """One row of a bulk import: id, groups, optional metadata and optional key."""

    id: str
    groups: tuple[str, ...] = ()
    metadata: dict[str, object] | None = None
    key: str | None = None
