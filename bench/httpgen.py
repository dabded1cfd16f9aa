"""A minimal keep-alive HTTP/1.1 client for load: one request at a time per connection, a pool.

Why not httpx: on the 2-core benchmark machine an ``httpx.AsyncClient`` tops out near
800 requests/s for ``GET /healthz`` at 100% of a core, and gets *slower* with more
concurrent requests (its pool's bookkeeping grows with the queue), so at 1,000 commands/s
it measures itself, not the server. This client pre-encodes the request head, reads only
the status line, ``Content-Length`` and the body, and costs a few tens of microseconds per
request. ``bench_command_rtt.py --client httpx`` still runs the httpx path for comparison.
"""

from __future__ import annotations

import asyncio
from collections import deque


class HttpError(Exception):
    pass


class _Connection(asyncio.Protocol):
    __slots__ = ("transport", "buf", "waiter", "closed")

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection closed: {exc}"))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buf[:head_end]).lower()
        pos = head.find(b"\r\ncontent-length:")
        if pos < 0:
            self._fail(HttpError("response without Content-Length (chunked is not supported)"))
            return
        line_end = head.find(b"\r\n", pos + 2)
        length = int(head[pos + 17 : line_end if line_end >= 0 else len(head)])
        end = head_end + 4 + length
        if len(self.buf) < end:
            return
        status, body = int(self.buf[9:12]), bytes(self.buf[head_end + 4 : end])
        del self.buf[:end]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.transport.close()


class HttpPool:
    """Up to ``size`` keep-alive connections; a request waits for a free one beyond that."""

    def __init__(self, host: str, port: int, size: int, headers: dict[str, str]) -> None:
        self.host, self.port, self.size = host, port, size
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host}:{port}\r\n{extra}".encode()
        self._idle: list[_Connection] = []
        self._waiting: deque[asyncio.Future[_Connection]] = deque()
        self._count = 0

    async def _acquire(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._count -= 1
        if self._count < self.size:
            self._count += 1
            try:
                loop = asyncio.get_running_loop()
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
            except BaseException:
                self._count -= 1
                raise
            return conn
        fut: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        return await fut

    def _release(self, conn: _Connection) -> None:
        if conn.closed:
            self._count -= 1
            return
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """``(status, body)`` of one request."""
        conn = await self._acquire()
        try:
            start = f"{method} {path} HTTP/1.1\r\n".encode()
            length = f"Content-Length: {len(body)}\r\n\r\n".encode()
            return await conn.send(start + self._head + length + body)
        finally:
            self._release(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.transport.close()
        self._idle.clear()
