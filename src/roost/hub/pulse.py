"""Long-poll support: wake every waiter when something new may be there."""

from __future__ import annotations

import asyncio


class Pulse:
    """A wake-up that cannot be missed.

    ``arm()`` before looking for work, then ``await wait(ticket, timeout)`` if
    there was none: a ``fire()`` between the two still wakes the waiter,
    because it resolves the very future the ticket holds.
    """

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def arm(self) -> asyncio.Future[None]:
        if self._future is None or self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    def fire(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)

    @staticmethod
    async def wait(ticket: asyncio.Future[None], timeout: float) -> bool:
        """True if fired within ``timeout`` seconds."""
        if timeout <= 0:
            return ticket.done()
        try:
            await asyncio.wait_for(asyncio.shield(ticket), timeout)
        except TimeoutError:
            return False
        return True
