"""A node-local sorted index of device ids and their groups, for paging without a scan.

``device_list`` must page 100,000 devices in id order without reading them all,
and JetStream has no ordered range read over keys. Each node therefore keeps
the ids (and groups) in memory: loaded and kept current by one watch of the
devices bucket (an ordered consumer per node, not per device), and updated at
once by this node's own writes.

Each id remembers the bucket revision it was last changed at, so a watch event
older than a write this node already applied is ignored (no flapping back).
Sorted lists are kept incrementally for single changes and rebuilt lazily after
bulk ones (a sort of 100k ids takes a few tens of milliseconds).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

REBUILD_AFTER = 256  # incremental inserts before a lazy full re-sort is cheaper


class _Sorted:
    """A set of ids with a lazily sorted list of them."""

    __slots__ = ("ids", "_list", "_inserts")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self._list: list[str] | None = []
        self._inserts = 0

    def add(self, device_id: str) -> None:
        if device_id in self.ids:
            return
        self.ids.add(device_id)
        if self._list is not None and self._inserts < REBUILD_AFTER:
            bisect.insort(self._list, device_id)
            self._inserts += 1
        else:
            self._list = None

    def discard(self, device_id: str) -> None:
        if device_id not in self.ids:
            return
        self.ids.discard(device_id)
        if self._list is not None:
            del self._list[bisect.bisect_left(self._list, device_id)]

    def after(self, after: str | None, limit: int) -> list[str]:
        if self._list is None:
            self._list, self._inserts = sorted(self.ids), 0
        start = 0 if after is None else bisect.bisect_right(self._list, after)
        return self._list[start:start + limit]


class DeviceIndex:
    """Ids in id order, per group too; ``ready`` once the initial load finished."""

    __slots__ = ("_all", "_groups", "_members", "_revs", "_gone")

    def __init__(self) -> None:
        self._all = _Sorted()
        self._groups: dict[str, tuple[str, ...]] = {}
        self._members: dict[str, _Sorted] = {}
        self._revs: dict[str, int] = {}  # id -> revision of the change applied last
        self._gone: dict[str, int] = {}  # removed id -> revision of its removal

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, device_id: str) -> bool:
        return device_id in self._groups

    def groups(self, device_id: str) -> tuple[str, ...] | None:
        return self._groups.get(device_id)

    def revision(self, device_id: str) -> int:
        """The revision of the last change applied for the id (0 if none)."""
        return self._revs.get(device_id, self._gone.get(device_id, 0))

    def put(self, device_id: str, groups: Iterable[str], revision: int) -> None:
        """The device exists with these groups as of ``revision``."""
        if self._stale(device_id, revision):
            return
        self._gone.pop(device_id, None)
        self._revs[device_id] = revision
        new = tuple(groups)
        old = self._groups.get(device_id, ())
        self._groups[device_id] = new
        self._all.add(device_id)
        for grp in old:
            if grp not in new:
                self._discard_member(grp, device_id)
        for grp in new:
            self._members.setdefault(grp, _Sorted()).add(device_id)

    def remove(self, device_id: str, revision: int) -> None:
        """The device was removed at ``revision``."""
        if self._stale(device_id, revision):
            return
        self._revs.pop(device_id, None)
        self._gone[device_id] = revision
        for grp in self._groups.pop(device_id, ()):
            self._discard_member(grp, device_id)
        self._all.discard(device_id)

    def seen(self, device_id: str, revision: int) -> None:
        """The watch delivered ``revision`` of the id: later events are all newer.

        So a removal record at or below it can no longer hide a stale event.
        """
        gone = self._gone.get(device_id)
        if gone is not None and gone <= revision:
            del self._gone[device_id]

    def page(self, after: str | None, limit: int, group: str | None) -> list[str]:
        if group is None:
            return self._all.after(after, limit)
        members = self._members.get(group)
        return [] if members is None else members.after(after, limit)

    def _stale(self, device_id: str, revision: int) -> bool:
        return revision < self.revision(device_id)

    def _discard_member(self, grp: str, device_id: str) -> None:
        members = self._members.get(grp)
        if members is not None:
            members.discard(device_id)
            if not members.ids:
                del self._members[grp]
