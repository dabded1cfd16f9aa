"""Inquiries: the device asks, a service answers once or keeps streaming replies.

Replies go through the device's mailbox, so they survive a reconnect. A
final reply (``end=True``) closes the inquiry; the device sees the end as a
reply with user property ``end=1`` (MQTT 5) or an empty reply on
``.../{rid}/end`` (MQTT 3.1.1). A reply with a body and ``end`` is stored as
the reply followed by an empty end marker, the same for both versions.
"""

from __future__ import annotations

import secrets
import time

from roost.backplane.base import Backplane, Signal, SignalKind
from roost.config import Settings
from roost.errors import InquiryEnded, InvalidInput, NotFound
from roost.hub.messages import Messages
from roost.hub.pulse import Pulse
from roost.model import Inquiry, InquiryState, MessageKind

MAX_TAKE = 100
END_PROPS = {"end": "1"}


class Inquiries:
    def __init__(self, backplane: Backplane, settings: Settings, messages: Messages) -> None:
        self._bp = backplane
        self._settings = settings
        self._messages = messages
        self._pulse = Pulse()
        backplane.signals.subscribe(self._on_signal)

    def _on_signal(self, signal: Signal) -> None:
        if signal.kind is SignalKind.INQUIRY:
            self._pulse.fire()

    # --- device side -----------------------------------------------------------

    async def ask(
        self,
        device: str,
        name: str,
        rid: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        ttl: float | None = None,
    ) -> Inquiry:
        now = time.time()
        ttl = min(ttl or self._settings.ttl_default, self._settings.ttl_max)
        inquiry = Inquiry(
            id=secrets.token_hex(8),
            device=device,
            name=name,
            rid=rid,
            payload=payload,
            created_at=now,
            expires_at=now + ttl,
            content_type=content_type,
        )
        await self._bp.inquiry_put(inquiry)
        return inquiry

    async def cancel(self, device: str, name: str, rid: str) -> bool:
        """End the device's inquiry ``name``/``rid``; False if there is none open."""
        inquiry = await self._bp.inquiry_find(device, name, rid)
        if inquiry is None or inquiry.state is InquiryState.ENDED:
            return False
        await self._bp.inquiry_set_state(inquiry.id, InquiryState.ENDED)
        return True

    # --- service side ----------------------------------------------------------

    async def take(self, max_items: int = 10, wait: float = 0.0) -> list[Inquiry]:
        if not 1 <= max_items <= MAX_TAKE:
            raise InvalidInput(f"max must be between 1 and {MAX_TAKE}")
        if not 0 <= wait <= self._settings.max_wait:
            raise InvalidInput(f"wait must be between 0 and {self._settings.max_wait:g} seconds")
        deadline = time.monotonic() + wait
        while True:
            ticket = self._pulse.arm()
            taken = await self._bp.inquiry_take(
                max_items, self._settings.inquiry_lease, time.time()
            )
            remaining = deadline - time.monotonic()
            if taken or remaining <= 0:
                return taken
            await Pulse.wait(ticket, min(remaining, 1.0))

    async def get(self, inquiry_id: str) -> Inquiry:
        inquiry = await self._bp.inquiry_get(inquiry_id)
        if inquiry is None:
            raise NotFound(f"no inquiry {inquiry_id!r}")
        return inquiry

    async def reply(
        self,
        inquiry_id: str,
        payload: bytes,
        *,
        content_type: str | None = None,
        end: bool = False,
    ) -> str:
        """Queue a reply in the asking device's mailbox; return the reply's message id."""
        inquiry = await self.get(inquiry_id)
        if inquiry.state is InquiryState.ENDED or inquiry.expires_at <= time.time():
            raise InquiryEnded(f"inquiry {inquiry_id} has ended (answered, cancelled or expired)")
        ttl = max(1.0, inquiry.expires_at - time.time())
        message_id = ""
        if payload or not end:
            message_id = await self._put_reply(inquiry, payload, content_type, ttl, {})
        if end:
            end_id = await self._put_reply(inquiry, b"", None, ttl, END_PROPS)
            message_id = message_id or end_id
            await self._bp.inquiry_set_state(inquiry.id, InquiryState.ENDED)
        elif inquiry.state is not InquiryState.ANSWERING:
            await self._bp.inquiry_set_state(inquiry.id, InquiryState.ANSWERING)
        return message_id

    async def _put_reply(
        self,
        inquiry: Inquiry,
        payload: bytes,
        content_type: str | None,
        ttl: float,
        props: dict[str, str],
    ) -> str:
        msg = self._messages.build(
            MessageKind.REPLY,
            inquiry.device,
            inquiry.name,
            payload,
            ttl,
            content_type,
            ref=inquiry.rid,
            props=dict(props),
        )
        return (await self._messages.put(msg)).id
