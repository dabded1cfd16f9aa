"""Long polls that end at once when the node shuts down.

A ``GET /v1/telemetry?wait=30`` may hold a request open for up to
``max_wait`` seconds, and the ASGI server waits for open requests before it
exits. :meth:`LongPolls.close` makes every running long poll answer right away
with its empty result (no records, no inquiries, no outcomes), which is also
what the client would have got had the wait run out; new long polls answer
empty at once. The client then polls again, and reaches another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from roost.service.metrics import LONG_POLLS

T = TypeVar("T")

_registry: weakref.WeakSet[LongPolls] = weakref.WeakSet()


class LongPolls:
    def __init__(self) -> None:
        self._closed = asyncio.Event()
        _registry.add(self)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()

    async def run(self, call: Coroutine[Any, Any, T], empty: T) -> T:
        """Await ``call``, or return ``empty`` as soon as :meth:`close` is called.

        A call cut short is cancelled; what it had leased (telemetry records,
        inquiries) comes back after its lease, as if the client had gone away.
        """
        if self.closed:
            call.close()
            return empty
        task = asyncio.ensure_future(call)
        closing = asyncio.ensure_future(self._closed.wait())
        LONG_POLLS.inc()
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
            return task.result() if task.done() else empty
        finally:
            LONG_POLLS.dec()
            closing.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def close_all() -> None:
    """End the long polls of every app in this process (``roost serve`` on SIGTERM)."""
    for polls in list(_registry):
        polls.close()
