"""Inquiry handlers: a function per inquiry name, answering once or streaming.

A handler is either a coroutine function returning the one answer (sent as
the final reply), or an async generator whose every item is a reply, followed
by the end when it finishes (a continuous inquiry). When the device cancels,
the next reply fails with :class:`InquiryEnded` and the generator is closed.
A handler that raises ends the inquiry with an empty final reply, so the
device is not left waiting until the inquiry expires.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from roost.errors import InquiryEnded, RoostError
from roost.sdk.types import Inquiry

log = logging.getLogger("roost.sdk")

Answer = bytes | str
InquiryHandler = Callable[[Inquiry], Awaitable[Answer] | AsyncIterator[Answer]]
H = TypeVar("H", bound=InquiryHandler)


class Replier(Protocol):
    async def reply(self, inquiry_id: str, payload: bytes = b"", *, end: bool = False) -> str: ...


def _bytes(answer: Answer) -> bytes:
    return answer.encode() if isinstance(answer, str) else bytes(answer)


class InquiryRouter:
    """Handlers by inquiry name, and how one inquiry is answered."""

    def __init__(self) -> None:
        self.handlers: dict[str, InquiryHandler] = {}
        self._unhandled: set[str] = set()

    def register(self, name: str) -> Callable[[H], H]:
        def decorate(handler: H) -> H:
            self.handlers[name] = handler
            return handler

        return decorate

    async def answer(self, replier: Replier, inquiry: Inquiry) -> None:
        handler = self.handlers.get(inquiry.name)
        if handler is None:
            # Left alone: its lease runs out and another service may take it.
            if inquiry.name not in self._unhandled:
                self._unhandled.add(inquiry.name)
                log.warning("no handler for inquiry %r; leaving it to others", inquiry.name)
            return
        try:
            result = handler(inquiry)
            if isinstance(result, AsyncIterator):
                await self._stream(replier, inquiry, result)
            else:
                await replier.reply(inquiry.id, _bytes(await result), end=True)
        except InquiryEnded:
            log.info("inquiry %s (%s) ended by the device or expired", inquiry.id, inquiry.name)
        except Exception:
            log.exception("inquiry handler %r failed on %s", inquiry.name, inquiry.id)
            await self._end_quietly(replier, inquiry)

    async def _stream(
        self, replier: Replier, inquiry: Inquiry, replies: AsyncIterator[Answer]
    ) -> None:
        try:
            async for item in replies:
                await replier.reply(inquiry.id, _bytes(item))
        finally:
            if inspect.isasyncgen(replies):
                await replies.aclose()
        await replier.reply(inquiry.id, b"", end=True)

    @staticmethod
    async def _end_quietly(replier: Replier, inquiry: Inquiry) -> None:
        try:
            await replier.reply(inquiry.id, b"", end=True)
        except RoostError:
            pass  # already ended, or the API is gone: nothing more to do
