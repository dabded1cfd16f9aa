"""Helpers shared by the CLI tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from click.testing import Result
from starlette.applications import Starlette

Invoke = Callable[..., Awaitable[Result]]


class LoopBridge(httpx.AsyncBaseTransport):
    """An httpx transport that hands each request to an ASGI app on another event loop."""

    def __init__(self, app: Starlette, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = httpx.ASGITransport(app=app)
        self._loop = loop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        copy = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        future = asyncio.run_coroutine_threadsafe(self._forward(copy), self._loop)
        return await asyncio.wrap_future(future)

    async def _forward(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        return httpx.Response(response.status_code, headers=response.headers, content=content)
