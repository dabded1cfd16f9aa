"""``Service``: the async Python client of the HTTP API, for back-end applications.

    async with Service("http://127.0.0.1:8080", token) as s:
        await s.register_device("truck-7", groups=["fleet"])
        answer = await s.command("truck-7", "unlock", b"...", ttl=30, wait=10)
        async for record in s.telemetry("analytics"):
            ...

Every API error is raised as the matching :class:`roost.errors.RoostError`
subclass (``roost.sdk.errors``); an unreachable server raises ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from roost.errors import Timeout, Unavailable
from roost.sdk.errors import error_from_response
from roost.sdk.handlers import H, InquiryRouter
from roost.sdk.types import (
    CommandResponse,
    DeviceInfo,
    DevicePage,
    FeedbackPage,
    ImportResult,
    Inquiry,
    NewToken,
    Outcome,
    QueuedMessage,
    Record,
    TelemetryBatch,
    TokenInfo,
    unb64,
)

DEFAULT_TIMEOUT = 30.0


def seg(value: str) -> str:
    """One path segment (a device id, a command name)."""
    return quote(value, safe="")


def topic_path(topic: str) -> str:
    return quote(topic, safe="/")


class Service:
    """A connection to one Roost node's API (any node of a cluster will do)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "roost-sdk"},
            timeout=timeout,
            transport=transport,
        )
        self._inquiries = InquiryRouter()

    async def __aenter__(self) -> Service:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        content_type: str | None = None,
        wait: float | None = None,
    ) -> Any:
        """One request; its JSON answer (None for 204), or the matching RoostError."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        headers = {"Content-Type": content_type} if content_type else None
        # A long poll may take ``wait`` seconds before the first byte comes back.
        timeout = self._timeout + (wait or 0.0)
        try:
            response = await self._http.request(
                method,
                path,
                params=query,
                json=json,
                content=content,
                headers=headers,
                timeout=timeout,
            )
        except httpx.TimeoutException as exc:
            raise Timeout(f"{self.url} did not answer {method} {path} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json() if response.content else None

    # --- health --------------------------------------------------------------------------

    async def healthy(self) -> bool:
        try:
            await self._call("GET", "/healthz")
        except (Unavailable, Timeout):
            return False
        return True

    # --- devices -------------------------------------------------------------------------

    async def register_device(
        self,
        device_id: str,
        *,
        groups: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """Register a device; returns ``{"id", "key", "groups"}`` (the key is shown once)."""
        body: dict[str, Any] = {"id": device_id, "groups": list(groups)}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if key is not None:
            body["key"] = key
        result: dict[str, Any] = await self._call("POST", "/v1/devices", json=body)
        return result

    async def get_device(self, device_id: str) -> DeviceInfo:
        return DeviceInfo.from_json(await self._call("GET", f"/v1/devices/{seg(device_id)}"))

    async def update_device(
        self,
        device_id: str,
        *,
        groups: Iterable[str] | None = None,
        enabled: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> DeviceInfo:
        body: dict[str, Any] = {}
        if groups is not None:
            body["groups"] = list(groups)
        if enabled is not None:
            body["enabled"] = enabled
        if metadata is not None:
            body["metadata"] = dict(metadata)
        path = f"/v1/devices/{seg(device_id)}"
        return DeviceInfo.from_json(await self._call("PATCH", path, json=body))

    async def remove_device(self, device_id: str) -> None:
        await self._call("DELETE", f"/v1/devices/{seg(device_id)}")

    async def rotate_key(self, device_id: str) -> str:
        """Give the device a new key (the old one stops working); returns it."""
        result = await self._call("POST", f"/v1/devices/{seg(device_id)}/key")
        key: str = result["key"]
        return key

    async def device_page(
        self, *, after: str | None = None, limit: int = 100, group: str | None = None
    ) -> DevicePage:
        params = {"after": after, "limit": limit, "group": group}
        body = await self._call("GET", "/v1/devices", params=params)
        return DevicePage([DeviceInfo.from_json(d) for d in body["devices"]], body["next"])

    async def list_devices(
        self, *, group: str | None = None, page_size: int = 100, after: str | None = None
    ) -> AsyncIterator[DeviceInfo]:
        """Every device (of ``group``) in id order, fetched a page at a time."""
        while True:
            page = await self.device_page(after=after, limit=page_size, group=group)
            for device in page.devices:
                yield device
            if page.next is None:
                return
            after = page.next

    async def import_devices(self, rows: str | Iterable[Mapping[str, Any]]) -> ImportResult:
        """Register many devices: CSV text (``id,groups[,key]``) or dicts; existing ids skip."""
        if isinstance(rows, str):
            body = await self._call(
                "POST", "/v1/devices/import", content=rows, content_type="text/csv"
            )
        else:
            body = await self._call("POST", "/v1/devices/import", json=[dict(r) for r in rows])
        return ImportResult.from_json(body)

    # --- commands and notifications ----------------------------------------------------

    async def command(
        self,
        device: str,
        name: str,
        payload: bytes = b"",
        *,
        ttl: float | None = 30.0,
        wait: float | None = 10.0,
        content_type: str | None = None,
    ) -> CommandResponse:
        """Send a command; with ``wait``, return the device's response.

        Raises :class:`Timeout` when it did not answer within ``wait`` seconds;
        ``exc.detail["id"]`` is the command id, and the command stays queued
        until its TTL. With ``wait=None`` it returns at once, status ``None``.
        """
        body = await self._call(
            "POST",
            f"/v1/devices/{seg(device)}/commands/{seg(name)}",
            params={"ttl": ttl, "wait": wait},
            content=payload,
            content_type=content_type,
            wait=wait,
        )
        if wait is None:
            return CommandResponse(body["id"], None, None)
        return CommandResponse(body["id"], body["status"], unb64(body["payload"]),
                               body.get("content_type"))

    async def _notify(
        self, path: str, payload: bytes, ttl: float | None, content_type: str | None
    ) -> str:
        body = await self._call(
            "POST", path, params={"ttl": ttl}, content=payload, content_type=content_type
        )
        message_id: str = body["id"]
        return message_id

    async def notify(
        self,
        device: str,
        topic: str,
        payload: bytes = b"",
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> str:
        """Notify one device; returns the message id (its outcome comes in feedback)."""
        path = f"/v1/devices/{seg(device)}/notifications/{topic_path(topic)}"
        return await self._notify(path, payload, ttl, content_type)

    async def notify_group(
        self,
        group: str,
        topic: str,
        payload: bytes = b"",
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> str:
        path = f"/v1/groups/{seg(group)}/notifications/{topic_path(topic)}"
        return await self._notify(path, payload, ttl, content_type)

    async def broadcast(
        self,
        topic: str,
        payload: bytes = b"",
        *,
        ttl: float | None = None,
        content_type: str | None = None,
    ) -> str:
        path = f"/v1/broadcast/notifications/{topic_path(topic)}"
        return await self._notify(path, payload, ttl, content_type)

    async def mailbox(self, device: str) -> list[QueuedMessage]:
        body = await self._call("GET", f"/v1/devices/{seg(device)}/mailbox")
        return [QueuedMessage.from_json(m) for m in body["messages"]]

    async def purge_mailbox(self, device: str) -> int:
        body = await self._call("DELETE", f"/v1/devices/{seg(device)}/mailbox")
        purged: int = body["purged"]
        return purged

    # --- telemetry -------------------------------------------------------------------------

    async def fetch_telemetry(
        self, group: str, *, max: int = 100, wait: float = 0.0, from_latest: bool = False
    ) -> TelemetryBatch:
        params = {"group": group, "max": max, "wait": wait}
        if from_latest:
            params["from"] = "latest"
        body = await self._call("GET", "/v1/telemetry", params=params, wait=wait)
        return TelemetryBatch([Record.from_json(r) for r in body["records"]], body["ack"])

    async def ack_telemetry(self, group: str, ack: str) -> int:
        body = await self._call("POST", "/v1/telemetry/ack", json={"group": group, "ack": ack})
        acked: int = body["acked"]
        return acked

    async def telemetry(
        self,
        group: str,
        *,
        max: int = 100,
        wait: float = 10.0,
        from_latest: bool = False,
        follow: bool = True,
    ) -> AsyncIterator[Record]:
        """Records of consumer group ``group``, at least once.

        A batch is acked when the loop asks for the record after its last one,
        so a consumer that stops (or crashes) in the middle of a batch gets the
        whole batch again, from this or another member of the group, after the
        ack timeout. With ``follow=False`` the iteration ends when nothing new
        came within ``wait``.
        """
        while True:
            batch = await self.fetch_telemetry(group, max=max, wait=wait, from_latest=from_latest)
            for record in batch.records:
                yield record
            if batch.ack is not None:
                await self.ack_telemetry(group, batch.ack)
            if not batch.records and not follow:
                return

    # --- feedback ----------------------------------------------------------------------------

    async def feedback(
        self, *, after: int = 0, limit: int = 100, wait: float = 0.0
    ) -> FeedbackPage:
        params = {"after": after, "limit": limit, "wait": wait}
        body = await self._call("GET", "/v1/feedback", params=params, wait=wait)
        return FeedbackPage([Outcome.from_json(o) for o in body["outcomes"]], body["next"])

    async def follow_feedback(
        self, *, after: int = 0, limit: int = 100, wait: float = 30.0, follow: bool = True
    ) -> AsyncIterator[Outcome]:
        """Outcomes after cursor ``after``, as they come (``outcome.seq`` is the cursor)."""
        while True:
            page = await self.feedback(after=after, limit=limit, wait=wait)
            for outcome in page.outcomes:
                yield outcome
            if not page.outcomes and not follow:
                return
            after = page.next

    # --- inquiries -------------------------------------------------------------------------

    async def take_inquiries(self, *, wait: float = 0.0, max: int = 10) -> list[Inquiry]:
        params = {"wait": wait, "max": max}
        body = await self._call("GET", "/v1/inquiries", params=params, wait=wait)
        return [Inquiry.from_json(i) for i in body["inquiries"]]

    async def inquiry(self, inquiry_id: str) -> Inquiry:
        """An inquiry and its ``state`` (pending, taken, answering, ended)."""
        return Inquiry.from_json(await self._call("GET", f"/v1/inquiries/{seg(inquiry_id)}"))

    async def reply(
        self,
        inquiry_id: str,
        payload: bytes = b"",
        *,
        end: bool = False,
        content_type: str | None = None,
    ) -> str:
        """Answer an inquiry; ``end=True`` makes it the last reply. Returns the message id."""
        body = await self._call(
            "POST",
            f"/v1/inquiries/{seg(inquiry_id)}/replies",
            params={"end": "true" if end else None},
            content=payload,
            content_type=content_type,
        )
        message_id: str = body["id"]
        return message_id

    def inquiry_handler(self, name: str) -> Callable[[H], H]:
        """Decorate the handler of inquiry ``name`` (see :mod:`roost.sdk.handlers`)."""
        return self._inquiries.register(name)

    async def serve_inquiries(self, *, wait: float = 30.0, concurrency: int = 16) -> None:
        """Take inquiries and answer them with the registered handlers until cancelled."""
        if not self._inquiries.handlers:
            raise ValueError("register a handler with @service.inquiry_handler(name) first")
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = concurrency - len(running)
                if free <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                for inquiry in await self.take_inquiries(wait=wait, max=min(free, 100)):
                    task = asyncio.create_task(self._inquiries.answer(self, inquiry))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in list(running):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*running, return_exceptions=True)

    # --- tokens ------------------------------------------------------------------------------

    async def create_token(self, scopes: Iterable[str], description: str = "") -> NewToken:
        body = await self._call(
            "POST", "/v1/tokens", json={"scopes": list(scopes), "description": description}
        )
        return NewToken(body["id"], body["token"], tuple(body["scopes"]))

    async def list_tokens(self) -> list[TokenInfo]:
        body = await self._call("GET", "/v1/tokens")
        return [TokenInfo.from_json(t) for t in body["tokens"]]

    async def revoke_token(self, token_id: str) -> None:
        await self._call("DELETE", f"/v1/tokens/{seg(token_id)}")


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
